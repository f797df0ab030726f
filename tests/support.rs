//! Running the real binary from the repository root, and snapshot settings.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `helico` binary, run from the repository root with no `HELICO__*` variables inherited.
pub fn helico() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_helico"));
    cmd.current_dir(root());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HELICO")) {
        cmd.env_remove(k);
    }
    cmd
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with both streams when the exit code is not `code`.
    pub fn expect_code(self, code: i32) -> Output {
        assert_eq!(self.code, code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the helico binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn helico_run(args: &[&str]) -> Output {
    run(helico().args(args))
}

/// A file the set-up step makes; fails with the fix when it is missing.
pub fn setup_file(relative: &str) -> PathBuf {
    let p = root().join(relative);
    assert!(p.exists(), "{} is missing: run `make setup` first", p.display());
    p
}

/// Snapshots live in `snapshots/` at the repository root.
#[macro_export]
macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}
