//! `helico publish`: stages a finished run for the Hugging Face Hub, without network. The
//! folder holds what a downloader needs to use and to trust the weights, in the run
//! directory's own layout, and `links.json` records the target repository and revision:
//!
//! ```text
//! model.safetensors         the latest checkpoint's weights (its EMA when the run kept one)
//! config/resolved.toml      the resolved experiment
//! run.json, summary.json    identity (config hash, run key), status, headline metrics
//! data/manifest.json        the data files' hashes; data/vocab.json the vocabulary
//! plots/loss.png            when the run drew it
//! README.md                 the model card: git commit and dirty state, W&B link, metrics
//! ```
//!
//! The upload itself is `hf upload <repo> <folder> . --revision <revision>` (huggingface_hub's
//! CLI) from a machine with network; its commit id then pins the weights
//! (`hf://owner/name@<commit>/model.safetensors`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};

use super::info::{RunInfo, Status};
use crate::exit::BadInput;
use crate::track::hf::HfRef;
use crate::train::checkpoint::Checkpoints;

/// Marks a folder as a staging of ours, so a second publish may replace it (and nothing else).
const MARKER: &str = ".helico-publish";

/// What was staged, and where it should go.
#[derive(Debug, Clone, Serialize)]
pub struct Staged {
    pub dir: PathBuf,
    pub repo: String,
    pub revision: String,
    /// `model` or `ema`.
    pub weights: String,
    pub checkpoint_step: u64,
    /// Files in the folder, relative to it, sorted.
    pub files: Vec<String>,
    /// The command that uploads the folder.
    pub upload: String,
    pub url: String,
}

/// Stages the run in `run` into `out` (`<run>/publish` when `None`) for `repo` at `revision`.
pub fn stage(run: &Path, repo: &str, revision: &str, out: Option<&Path>) -> anyhow::Result<Staged> {
    if repo.split('/').count() != 2 {
        return Err(BadInput(format!("--repo `{repo}` is not owner/name (a Hugging Face model repository)")).into());
    }
    HfRef::parse(&format!("hf://{repo}@{}/model.safetensors", revision.replace('/', "%2F")))
        .map_err(|e| BadInput(format!("--repo {repo} --revision {revision}: {e}")))?;
    let info = RunInfo::read(run)?;
    if info.status != Status::Done {
        return Err(BadInput(format!(
            "run {} is {}: publish a finished run (resume it with `helico run --resume {}`)",
            info.id,
            info.status,
            run.display()
        ))
        .into());
    }
    let out = out.map_or_else(|| run.join("publish"), Path::to_path_buf);
    prepare(&out)?;
    // Absolute, so the printed upload command works from any directory.
    let out = std::fs::canonicalize(&out).with_context(|| format!("cannot resolve {}", out.display()))?;
    let checkpoints = Checkpoints::new(run.join("checkpoints"));
    let entry = checkpoints.latest()?.ok_or_else(|| BadInput(format!("run {} has no checkpoint", info.id)))?;
    let ckpt = checkpoints.dir.join(&entry.path);
    let weights = if ckpt.join("ema.safetensors").exists() { "ema" } else { "model" };
    write_weights(
        &ckpt.join(format!("{weights}.safetensors")),
        &out.join("model.safetensors"),
        &info,
        weights,
        entry.step,
    )?;
    for rel in
        ["config/resolved.toml", "run.json", "summary.json", "data/manifest.json", "data/vocab.json", "plots/loss.png"]
    {
        let from = run.join(rel);
        if from.exists() {
            let to = out.join(rel);
            std::fs::create_dir_all(to.parent().expect("a file in the folder has a parent"))?;
            std::fs::copy(&from, &to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
    }
    let links: Value = std::fs::read(run.join("links.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}));
    let git: Value = std::fs::read(run.join("code/git.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}));
    let summary: Value = std::fs::read(run.join("summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}));
    let card = model_card(&info, &git, &links, &summary, weights, entry.step, out.join("plots/loss.png").exists());
    crate::atomic::write(&out.join("README.md"), card.as_bytes())?;

    let upload = format!(
        "hf upload {repo} {} . --revision {revision} --commit-message 'helico run {}'",
        super::snapshot::shell_quote(&out.display().to_string()),
        info.id
    );
    let url = format!("https://huggingface.co/{repo}/tree/{}", revision.replace('/', "%2F"));
    let link = json!({
        "repo": repo,
        "repo_type": "model",
        "revision": revision,
        "url": url,
        "staged": out,
        "upload": upload,
        "commit": Value::Null,
    });
    crate::track::set_link(run, "huggingface", link)?;
    let mut files = list(&out, &out)?;
    files.sort();
    Ok(Staged {
        dir: out,
        repo: repo.to_owned(),
        revision: revision.to_owned(),
        weights: weights.to_owned(),
        checkpoint_step: entry.step,
        files,
        upload,
        url,
    })
}

/// Makes `out` an empty staging folder: new, empty, or an earlier staging of ours.
fn prepare(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        let ours = out.join(MARKER).exists();
        let empty = std::fs::read_dir(out).with_context(|| format!("cannot list {}", out.display()))?.next().is_none();
        if !ours && !empty {
            return Err(BadInput(format!(
                "{} exists and was not staged by helico publish: pass an empty or new --out directory",
                out.display()
            ))
            .into());
        }
        std::fs::remove_dir_all(out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(out.join(MARKER), b"").with_context(|| format!("cannot write in {}", out.display()))?;
    Ok(())
}

/// Copies the tensors of a checkpoint file with metadata saying what they are; `format: pt`
/// is what Hugging Face loaders expect of PyTorch-layout safetensors.
fn write_weights(from: &Path, to: &Path, info: &RunInfo, weights: &str, step: u64) -> anyhow::Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{} is not a valid safetensors file", from.display()))?;
    let metadata = HashMap::from([
        ("format".to_owned(), "pt".to_owned()),
        ("helico_run".to_owned(), info.id.clone()),
        ("config_hash".to_owned(), info.identity.config_hash.clone()),
        ("run_key".to_owned(), info.identity.run_key.clone()),
        ("weights".to_owned(), weights.to_owned()),
        ("step".to_owned(), step.to_string()),
    ]);
    let out = safetensors::serialize(st.tensors(), Some(metadata))?;
    crate::atomic::write(to, &out).with_context(|| format!("cannot write {}", to.display()))
}

fn list(root: &Path, dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(list(root, &path)?);
        } else if path.file_name().is_some_and(|n| n != MARKER) {
            out.push(path.strip_prefix(root).unwrap_or(&path).display().to_string());
        }
    }
    Ok(out)
}

/// The README.md model card: YAML front matter for the Hub, then what ran and how it did.
fn model_card(
    info: &RunInfo,
    git: &Value,
    links: &Value,
    summary: &Value,
    weights: &str,
    step: u64,
    loss_plot: bool,
) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_owned(),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), |f| format!("{f:.4}")),
        other => other.to_string(),
    };
    let commit = match (git["sha"].as_str(), git["dirty"].as_bool()) {
        (Some(sha), Some(true)) => format!("`{sha}` with uncommitted changes (code/dirty.patch in the run)"),
        (Some(sha), _) => format!("`{sha}`"),
        (None, _) => "not recorded (no git repository)".to_owned(),
    };
    let wandb = match (&links["wandb"]["url"], &links["wandb"]["offline_dir"]) {
        (Value::String(url), _) => format!("[{url}]({url}) (offline run; `wandb sync` uploads it)"),
        (_, Value::String(dir)) => format!("offline run `{dir}` in the run directory, not yet synced"),
        _ => "not tracked".to_owned(),
    };
    let mut card = format!(
        "---\nlibrary_name: helico\ntags:\n- helico\n- d3pm\n- sequence-diffusion\n---\n\n\
         # {name}\n\n\
         A discrete-diffusion (D3PM) sequence model over SMILES, protein and RNA trained with helico, \
         run `{id}`. `model.safetensors` holds the {weights} weights of the checkpoint at step {step}.\n\n\
         | | |\n|---|---|\n\
         | run | `{id}` |\n| config hash | `{config}` |\n| run key | `{key}` |\n\
         | git commit | {commit} |\n| remote | {remote} |\n| W&B | {wandb} |\n",
        name = info.name,
        id = info.id,
        config = info.identity.config_hash,
        key = info.identity.run_key,
        remote = git["remote_url"].as_str().unwrap_or("—"),
    );
    card.push_str("\n## Metrics\n\n| metric | value |\n|---|---|\n");
    if let Some(m) = summary.as_object() {
        for (k, v) in m {
            card.push_str(&format!("| {k} | {} |\n", text(v)));
        }
    }
    if loss_plot {
        card.push_str("\n![loss](plots/loss.png)\n");
    }
    card.push_str(
        "\n## Files\n\n`config/resolved.toml` is the experiment as it ran (defaults included), `run.json` its \
         identity and `data/manifest.json` the hashes of its data; `helico run config/resolved.toml` on the \
         same commit and data repeats it.\n",
    );
    card
}
