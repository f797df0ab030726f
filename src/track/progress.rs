//! Progress of long work: a bar with loss, tokens/s and ETA on a terminal, plain log lines
//! otherwise (batch logs, CI), so both a person and a log file can follow a run.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
}

impl Progress {
    /// Progress over `total` steps, starting at `done`.
    pub fn new(total: u64, done: u64, what: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None, total };
        }
        let bar = ProgressBar::new(total).with_position(done);
        let style = ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} {{msg}} [{{elapsed_precise}}, ETA {{eta}}]"
        ))
        .expect("a valid progress template");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress { bar: Some(bar), total }
    }

    /// Reports step `pos` with a status line (`loss 2.31 · 41k tok/s`).
    pub fn update(&self, pos: u64, status: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(pos);
                bar.set_message(status.to_owned());
            }
            None => eprintln!("step {pos}/{} {status}", self.total),
        }
    }

    /// A line that stays above the bar (evaluation results, checkpoints).
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
