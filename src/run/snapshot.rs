//! The run snapshot: everything needed to say exactly what ran and to run it again, written
//! when a run starts. Every text file goes through the [`Redactor`] on its way to disk.
//!
//! ```text
//! run.json                   identity (run_key and its three hashes), status, heartbeat
//! RERUN                      the command that reproduces the run
//! config/resolved.toml       the resolved experiment, defaults included
//! config/inputs/             every input layer verbatim (files, env, command line)
//! config/provenance.json     each key's source, and every change the layers made
//! config/schema.json         the experiment schema the run was validated against
//! code/git.json, dirty.patch git state and every uncommitted change
//! env.json                   host, GPU, build, libtorch, allowlisted variables
//! data/manifest.json         the data files' hashes and the filter parameters
//! seeds.json, links.json     seeds; tracker links (filled by the trackers)
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde_json::json;

use super::env::EnvInfo;
use super::git::GitSnapshot;
use super::info::{Identity, RunInfo, Status, hostname, now};
use super::secrets::Redactor;
use crate::config::Resolved;
use crate::data::manifest::DataManifest;

/// What was captured before the run started, for the snapshot and the run's identity.
pub struct Provenance {
    pub git: GitSnapshot,
    pub env: EnvInfo,
    pub redactor: Redactor,
}

impl Provenance {
    /// Captures git state (of the working directory's repository) and the environment;
    /// `runs_root` (where runs are written) never counts as a change to the code.
    pub fn capture(workdir: &Path, runs_root: &Path) -> anyhow::Result<Provenance> {
        let redactor = Redactor::from_env();
        let git = super::git::capture(workdir, &[runs_root], &redactor, super::git::DEFAULT_PATCH_CAP)
            .with_context(|| format!("cannot read the git state of {}", workdir.display()))?;
        let env = EnvInfo::collect(&redactor);
        Ok(Provenance { git, env, redactor })
    }

    /// The code a run executes: commit tree, uncommitted changes, crate version and libtorch.
    /// Outside a repository only the version counts (recorded as such in git.json).
    pub fn code_hash(&self) -> String {
        let info = &self.git.info;
        let text = format!(
            "tree {}\npatch {}\nhelico {}\nlibtorch {}\nfeatures {}",
            info.tree.as_deref().unwrap_or("unknown"),
            info.patch_hash,
            env!("CARGO_PKG_VERSION"),
            super::env::PINNED_LIBTORCH_VERSION,
            self.env.build.features.join(","),
        );
        blake3::hash(text.as_bytes()).to_hex().to_string()
    }
}

/// Seeds of a run; per-step seeds derive from `run` and the step (see `train::trainer`).
#[derive(Debug, Clone, Serialize)]
pub struct Seeds {
    pub run: u64,
    pub derivation: &'static str,
}

/// Writes the snapshot into a fresh run directory and marks the run `running`.
pub fn write(
    dir: &Path,
    resolved: &Resolved,
    prov: &Provenance,
    manifest: &DataManifest,
    identity: &Identity,
    argv: &[String],
) -> anyhow::Result<RunInfo> {
    let w = Writer { dir, redactor: &prov.redactor };
    let exp = &resolved.experiment;

    w.text("config/resolved.toml", &resolved.to_toml())?;
    for (i, layer) in resolved.layers.iter().enumerate() {
        if let Some(path) = &layer.path {
            let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            w.text(&format!("config/inputs/{i:02}-{}-{base}", layer.role), &layer.text)?;
        }
    }
    w.json("config/inputs/layers.json", &json!({ "argv": argv, "layers": resolved.layers }))?;
    w.json("config/provenance.json", &json!({ "final": resolved.provenance, "events": resolved.events }))?;
    w.json("config/schema.json", &crate::config::schema::experiment_schema())?;

    w.json("code/git.json", &prov.git.info)?;
    if !prov.git.patch.is_empty() {
        let patch = prov.redactor.redact_bytes(&prov.git.patch);
        crate::atomic::write(&dir.join("code/dirty.patch"), &patch)?;
    }
    w.json("env.json", &prov.env)?;
    w.json("data/manifest.json", manifest)?;
    w.json(
        "seeds.json",
        &Seeds {
            run: exp.seed,
            derivation: "step s uses blake3(run seed, s); evaluation at step s uses blake3(run seed, \"eval\", s)",
        },
    )?;
    w.json("links.json", &json!({}))?;
    w.text("RERUN", &rerun(prov, dir, argv))?;

    let info = RunInfo {
        id: super::dir::id_of(dir),
        name: exp.name.clone(),
        status: Status::Running,
        identity: identity.clone(),
        created: now(),
        heartbeat: now(),
        finished: None,
        host: hostname(),
        pid: std::process::id(),
        step: 0,
        steps: exp.train.steps,
        error: None,
        commands: vec![argv.iter().map(|a| prov.redactor.redact(a).into_owned()).collect()],
        ablation: None,
    };
    info.write(dir)?;
    Ok(info)
}

struct Writer<'a> {
    dir: &'a Path,
    redactor: &'a Redactor,
}

impl Writer<'_> {
    fn path(&self, rel: &str) -> anyhow::Result<PathBuf> {
        let p = self.dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        Ok(p)
    }

    fn text(&self, rel: &str, text: &str) -> anyhow::Result<()> {
        let p = self.path(rel)?;
        crate::atomic::write(&p, self.redactor.redact(text).as_bytes())
            .with_context(|| format!("cannot write {}", p.display()))
    }

    fn json(&self, rel: &str, value: &impl Serialize) -> anyhow::Result<()> {
        self.text(rel, &serde_json::to_string_pretty(value)?)
    }
}

/// The commands that check out the code and run the experiment again.
fn rerun(prov: &Provenance, dir: &Path, argv: &[String]) -> String {
    let info = &prov.git.info;
    let mut out = String::from("# Reproduces this run. From the repository root:\n");
    match &info.sha {
        Some(sha) => out.push_str(&format!("git checkout {sha}\n")),
        None => out.push_str("# (no git commit was recorded: the code is identified by the helico version only)\n"),
    }
    if !prov.git.patch.is_empty() {
        out.push_str(&format!("git apply {}\n", shell_quote(&dir.join("code/dirty.patch").display().to_string())));
    }
    let mut args: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
    if !argv.iter().any(|a| a == "--force") {
        args.push("--force".into());
    }
    out.push_str(&args.join(" "));
    out.push('\n');
    out
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "_./=@:,+-%^".contains(c));
    if plain { word.to_owned() } else { format!("'{}'", word.replace('\'', "'\\''")) }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(shell_quote("train.steps=5"), "train.steps=5");
        assert_eq!(shell_quote("data.files+={path=\"a b\"}"), "'data.files+={path=\"a b\"}'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
