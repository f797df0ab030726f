//! `metrics.jsonl`: one JSON object per line (`step`, `split`, the metric values, wall time),
//! appended and flushed as the run goes so a crash loses nothing already logged. A resumed
//! run first drops the lines past its checkpoint, so the file reads as one uninterrupted run.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value};

/// One logged record: a line `{"step": …, "split": …, "time": …, "<metric>": …}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub step: u64,
    /// `train` or `eval`.
    pub split: String,
    /// Seconds of training so far (wall time, resumes included).
    pub time: f64,
    pub values: BTreeMap<String, f64>,
}

impl Record {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("step".into(), self.step.into());
        m.insert("split".into(), self.split.clone().into());
        m.insert("time".into(), self.time.into());
        for (k, v) in &self.values {
            m.insert(k.clone(), serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number));
        }
        Value::Object(m)
    }

    pub fn from_json(v: &Value) -> Option<Record> {
        let m = v.as_object()?;
        let values = m
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "step" | "split" | "time"))
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(f64::NAN)))
            .collect();
        Some(Record {
            step: m.get("step")?.as_u64()?,
            split: m.get("split")?.as_str()?.to_owned(),
            time: m.get("time")?.as_f64()?,
            values,
        })
    }
}

pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

pub const FILE: &str = "metrics.jsonl";

impl MetricsLog {
    /// Opens `dir/metrics.jsonl` for appending, first dropping records after `keep_through`
    /// (a resumed run repeats those steps).
    pub fn open(dir: &Path, keep_through: u64) -> anyhow::Result<MetricsLog> {
        let path = dir.join(FILE);
        if path.exists() {
            let text: String = read(&path)?
                .into_iter()
                .filter(|r| r.step <= keep_through)
                .map(|r| format!("{}\n", r.to_json()))
                .collect();
            crate::atomic::write(&path, text.as_bytes())?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(MetricsLog { path, file })
    }

    pub fn append(&mut self, record: &Record) -> anyhow::Result<()> {
        writeln!(self.file, "{}", record.to_json())
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// Every record of a metrics file; a torn last line (a crash mid-write) is ignored.
pub fn read(path: &Path) -> anyhow::Result<Vec<Record>> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let lines: Vec<String> = BufReader::new(file).lines().collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Value>(line).ok().as_ref().and_then(Record::from_json) {
            Some(r) => out.push(r),
            None if i + 1 == lines.len() => {}
            None => anyhow::bail!("{}:{}: not a metrics record", path.display(), i + 1),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(step: u64, loss: f64) -> Record {
        Record { step, split: "train".into(), time: 0.0, values: BTreeMap::from([("loss".into(), loss)]) }
    }

    #[test]
    fn reopening_drops_records_past_the_checkpoint_and_tolerates_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = MetricsLog::open(dir.path(), 0).expect("open");
        for s in 1..=5 {
            log.append(&rec(s, 1.0 / s as f64)).expect("append");
        }
        drop(log);
        let mut f = OpenOptions::new().append(true).open(dir.path().join(FILE)).expect("open");
        write!(f, "{{\"step\": 6, \"spl").expect("torn write");
        assert_eq!(read(&dir.path().join(FILE)).expect("read").len(), 5);
        let mut log = MetricsLog::open(dir.path(), 3).expect("reopen");
        log.append(&rec(4, 0.3)).expect("append");
        let steps: Vec<u64> = read(&dir.path().join(FILE)).expect("read").iter().map(|r| r.step).collect();
        assert_eq!(steps, [1, 2, 3, 4]);
    }
}
