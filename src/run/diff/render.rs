//! Printing a [`Diff`]: one document of headings, lines, tables and patches, rendered for the
//! terminal (aligned columns, each value's source on the line below it) or as Markdown
//! (`--md`: pipe tables, sources in italics, patches in fenced blocks).

use std::fmt::Write;

use super::metrics::{Delta, MetricRow, Noise};
use super::{ConfigDiff, Diff, ManifestDiff, label};

/// A table cell: a value and, under it, a note (where the value came from).
struct Cell {
    text: String,
    note: Option<String>,
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell { text, note: None }
    }
}

enum Block {
    Heading(String),
    Line(String),
    Table(Vec<String>, Vec<Vec<Cell>>),
    Patch(String, String),
}

/// The diff for a terminal.
pub fn text(d: &Diff) -> String {
    let mut out = String::new();
    for b in blocks(d) {
        match b {
            Block::Heading(h) => out.push_str(&format!("\n{h}\n")),
            Block::Line(l) => out.push_str(&format!("{l}\n")),
            Block::Table(header, rows) => out.push_str(&aligned(&header, &rows)),
            Block::Patch(title, patch) => out.push_str(&format!("--- {title}\n{patch}")),
        }
    }
    out.trim_start().to_owned()
}

/// The diff as Markdown, for pull requests and notes.
pub fn markdown(d: &Diff) -> String {
    let mut out = String::new();
    for b in blocks(d) {
        match b {
            Block::Heading(h) => out.push_str(&format!("\n### {h}\n\n")),
            Block::Line(l) => out.push_str(&format!("{}\n\n", l.trim())),
            Block::Table(header, rows) => {
                let esc = |s: &str| s.replace('|', "\\|");
                out.push_str(&format!("| {} |\n", header.iter().map(|h| esc(h)).collect::<Vec<_>>().join(" | ")));
                out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
                for row in rows {
                    let cells: Vec<String> = row
                        .iter()
                        .map(|c| match &c.note {
                            Some(n) => format!("{}<br>*{}*", esc(&c.text), esc(n)),
                            None => esc(&c.text),
                        })
                        .collect();
                    out.push_str(&format!("| {} |\n", cells.join(" | ")));
                }
                out.push('\n');
            }
            Block::Patch(title, patch) => out.push_str(&format!("{title}\n\n```diff\n{patch}```\n\n")),
        }
    }
    out.trim().to_owned() + "\n"
}

/// Plain rows as an aligned table (for `helico ls`).
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<Cell>> = rows.iter().map(|r| r.iter().cloned().map(Cell::from).collect()).collect();
    aligned(header, &rows)
}

/// Columns padded to their widest cell; a row whose cells carry notes gets a second line.
fn aligned(header: &[String], rows: &[Vec<Cell>]) -> String {
    let mut lines: Vec<Vec<String>> = vec![header.to_vec()];
    for row in rows {
        lines.push(row.iter().map(|c| c.text.clone()).collect());
        if row.iter().any(|c| c.note.is_some()) {
            lines.push(row.iter().map(|c| c.note.as_ref().map(|n| format!("[{n}]")).unwrap_or_default()).collect());
        }
    }
    let n = header.len();
    let widths: Vec<usize> =
        (0..n).map(|i| lines.iter().map(|l| l.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for l in lines {
        let mut line = String::from(" ");
        for (i, c) in l.iter().enumerate() {
            let _ = write!(line, " {c:<w$}", w = if i + 1 == n { 0 } else { widths[i] });
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn blocks(d: &Diff) -> Vec<Block> {
    let labels: Vec<String> = d.runs.iter().map(|r| r.label.clone()).collect();
    let with_labels = |first: &[&str]| -> Vec<String> {
        first.iter().map(|s| (*s).to_owned()).chain(labels.iter().cloned()).collect()
    };
    let mut b = vec![Block::Heading("runs".into())];
    let rows = d
        .runs
        .iter()
        .map(|r| {
            vec![
                r.label.clone().into(),
                r.id.clone().into(),
                r.status.clone().into(),
                format!("{}/{}", r.step, r.steps).into(),
                r.seed.to_string().into(),
                r.created.clone().into(),
            ]
        })
        .collect();
    b.push(Block::Table(["", "run", "status", "steps", "seed", "created"].map(String::from).to_vec(), rows));
    let same = |s: bool| if s { "same" } else { "differs" };
    b.push(Block::Line(format!(
        "run key: config {} · code {} · data {}",
        same(d.identity.same_config),
        same(d.identity.same_code),
        same(d.identity.same_data)
    )));

    config_blocks(&d.config, &with_labels(&["key"]), &mut b);

    if d.model.same {
        let total = d.model.totals[0].map_or("unknown".to_owned(), thousands);
        b.push(Block::Heading(format!("model: same, {total} parameters")));
    } else {
        b.push(Block::Heading("model (parameters per module)".into()));
        let mut rows: Vec<Vec<Cell>> = d
            .model
            .rows
            .iter()
            .map(|r| {
                let mut row = vec![Cell::from(r.module.clone())];
                for (i, (p, k)) in r.params.iter().zip(&r.instances).enumerate() {
                    let count = match (p, k) {
                        (Some(p), Some(k)) if *k > 1 => format!("{k} × {}", thousands(p / *k as i64)),
                        (Some(p), _) => thousands(*p),
                        _ => "—".into(),
                    };
                    row.push(with_change(count, r.params[0], *p, i).into());
                }
                row
            })
            .collect();
        let mut total = vec![Cell::from("total".to_owned())];
        for (i, t) in d.model.totals.iter().enumerate() {
            total.push(with_change(t.map_or("—".into(), thousands), d.model.totals[0], *t, i).into());
        }
        rows.push(total);
        b.push(Block::Table(with_labels(&["module"]), rows));
    }

    let git: Vec<String> = d
        .code
        .runs
        .iter()
        .zip(&labels)
        .map(|(g, l)| {
            let sha = g.sha.as_deref().map_or("(no commit)", super::code::short);
            let branch = g.branch.as_deref().map(|b| format!(" {b}")).unwrap_or_default();
            let dirty = if !g.dirty {
                "clean".to_owned()
            } else if g.untracked > 0 {
                format!("dirty, {} untracked", g.untracked)
            } else {
                "dirty".to_owned()
            };
            format!("{l} {sha}{branch} ({dirty})")
        })
        .collect();
    b.push(Block::Heading(format!("code: {} · {}", same(d.code.same), git.join(" · "))));
    match &d.code.patches {
        Some(patches) => {
            for (i, p) in patches.iter().enumerate() {
                if let Some(p) = p {
                    b.push(Block::Patch(format!("patch {} → {}", label(0), label(i)), p.clone()));
                }
            }
        }
        None if !d.code.same => b.push(Block::Line("  `helico diff --code` shows the patch between them".into())),
        None => {}
    }

    let hashes: Vec<String> =
        d.data.hashes.iter().zip(&labels).map(|(h, l)| format!("{l} {}", &h[..h.len().min(12)])).collect();
    if d.data.same {
        b.push(Block::Heading(format!("data: same manifest {}", &d.data.hashes[0][..d.data.hashes[0].len().min(12)])));
    } else {
        b.push(Block::Heading(format!("data: differs · {}", hashes.join(" · "))));
        if d.data.manifests.is_none() {
            b.push(Block::Line("  `helico diff --data` lists the files that differ".into()));
        }
    }
    for (i, m) in d.data.manifests.iter().flatten().enumerate() {
        if let Some(m) = m {
            b.extend(manifest_lines(m, &labels[0], &labels[i]).into_iter().map(Block::Line));
        }
    }

    if d.env.is_empty() {
        b.push(Block::Heading("env: same".into()));
    } else {
        b.push(Block::Heading("env (differences)".into()));
        let rows = d
            .env
            .iter()
            .map(|r| {
                let mut row = vec![Cell::from(r.key.clone())];
                row.extend(r.values.iter().map(|v| Cell::from(v.as_ref().map_or("—".into(), |v| v.to_string()))));
                row
            })
            .collect();
        b.push(Block::Table(with_labels(&["key"]), rows));
    }

    metric_blocks(d, &with_labels(&["metric", ""]), &mut b);
    b
}

fn config_blocks(c: &ConfigDiff, header: &[String], b: &mut Vec<Block>) {
    let hidden = match (c.all, c.hidden_nonsemantic) {
        (true, _) => "every key shown; ≠ marks a difference, * a non-semantic key".to_owned(),
        (false, 0) => "non-semantic keys hidden; --all shows every key".to_owned(),
        (false, n) => format!("{n} non-semantic key(s) also differ, hidden; --all shows every key"),
    };
    b.push(Block::Heading(format!("config: {} of {} keys differ ({hidden})", c.differing, c.compared)));
    if !c.rows.is_empty() {
        let rows = c
            .rows
            .iter()
            .map(|r| {
                let star = if c.all && !r.semantic { "*" } else { "" };
                let mark = match (c.all, r.differs) {
                    (false, _) => "",
                    (true, true) => "≠ ",
                    (true, false) => "  ",
                };
                let mut row = vec![Cell::from(format!("{mark}{}{star}", r.key))];
                for (v, s) in r.values.iter().zip(&r.sources) {
                    row.push(Cell { text: v.as_ref().map_or("—".into(), |v| v.to_string()), note: s.clone() });
                }
                row
            })
            .collect();
        b.push(Block::Table(header.to_vec(), rows));
    }
    if c.switches.is_empty() {
        return;
    }
    b.push(Block::Heading("variant switches".into()));
    let rows = c
        .switches
        .iter()
        .map(|s| {
            let mut row = vec![Cell::from(s.slot.clone())];
            for (v, src) in s.variants.iter().zip(&s.sources) {
                row.push(Cell { text: format!("@{v}"), note: src.clone() });
            }
            row
        })
        .collect();
    b.push(Block::Table(header.to_vec(), rows));
    for s in &c.switches {
        for (i, params) in s.only_in.iter().enumerate() {
            if params.is_empty() {
                continue;
            }
            let list: Vec<String> = params.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            b.push(Block::Line(format!(
                "  {}: only in {} (@{}): {}",
                s.slot,
                label(i),
                s.variants[i],
                list.join(", ")
            )));
        }
    }
}

fn manifest_lines(m: &ManifestDiff, base: &str, other: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (p, a, b) in &m.changed {
        out.push(format!(
            "  {other} vs {base}: changed {} ({} → {} bytes)",
            p.display(),
            thousands(*a as i64),
            thousands(*b as i64)
        ));
    }
    out.extend(m.added.iter().map(|p| format!("  {other} vs {base}: added {}", p.display())));
    out.extend(m.removed.iter().map(|p| format!("  {other} vs {base}: removed {}", p.display())));
    for (k, a, b) in &m.params {
        let show = |v: &Option<serde_json::Value>| v.as_ref().map_or("—".into(), |v| v.to_string());
        out.push(format!("  {other} vs {base}: data parameter {k} {} → {}", show(a), show(b)));
    }
    if out.is_empty() {
        out.push(format!("  {other} vs {base}: same files and parameters (the order of files differs)"));
    }
    out
}

fn metric_blocks(d: &Diff, header: &[String], b: &mut Vec<Block>) {
    let m = &d.metrics;
    if m.rows.is_empty() {
        b.push(Block::Heading("metrics: none logged".into()));
        return;
    }
    b.push(Block::Heading(format!(
        "metrics (Δ against {}; best = lowest, or highest for accuracies and throughputs)",
        label(0)
    )));
    let mut rows = Vec::new();
    for r in &m.rows {
        rows.extend(metric_rows(r));
    }
    b.push(Block::Table(header.to_vec(), rows));
    let replicated: Vec<String> = m
        .replicas
        .iter()
        .enumerate()
        .filter(|(_, r)| r.runs.len() > 1)
        .map(|(i, r)| {
            let seeds: Vec<String> = r.seeds.iter().map(u64::to_string).collect();
            format!("{} over seeds {}", label(i), seeds.join(", "))
        })
        .collect();
    if replicated.is_empty() {
        b.push(Block::Line(
            "  no seed replicas: one run per config, so no delta can be judged against seed noise".into(),
        ));
    } else {
        b.push(Block::Line(format!("  seed replicas: {}", replicated.join("; "))));
        b.push(Block::Line(format!("  noise: {}", m.noise_rule)));
    }
}

fn metric_rows(r: &MetricRow) -> Vec<Vec<Cell>> {
    let mut out = Vec::new();
    let row = |name: &str, what: String, cells: Vec<String>| -> Vec<Cell> {
        [name.to_owned(), what].into_iter().chain(cells).map(Cell::from).collect()
    };
    let finals = r
        .cells
        .iter()
        .map(|c| {
            let v = c.last.map_or("—".into(), |p| format!("{} @{}", num(p.value), p.step));
            match c.delta_final {
                Some(d) => format!("{v} ({})", delta(d)),
                None => v,
            }
        })
        .collect();
    out.push(row(&r.metric, "final".into(), finals));
    out.push(row(
        "",
        "best".into(),
        r.cells.iter().map(|c| c.best.map_or("—".into(), |p| format!("{} @{}", num(p.value), p.step))).collect(),
    ));
    if let Some(step) = r.matched_step.filter(|s| r.cells.iter().any(|c| c.last.is_some_and(|p| p.step != *s))) {
        let cells = r
            .cells
            .iter()
            .map(|c| {
                let v = c.at_matched.map_or("—".into(), num);
                match c.delta_matched {
                    Some(d) => format!("{v} ({})", delta(d)),
                    None => v,
                }
            })
            .collect();
        out.push(row("", format!("at step {step}"), cells));
    }
    if r.cells.iter().any(|c| c.seeds.is_some()) {
        let seeds = r
            .cells
            .iter()
            .map(|c| match c.seeds {
                Some(s) => match s.sd {
                    Some(sd) => format!("{} ± {} (n={})", num(s.mean), num(sd), s.n),
                    None => format!("{} (n=1)", num(s.mean)),
                },
                None => "—".into(),
            })
            .collect();
        out.push(row("", "seeds".into(), seeds));
        let verdicts = r
            .cells
            .iter()
            .map(|c| match c.noise {
                Some(Noise::Beyond { delta, pooled_sd }) => {
                    format!("beyond noise: |{}| > 2 × {}", num(delta), num(pooled_sd))
                }
                Some(Noise::Within { delta, pooled_sd }) => {
                    format!("within noise: |{}| ≤ 2 × {}", num(delta), num(pooled_sd))
                }
                Some(Noise::NoReplicas) => "no replicas".into(),
                None => String::new(),
            })
            .collect();
        out.push(row("", "noise".into(), verdicts));
    }
    out
}

/// A value with its change from the baseline's, for counts.
fn with_change(text: String, base: Option<i64>, this: Option<i64>, i: usize) -> String {
    match (base, this) {
        (Some(a), Some(b)) if i > 0 && a != b && a != 0 => {
            format!("{text} ({:+.1}%)", (b - a) as f64 / a as f64 * 100.0)
        }
        _ => text,
    }
}

fn delta(d: Delta) -> String {
    match d.rel {
        Some(r) => format!("{:+.4}, {:+.1}%", d.abs, r * 100.0),
        None => format!("{:+.4}", d.abs),
    }
}

/// Four decimals, or one past a thousand (throughputs).
fn num(x: f64) -> String {
    if x.abs() >= 1000.0 { format!("{x:.1}") } else { format!("{x:.4}") }
}

/// 1234567 → "1,234,567".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_easily() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(-999), "-999");
        assert_eq!(num(2.84123), "2.8412");
        assert_eq!(num(31234.56), "31234.6");
        assert_eq!(with_change("20".into(), Some(10), Some(20), 1), "20 (+100.0%)");
    }

    #[test]
    fn notes_go_under_their_values_and_columns_align() {
        let rows =
            vec![vec![Cell::from("lr".to_owned()), Cell { text: "0.1".into(), note: Some("cli lr=0.1".into()) }]];
        let t = aligned(&["key".into(), "A".into()], &rows);
        assert_eq!(t, "  key A\n  lr  0.1\n      [cli lr=0.1]\n");
    }
}
