//! `helico ablate`: sweeps of an experiment (config_engine_anchors.md §4.3, §4.8). A spec (axes
//! from the command line or an `ablations/*.toml` file) expands into trials; every trial is
//! resolved and validated before any runs; trials identical to a completed run are skipped; the
//! rest run in this process or as child `helico run` processes; `--resume` continues an
//! ablation without renumbering; `report` tabulates it.
//!
//! spec (grammar, file form, hash) → plan (trials, identity, dedup, cost) → store (the
//! ablation directory) → execute → report.

pub mod error;
pub mod execute;
pub mod plan;
pub mod report;
pub mod spec;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

pub use error::AblateError;

use crate::config::schema::Schema;
use crate::registry::describe;

/// A planned ablation, new or resumed, before anything is written.
pub struct Prepared {
    pub planned: plan::Planned,
    /// The ablation being resumed: its directory and record.
    pub resumed: Option<(PathBuf, store::Record)>,
    /// Things the user should know that do not stop the ablation.
    pub notes: Vec<String>,
}

/// Plans a new ablation from `request`, or the continuation of the ablation `resume` names
/// (whose spec `request`, when given, must equal).
pub fn prepare(request: Option<&spec::Request>, resume: Option<&str>, root: &Path) -> anyhow::Result<Prepared> {
    let slots = describe::slots(&Schema::experiment());
    let Some(id) = resume else {
        let request = request.expect("a new ablation comes with a request (clap requires the experiment)");
        let spec = spec::build(request, &slots)?;
        return Ok(Prepared { planned: plan::plan(spec, root, None)?, resumed: None, notes: Vec::new() });
    };
    let dir = store::find(root, id)?;
    let record = store::read_record(&dir)?;
    let before = store::read_trials(&dir)?;
    let mut notes = Vec::new();
    let spec = match request {
        Some(r) => {
            let spec = spec::build(r, &slots)?;
            if spec.hash() != record.spec_hash {
                let differences = record.spec.differences(&spec);
                return Err(AblateError::SpecChanged { id: record.id, differences }.into());
            }
            spec
        }
        None => {
            let env: Vec<(String, String)> =
                std::env::vars().filter(|(k, _)| k.starts_with(crate::config::layers::ENV_PREFIX)).collect();
            if env != record.spec.env {
                notes.push(format!(
                    "the HELICO__* variables differ from those ablation {} started with; its trials keep the original ones",
                    record.id
                ));
            }
            record.spec.clone()
        }
    };
    let planned = plan::plan(spec, root, Some((&record.id, &before)))?;
    if let Some(t) =
        before.iter().zip(&planned.trials).find(|(b, n)| b.to_run() && n.to_run() && b.run_key != n.run_key)
    {
        notes.push(format!(
            "the code or data changed since ablation {} started (trial {}'s run key differs): trials run from now on are not comparable bit for bit with the finished ones",
            record.id, t.0.index
        ));
    }
    Ok(Prepared { planned, resumed: Some((dir, record)), notes })
}

/// Writes the ablation directory (or updates a resumed one) and runs its trials.
pub fn run(
    prepared: Prepared,
    root: &Path,
    argv: Vec<String>,
    settings: &execute::Settings,
    stop: &AtomicBool,
) -> anyhow::Result<execute::Summary> {
    let Prepared { planned, resumed, .. } = prepared;
    let (dir, record) = match resumed {
        Some((dir, mut record)) => {
            record.commands.push(argv);
            store::write_record(&dir, &record)?;
            store::write_trials(&dir, &planned.trials)?;
            (dir, record)
        }
        None => {
            let mut record = store::Record {
                id: String::new(),
                created: crate::run::info::now(),
                spec_hash: planned.spec.hash(),
                spec: planned.spec.clone(),
                commands: vec![argv],
            };
            let name = planned.resolved[0].experiment.name.clone();
            let dir = store::create(root, &name, &mut record, &planned.trials)?;
            (dir, record)
        }
    };
    execute::execute(&planned, &record.id, &dir, settings, stop)
}
