//! Weights & Biases without W&B's SDK (there is no usable Rust one): helico writes the offline
//! run format itself, `<run>/wandb/offline-run-<YYYYMMDD_HHMMSS>-<id>/run-<id>.wandb`, the
//! transaction log `wandb sync` uploads later from a machine with network.
//!
//! Records, in order: header → run (flattened config with dotted keys, the nested config under
//! `helico/config`, tags: config hash, run key, ablation) → one history row per logged step
//! (`train/<metric>` and `eval/<metric>` of that step, with `_step`, `_runtime`,
//! `_timestamp`) → summary → files → exit (0 done, 1 failed; an interrupted run gets a
//! `preempting` record and exit 130, helico's own exit code).
//!
//! A resumed run continues the same offline run, as its metrics.jsonl does: the log is
//! rewritten without the rows past the checkpoint and without the end records, then appended
//! to. Separate offline directories with one run id would replace each other on `wandb sync`
//! (wandb/wandb#3841), so helico never makes a second one.

mod log;
pub mod proto;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use prost::Message;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::log::LogWriter;
use self::proto::{Item, Record, RecordType};
use super::error::TrackError;
use super::metrics;
use crate::run::info::RunInfo;

/// `[track.wandb]`: the W&B offline run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WandbConfig {
    /// Write a W&B offline run into the run directory for `wandb sync` to upload later. On by
    /// default: it is a few kilobytes, local, and nothing leaves the machine until you sync.
    pub enabled: bool,
    /// The W&B project the run is synced to.
    pub project: String,
    /// The W&B entity (user or team); empty leaves it to the account that syncs, and then the
    /// run's URL is not known in advance.
    pub entity: String,
    /// Tags added to the ones helico always sets (`config:<hash>`, `run_key:<hash>`,
    /// `ablation:<id>` and each ablation axis value).
    pub tags: Vec<String>,
    /// Notes (the run's description on W&B).
    pub notes: String,
    /// The W&B server the run's URL points to.
    pub base_url: String,
}

impl Default for WandbConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            project: "helico".into(),
            entity: String::new(),
            tags: Vec::new(),
            notes: String::new(),
            base_url: "https://wandb.ai".into(),
        }
    }
}

impl WandbConfig {
    /// What W&B would refuse at sync time, found before the run starts.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (key, value) in [("project", &self.project), ("entity", &self.entity)] {
            if let Some(c) = value.chars().find(|c| "/\\#?%:".contains(*c)) {
                out.push((key.to_owned(), format!("`{value}` contains `{c}`, which W&B does not allow in names")));
            }
        }
        if self.enabled && self.project.is_empty() {
            out.push(("project".into(), "empty: W&B needs a project (or set track.wandb.enabled = false)".into()));
        }
        for (i, tag) in self.tags.iter().enumerate() {
            if tag.is_empty() || tag.chars().count() > 64 {
                out.push((format!("tags.{i}"), format!("`{tag}`: W&B tags have 1 to 64 characters")));
            }
        }
        if !self.base_url.starts_with("https://") && !self.base_url.starts_with("http://") {
            out.push(("base_url".into(), format!("`{}` is not an http(s) URL", self.base_url)));
        }
        out
    }
}

/// What links.json records under `wandb`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub project: String,
    /// `None` when left to the account that syncs.
    pub entity: Option<String>,
    pub run_id: String,
    /// Where the run appears once synced; `None` while the entity is unknown.
    pub url: Option<String>,
    /// The offline run, relative to the run directory: `wandb sync <run>/<offline_dir>`.
    pub offline_dir: String,
}

/// How a run ended, as W&B records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Done,
    Failed,
    /// Stopped by a signal to be resumed.
    Interrupted,
}

/// The W&B run id of a helico run: 8 characters of `[0-9a-z]` as W&B's own ids, derived from
/// the run id so a resume finds the same W&B run.
pub fn run_id(helico_run: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    blake3::hash(helico_run.as_bytes()).as_bytes()[..8].iter().map(|b| ALPHABET[*b as usize % 36] as char).collect()
}

/// An open offline run.
pub struct WandbRun {
    log: LogWriter,
    id: String,
    /// The offline run directory (holding the log and `files/`).
    dir: PathBuf,
    /// Number of the last record written.
    num: i64,
    /// The row of the step being logged (key → JSON text): train and eval of one step share
    /// one history row.
    row: Option<(u64, BTreeMap<String, String>)>,
    /// Latest value (JSON text) of every history key, for the summary.
    latest: BTreeMap<String, String>,
}

impl WandbRun {
    /// Opens the offline run of the run in `run_dir`: a new one, or the existing one cut back
    /// to the rows through step `keep_through` (the checkpoint a resume starts from).
    pub fn open(run_dir: &Path, cfg: &WandbConfig, info: &RunInfo, keep_through: u64) -> anyhow::Result<(Self, Link)> {
        let id = run_id(&info.id);
        let root = run_dir.join("wandb");
        let existing = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(&format!("-{id}"))));
        let dir = match existing {
            Some(dir) => dir,
            None => {
                let created = chrono::DateTime::parse_from_rfc3339(&info.created)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or_else(|_| chrono::Utc::now());
                root.join(format!("offline-run-{}-{id}", created.format("%Y%m%d_%H%M%S")))
            }
        };
        let files = dir.join("files");
        std::fs::create_dir_all(&files).with_context(|| format!("cannot create {}", files.display()))?;
        let path = dir.join(format!("run-{id}.wandb"));
        let mut run = WandbRun {
            log: LogWriter::create(&path.with_extension("wandb.tmp"))?,
            id,
            dir,
            num: 0,
            row: None,
            latest: BTreeMap::new(),
        };
        if path.exists() {
            run.carry_over(&path, keep_through)?;
        } else {
            run.header_and_run(run_dir, cfg, info)?;
        }
        std::fs::rename(path.with_extension("wandb.tmp"), &path)
            .with_context(|| format!("cannot move the W&B log into {}", path.display()))?;
        run.log.moved_to(&path);
        let entity = (!cfg.entity.is_empty()).then(|| cfg.entity.clone());
        let link = Link {
            project: cfg.project.clone(),
            url: entity
                .as_ref()
                .map(|e| format!("{}/{e}/{}/runs/{}", cfg.base_url.trim_end_matches('/'), cfg.project, run.id)),
            entity,
            run_id: run.id.clone(),
            offline_dir: run.dir.strip_prefix(run_dir).unwrap_or(&run.dir).display().to_string(),
        };
        Ok((run, link))
    }

    /// Adds a metrics record to the row of its step; the previous step's row is written first.
    pub fn log(&mut self, record: &metrics::Record) -> Result<(), TrackError> {
        if self.row.as_ref().is_some_and(|(step, _)| *step != record.step) {
            self.flush()?;
        }
        let (_, row) = self.row.get_or_insert_with(|| (record.step, BTreeMap::new()));
        row.insert("_step".into(), record.step.to_string());
        row.insert("_runtime".into(), float_json(record.time));
        row.insert("_timestamp".into(), float_json(unix_now()));
        for (k, v) in &record.values {
            row.insert(format!("{}/{k}", record.split), float_json(*v));
        }
        Ok(())
    }

    /// Writes the pending row (call before a checkpoint, so the log holds every step the
    /// checkpoint covers).
    pub fn flush(&mut self) -> Result<(), TrackError> {
        let Some((step, row)) = self.row.take() else { return Ok(()) };
        let item = row.iter().map(|(k, v)| Item { key: k.clone(), value_json: v.clone() }).collect();
        self.latest.extend(row);
        let step = Some(proto::HistoryStep { num: step as i64 });
        self.write(RecordType::History(proto::HistoryRecord { item, step }))
    }

    /// Ends the run: summary (the latest value of each metric plus `extra`), the files copied
    /// into `files/` (`(source, name)`), and the exit record.
    pub fn finish(
        &mut self,
        end: End,
        extra: &BTreeMap<String, Value>,
        files: &[(PathBuf, String)],
    ) -> anyhow::Result<()> {
        self.flush()?;
        let mut summary = self.latest.clone();
        summary.extend(extra.iter().map(|(k, v)| (k.clone(), v.to_string())));
        let update = summary.into_iter().map(|(key, value_json)| Item { key, value_json }).collect();
        self.write(RecordType::Summary(proto::SummaryRecord { update }))?;
        let mut listed = Vec::new();
        for (source, name) in files {
            let target = self.dir.join("files").join(name);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::copy(source, &target)
                .with_context(|| format!("cannot copy {} into {}", source.display(), target.display()))?;
            // Policy END: uploaded once, when the sync reaches the end of the log.
            listed.push(proto::FilesItem { path: name.clone(), policy: 1 });
        }
        if !listed.is_empty() {
            self.write(RecordType::Files(proto::FilesRecord { files: listed }))?;
        }
        let runtime = self.latest.get("_runtime").and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0).round() as i32;
        let exit_code = match end {
            End::Done => 0,
            End::Failed => 1,
            End::Interrupted => {
                self.write(RecordType::Preempting(proto::RunPreemptingRecord {}))?;
                i32::from(crate::exit::INTERRUPTED)
            }
        };
        self.write(RecordType::Exit(proto::RunExitRecord { exit_code, runtime }))?;
        Ok(())
    }

    fn write(&mut self, record_type: RecordType) -> Result<(), TrackError> {
        self.num += 1;
        let info = Some(proto::RecordInfo { stream_id: self.id.clone() });
        self.log.append(&Record { num: self.num, record_type: Some(record_type), info }.encode_to_vec())
    }

    fn header_and_run(&mut self, run_dir: &Path, cfg: &WandbConfig, info: &RunInfo) -> anyhow::Result<()> {
        let version_info = Some(proto::VersionInfo {
            producer: format!("helico {}", env!("CARGO_PKG_VERSION")),
            min_consumer: String::new(),
        });
        self.write(RecordType::Header(proto::HeaderRecord { version_info }))?;
        let resolved_path = run_dir.join("config/resolved.toml");
        let resolved: toml::Table = std::fs::read_to_string(&resolved_path)
            .with_context(|| format!("cannot read {}", resolved_path.display()))?
            .parse()
            .with_context(|| format!("{} does not parse", resolved_path.display()))?;
        // What the run record shows comes from the snapshot's resolved config, which went
        // through the redactor: a token pasted into the notes stays out of the log too.
        let cfg: WandbConfig = match resolved.get("track").and_then(|t| t.get("wandb")) {
            Some(v) => v.clone().try_into().with_context(|| format!("{}: track.wandb", resolved_path.display()))?,
            None => cfg.clone(),
        };
        let config = serde_json::to_value(&resolved)?;
        let identity = &info.identity;
        let mut items: Vec<(String, Value)> = Vec::new();
        flatten("", &config, &mut items);
        items.push(("helico/config".into(), config));
        items.push(("helico/run".into(), info.id.clone().into()));
        for (k, v) in [
            ("config_hash", &identity.config_hash),
            ("run_key", &identity.run_key),
            ("code_hash", &identity.code_hash),
            ("data_hash", &identity.data_hash),
        ] {
            items.push((format!("helico/{k}"), v.clone().into()));
        }
        let mut tags =
            vec![format!("config:{}", short(&identity.config_hash)), format!("run_key:{}", short(&identity.run_key))];
        if let Some(ablation) = &info.ablation {
            items.push(("helico/ablation".into(), ablation.id.clone().into()));
            items.push(("helico/trial".into(), ablation.trial.into()));
            tags.push(format!("ablation:{}", ablation.id));
            tags.extend(ablation.axes.iter().map(|(k, v)| format!("{k}={v}")));
        }
        // W&B refuses tags longer than 64 characters: an axis value that long is left to the
        // config (`track.wandb.tags` are checked before the run starts).
        tags.retain(|t| t.chars().count() <= 64);
        tags.extend(cfg.tags.iter().cloned());
        let git = read_git(run_dir);
        let created = chrono::DateTime::parse_from_rfc3339(&info.created).ok();
        let run = proto::RunRecord {
            run_id: self.id.clone(),
            entity: cfg.entity.clone(),
            project: cfg.project.clone(),
            config: Some(proto::ConfigRecord {
                update: items.iter().map(|(k, v)| Item { key: k.clone(), value_json: v.to_string() }).collect(),
            }),
            run_group: info.ablation.as_ref().map(|a| a.id.clone()).unwrap_or_default(),
            job_type: "train".into(),
            display_name: info.id.clone(),
            notes: cfg.notes.clone(),
            tags,
            host: info.host.clone(),
            starting_step: 0,
            start_time: created
                .map(|t| proto::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }),
            git,
        };
        Ok(self.write(RecordType::Run(run))?)
    }

    /// Copies the records of an earlier process's log, without the rows past `keep_through`
    /// and without the records that ended it, so the resumed process continues one run.
    fn carry_over(&mut self, path: &Path, keep_through: u64) -> anyhow::Result<()> {
        for bytes in log::read(path)? {
            let record = Record::decode(bytes.as_slice()).map_err(|e| TrackError::WandbFormat {
                path: path.to_path_buf(),
                problem: format!("record {} does not decode: {e}", self.num + 1),
            })?;
            let keep = match &record.record_type {
                Some(RecordType::History(h)) => h.step.as_ref().is_some_and(|s| s.num as u64 <= keep_through),
                Some(RecordType::Header(_) | RecordType::Run(_) | RecordType::Config(_)) => true,
                _ => false,
            };
            if !keep {
                continue;
            }
            if let Some(RecordType::History(h)) = &record.record_type {
                self.latest.extend(h.item.iter().map(|i| (i.key.clone(), i.value_json.clone())));
            }
            self.write(record.record_type.expect("kept records have a type"))?;
        }
        Ok(())
    }
}

/// Dotted keys for nested tables (`model.n_layers`) and indices for lists
/// (`data.files.0.path`): W&B's filters and sweeps handle nested config poorly.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    let key = |k: &str| if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") };
    match value {
        Value::Object(m) if !m.is_empty() => m.iter().for_each(|(k, v)| flatten(&key(k), v, out)),
        Value::Array(a) if !a.is_empty() => {
            a.iter().enumerate().for_each(|(i, v)| flatten(&key(&i.to_string()), v, out))
        }
        _ => out.push((prefix.to_owned(), value.clone())),
    }
}

/// A float as JSON text the way W&B's Python SDK writes it: NaN and ±Infinity spelled as
/// Python's `json.dumps` spells them (W&B's readers accept them; strict JSON has no such
/// numbers, and a diverged step's loss is worth recording).
fn float_json(v: f64) -> String {
    match serde_json::Number::from_f64(v) {
        Some(n) => n.to_string(),
        None if v.is_nan() => "NaN".into(),
        None if v > 0.0 => "Infinity".into(),
        None => "-Infinity".into(),
    }
}

fn short(hash: &str) -> &str {
    &hash[..12.min(hash.len())]
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn read_git(run_dir: &Path) -> Option<proto::GitRepoRecord> {
    let git: Value = serde_json::from_slice(&std::fs::read(run_dir.join("code/git.json")).ok()?).ok()?;
    let text = |k: &str| git[k].as_str().unwrap_or_default().to_owned();
    Some(proto::GitRepoRecord { remote_url: text("remote_url"), commit: text("sha") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_flattens_to_dotted_keys_with_list_indices() {
        let mut out = Vec::new();
        flatten("", &json!({"a": {"b": 1, "c": [{"p": "x"}, 2]}, "e": [], "f": {}}), &mut out);
        let keys: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a.b", "a.c.0.p", "a.c.1", "e", "f"]);
        assert_eq!(out[4].1, json!({}));
    }

    #[test]
    fn non_finite_numbers_are_spelled_as_python_does() {
        assert_eq!(float_json(0.25), "0.25");
        assert_eq!(float_json(1e-5).parse::<f64>(), Ok(1e-5), "round-trips");
        assert_eq!(float_json(f64::NAN), "NaN");
        assert_eq!(float_json(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn names_and_tags_wandb_would_refuse_are_problems() {
        let cfg = WandbConfig {
            project: "a/b".into(),
            tags: vec!["x".repeat(65)],
            base_url: "wandb.ai".into(),
            ..WandbConfig::default()
        };
        let keys: Vec<String> = cfg.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["project", "tags.0", "base_url"]);
        assert!(WandbConfig::default().problems().is_empty());
    }

    #[test]
    fn run_ids_look_like_wandb_ids_and_are_stable() {
        let id = run_id("tiny/20261121-101500-1a2b3c4d");
        assert_eq!(id.len(), 8);
        assert!(id.chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert_eq!(id, run_id("tiny/20261121-101500-1a2b3c4d"));
        assert_ne!(id, run_id("tiny/20261121-101500-1a2b3c4e"));
    }
}
