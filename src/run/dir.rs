//! Run directories: `runs/<name>/<YYYYMMDD-HHMMSS>-<config hash 8>/`, created fresh for every
//! run and never reused; resume continues in the same directory.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::exit::BadInput;

/// Creates a new run directory; `name` was validated by the schema, but the directory must
/// still land inside `root` (no `..`, no absolute names).
pub fn create(root: &Path, name: &str, config_hash: &str) -> anyhow::Result<PathBuf> {
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !valid {
        return Err(BadInput(format!(
            "experiment name `{name}` cannot name a directory under {}: use letters, digits, `.`, `_` and `-`",
            root.display()
        ))
        .into());
    }
    let parent = root.join(name);
    std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let base = format!("{stamp}-{}", &config_hash[..8.min(config_hash.len())]);
    let mut n = 1;
    loop {
        let dir = parent.join(if n == 1 { base.clone() } else { format!("{base}-{n}") });
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
}

/// The run id: `<name>/<directory name>`.
pub fn id_of(dir: &Path) -> String {
    let leaf = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = dir.parent().and_then(Path::file_name).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{name}/{leaf}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_never_reused_and_names_cannot_escape() {
        let root = tempfile::tempdir().expect("tempdir");
        let a = create(root.path(), "demo", "0123456789").expect("create");
        let b = create(root.path(), "demo", "0123456789").expect("create");
        assert_ne!(a, b);
        assert!(a.starts_with(root.path().join("demo")));
        assert!(id_of(&a).starts_with("demo/"));
        for bad in ["../x", "a/b", ".hidden", ""] {
            assert!(create(root.path(), bad, "0123456789").is_err(), "{bad}");
        }
    }
}
