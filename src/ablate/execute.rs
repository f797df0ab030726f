//! Running the trials of a plan: one after another in this process (`--jobs 1`), or as child
//! `helico run` processes, N at a time. Each trial's state reaches trials.json as soon as it
//! changes. A failed trial does not stop the others unless fail-fast; a signal (or fail-fast)
//! stops launching and lets running trials checkpoint, so `--resume` continues them.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value as Json;

use super::plan::{Planned, Setting, State, Trial};
use super::store;
use crate::run::info::{AblationRef, all_runs};
use crate::run::launch::{self, Launched};

/// The environment variable through which a child `helico run` learns which trial it is (an
/// [`AblationRef`] as JSON). Single underscore: `HELICO__*` variables are config layers.
pub const TRIAL_ENV: &str = "HELICO_ABLATION_TRIAL";

/// How often the parallel supervisor looks at the stop flags.
const POLL: Duration = Duration::from_millis(100);

/// Error lines kept per failed trial.
const ERROR_CHARS: usize = 2000;

pub struct Settings {
    pub root: PathBuf,
    /// Trials at once; 1 runs them in this process.
    pub jobs: usize,
    /// Stop at the first failure (running trials are interrupted, resumable).
    pub fail_fast: bool,
    /// The `helico` binary for child processes and for each trial's recorded command.
    pub exe: PathBuf,
}

/// How an execution of an ablation ended (`summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub id: String,
    pub dir: PathBuf,
    pub trials: usize,
    /// Trained to the end by this ablation (now or in an earlier execution).
    pub done: usize,
    /// Stood for by an identical completed run.
    pub skipped: usize,
    pub duplicates: usize,
    pub failed: Vec<Failure>,
    pub interrupted: Vec<usize>,
    /// Identical runs in progress in other processes.
    pub elsewhere: Vec<usize>,
    /// Never started (after a signal or a fail-fast stop).
    pub pending: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub trial: usize,
    pub axes: Vec<Setting>,
    pub run: Option<String>,
    pub error: String,
}

impl Summary {
    pub fn of(id: &str, dir: &Path, trials: &[Trial]) -> Summary {
        let count = |s: State| trials.iter().filter(|t| t.state == s).count();
        let with = |s: State| trials.iter().filter(|t| t.state == s).map(|t| t.index).collect();
        Summary {
            id: id.to_owned(),
            dir: dir.to_path_buf(),
            trials: trials.len(),
            done: count(State::Done),
            skipped: count(State::Skipped),
            duplicates: count(State::Duplicate),
            failed: trials
                .iter()
                .filter(|t| t.state == State::Failed)
                .map(|t| Failure {
                    trial: t.index,
                    axes: t.axes.clone(),
                    run: t.run.clone(),
                    error: t.error.clone().unwrap_or_default(),
                })
                .collect(),
            interrupted: with(State::Interrupted),
            elsewhere: with(State::Elsewhere),
            pending: with(State::Pending),
        }
    }

    /// The summary as a person reads it: counts, each failure with its error lines, and what
    /// to run next.
    pub fn text(&self) -> String {
        let mut counts = format!("{} done, {} skipped (identical run completed)", self.done, self.skipped);
        for (n, what) in [
            (self.duplicates, "duplicates"),
            (self.failed.len(), "failed"),
            (self.interrupted.len(), "interrupted"),
            (self.elsewhere.len(), "running elsewhere"),
            (self.pending.len(), "not started"),
        ] {
            if n > 0 {
                counts.push_str(&format!(", {n} {what}"));
            }
        }
        let mut out = format!("ablation {} ({}): {} trials; {counts}\n", self.id, self.dir.display(), self.trials);
        for f in &self.failed {
            let run = f.run.as_deref().map(|r| format!(" [{r}]")).unwrap_or_default();
            out.push_str(&format!(
                "failed: trial {} ({}){run}\n  {}\n",
                f.trial,
                describe(&f.axes),
                f.error.replace('\n', "\n  ")
            ));
        }
        let list = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
        if !self.elsewhere.is_empty() {
            out.push_str(&format!(
                "running elsewhere: trials {}; `helico ablate report {}` once they finish\n",
                list(&self.elsewhere),
                self.id
            ));
        }
        if !self.interrupted.is_empty() || !self.pending.is_empty() || !self.failed.is_empty() {
            out.push_str(&format!("continue with `helico ablate --resume {}`\n", self.id));
        }
        out.push_str(&format!("tabulate with `helico ablate report {}`\n", self.id));
        out
    }

    /// 1 when a trial failed, 130 when some were interrupted or never started, else 0.
    pub fn exit_code(&self) -> u8 {
        if !self.failed.is_empty() {
            crate::exit::FAILURE
        } else if !self.interrupted.is_empty() || !self.pending.is_empty() {
            crate::exit::INTERRUPTED
        } else {
            crate::exit::OK
        }
    }
}

/// The trial list, shared by workers and persisted on every change.
struct Board<'a> {
    dir: &'a Path,
    trials: Mutex<Vec<Trial>>,
}

impl Board<'_> {
    fn get(&self, index: usize) -> Trial {
        self.trials.lock().expect("no worker panics while holding the trial list")[index].clone()
    }

    fn set(&self, index: usize, state: State, run: Option<String>, error: Option<String>) -> anyhow::Result<()> {
        let mut trials = self.trials.lock().expect("no worker panics while holding the trial list");
        let t = &mut trials[index];
        t.state = state;
        t.run = run.or(t.run.take());
        t.error = error;
        if state != State::Pending && state != State::Interrupted {
            t.estimate_secs = None;
        }
        store::write_trials(self.dir, &trials)
    }
}

/// Runs every trial of the plan that is to run; returns the summary (also in summary.json).
pub fn execute(
    planned: &Planned,
    id: &str,
    dir: &Path,
    settings: &Settings,
    stop: &AtomicBool,
) -> anyhow::Result<Summary> {
    let board = Board { dir, trials: Mutex::new(planned.trials.clone()) };
    let queue: VecDeque<usize> = planned.trials.iter().filter(|t| t.to_run()).map(|t| t.index).collect();
    let total = planned.trials.len();
    eprintln!("ablation {id}: {} of {total} trials to run ({})", queue.len(), dir.display());
    if settings.jobs <= 1 {
        in_process(planned, id, &board, queue, settings, stop)?;
    } else {
        std::fs::create_dir_all(dir.join("logs")).with_context(|| format!("cannot create {}/logs", dir.display()))?;
        in_children(planned, id, &board, queue, settings, stop)?;
    }
    let mut trials = board.trials.into_inner().expect("workers have finished");
    for i in 0..total {
        if let Some(first) = trials[i].same_as {
            trials[i].run = trials[first].run.clone();
        }
    }
    store::write_trials(dir, &trials)?;
    let summary = Summary::of(id, dir, &trials);
    store::write_json(&dir.join("summary.json"), &summary)?;
    Ok(summary)
}

fn in_process(
    planned: &Planned,
    id: &str,
    board: &Board,
    queue: VecDeque<usize>,
    settings: &Settings,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    for index in queue {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let t = board.get(index);
        eprintln!(
            "trial {index} ({}): {}",
            describe(&t.axes),
            if t.state == State::Interrupted { "resuming" } else { "starting" }
        );
        let argv = run_argv(settings, &planned.spec.experiment, &t);
        let result = match (&t.state, &t.run) {
            (State::Interrupted, Some(run)) => launch::resume(&settings.root.join(run), &argv, stop),
            _ => {
                let ablation = AblationRef { id: id.to_owned(), trial: index, axes: t.axis_map() };
                let opts =
                    launch::Options { root: settings.root.clone(), force: false, argv, ablation: Some(ablation) };
                launch::start(&planned.resolved[index], &opts, stop)
            }
        };
        let failed = result.is_err();
        let (state, run, error) = match result {
            Ok(Launched::Done { dir, .. }) => (State::Done, Some(run_id(&dir)), None),
            Ok(Launched::AlreadyDone { dir }) => (State::Skipped, Some(run_id(&dir)), None),
            Ok(Launched::Interrupted { dir, .. }) => (State::Interrupted, Some(run_id(&dir)), None),
            // A data-parallel rank other than 0 (the trial ran under torchrun or SLURM): rank 0
            // wrote the run.
            Ok(Launched::Follower { .. }) => (State::Done, run_of(&settings.root, id, index), None),
            Err(e) => (State::Failed, run_of(&settings.root, id, index), Some(clip(&format!("{e:#}")))),
        };
        report(index, &t, state, run.as_deref(), error.as_deref());
        board.set(index, state, run, error)?;
        if failed && settings.fail_fast {
            break;
        }
    }
    Ok(())
}

fn in_children(
    planned: &Planned,
    id: &str,
    board: &Board,
    queue: VecDeque<usize>,
    settings: &Settings,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let queue = Mutex::new(queue);
    let running: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    let halt = AtomicBool::new(false);
    let worker = || -> anyhow::Result<()> {
        loop {
            if stop.load(Ordering::SeqCst) || halt.load(Ordering::SeqCst) {
                return Ok(());
            }
            let Some(index) = queue.lock().expect("queue lock").pop_front() else { return Ok(()) };
            let t = board.get(index);
            let log = board.dir.join(format!("logs/trial-{index:04}.log"));
            let mut cmd = child_command(planned, id, &t, settings, &log)?;
            eprintln!("trial {index} ({}): started, log {}", describe(&t.axes), log.display());
            let child = cmd.spawn().with_context(|| format!("cannot start {}", settings.exe.display()))?;
            let pid = child.id();
            running.lock().expect("pid lock").push(pid);
            let out = child.wait_with_output().context("waiting for a trial process")?;
            running.lock().expect("pid lock").retain(|p| *p != pid);
            let launched: Option<Json> = serde_json::from_slice(&out.stdout).ok();
            let dir = launched.as_ref().and_then(|l| l["dir"].as_str()).map(|d| run_id(Path::new(d)));
            let (state, run, error) = match (out.status.code(), launched.as_ref().and_then(|l| l["status"].as_str())) {
                (Some(0), Some("done")) => (State::Done, dir, None),
                (Some(0), Some("already_done")) => (State::Skipped, dir, None),
                (Some(130), _) => (State::Interrupted, dir.or_else(|| run_of(&settings.root, id, index)), None),
                _ => (State::Failed, run_of(&settings.root, id, index), Some(error_lines(&log))),
            };
            report(index, &t, state, run.as_deref(), error.as_deref());
            board.set(index, state, run, error)?;
            if state == State::Failed && settings.fail_fast {
                halt.store(true, Ordering::SeqCst);
            }
        }
    };
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..settings.jobs).map(|_| s.spawn(worker)).collect();
        // Children run in their own process groups, so a terminal's Ctrl-C reaches only this
        // process: each child gets exactly one signal from here (a second would kill it before
        // it saves its checkpoint).
        let mut signalled: Vec<u32> = Vec::new();
        while workers.iter().any(|w| !w.is_finished()) {
            let signal = if stop.load(Ordering::SeqCst) {
                Some(libc::SIGINT)
            } else if halt.load(Ordering::SeqCst) {
                Some(libc::SIGTERM)
            } else {
                None
            };
            if let Some(signal) = signal {
                let fresh: Vec<u32> =
                    running.lock().expect("pid lock").iter().copied().filter(|p| !signalled.contains(p)).collect();
                for pid in fresh {
                    // SAFETY: signalling a child process this ablation started and still waits on
                    // (the lock is released, but a pid leaves `running` only after its wait).
                    unsafe {
                        libc::kill(pid as i32, signal);
                    }
                    signalled.push(pid);
                }
            }
            std::thread::sleep(POLL);
        }
        workers.into_iter().try_for_each(|w| w.join().expect("a trial worker panicked"))
    })
}

/// `helico run` for one trial: the experiment with the trial's overrides, or `--resume` of its
/// interrupted run.
fn child_command(planned: &Planned, id: &str, t: &Trial, settings: &Settings, log: &Path) -> anyhow::Result<Command> {
    let mut cmd = Command::new(&settings.exe);
    match (&t.state, &t.run) {
        (State::Interrupted, Some(run)) => {
            cmd.arg("run").arg("--resume").arg(settings.root.join(run));
        }
        _ => {
            let ablation = AblationRef { id: id.to_owned(), trial: t.index, axes: t.axis_map() };
            cmd.arg("run").arg(&planned.spec.experiment).args(&t.overrides).arg("--runs-dir").arg(&settings.root);
            cmd.env(TRIAL_ENV, serde_json::to_string(&ablation)?);
        }
    }
    let file = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    cmd.arg("--json").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(file);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Ok(cmd)
}

/// The command a trial's snapshot records: the `helico run` that reproduces it alone.
fn run_argv(settings: &Settings, experiment: &Path, t: &Trial) -> Vec<String> {
    let mut argv = vec![settings.exe.display().to_string(), "run".into(), experiment.display().to_string()];
    argv.extend(t.overrides.iter().cloned());
    argv.extend(["--runs-dir".into(), settings.root.display().to_string()]);
    argv
}

/// The newest run recorded as this trial of this ablation (a failed trial may have one).
fn run_of(root: &Path, id: &str, trial: usize) -> Option<String> {
    all_runs(root)
        .into_iter()
        .rev()
        .find(|(_, info)| info.ablation.as_ref().is_some_and(|a| a.id == id && a.trial == trial))
        .map(|(_, info)| info.id)
}

fn run_id(dir: &Path) -> String {
    crate::run::dir::id_of(dir)
}

/// The error of a failed child: from its last error line (`helico: …` or `error: …`) on.
fn error_lines(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("helico: "))
        .or_else(|| lines.iter().position(|l| l.starts_with("error: ")))
        .unwrap_or(lines.len().saturating_sub(5));
    let error = lines[start..].join("\n");
    let error = error.strip_prefix("helico: ").unwrap_or(&error);
    if error.is_empty() {
        format!("the trial process failed without a message; see {}", log.display())
    } else {
        clip(error)
    }
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(ERROR_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// `a=1, seed=0`.
pub fn describe(axes: &[Setting]) -> String {
    if axes.is_empty() {
        return "base".into();
    }
    axes.iter().map(|s| format!("{}={}", s.axis, s.value)).collect::<Vec<_>>().join(", ")
}

fn report(index: usize, t: &Trial, state: State, run: Option<&str>, error: Option<&str>) {
    let what = match state {
        State::Done => format!("done: {}", run.unwrap_or("?")),
        State::Skipped => format!("an identical run already completed: {}", run.unwrap_or("?")),
        State::Interrupted => format!("interrupted: {}", run.unwrap_or("?")),
        _ => format!("failed: {}", error.and_then(|e| e.lines().next()).unwrap_or("")),
    };
    eprintln!("trial {index} ({}): {what}", describe(&t.axes));
}
