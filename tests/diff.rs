//! `helico diff`, `helico ls` and `helico freeze` on real runs in a temporary git repository:
//! key-aligned config differences with their sources, variant switches, N-way tables, metric
//! deltas and seed noise, code and data differences, listing filters, the freeze round trip,
//! and bad input.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Output, Workspace, json, run};

/// Runs the tiny experiment for 4 steps with `overrides`; returns the new run directory.
fn train(w: &Workspace, overrides: &[&str]) -> PathBuf {
    let before = w.runs();
    let mut args = vec!["run", "experiments/tiny.toml", "train.steps=4"];
    args.extend_from_slice(overrides);
    w.run(&args).expect_code(0);
    w.runs().into_iter().find(|d| !before.contains(d)).expect("a new run directory")
}

fn id(dir: &Path) -> String {
    format!("tiny/{}", dir.file_name().and_then(|n| n.to_str()).expect("utf8"))
}

fn diff_json(w: &Workspace, args: &[&str]) -> Value {
    let mut a = vec!["diff"];
    a.extend_from_slice(args);
    a.push("--json");
    serde_json::from_str(&w.run(&a).expect_code(0).stdout).expect("json")
}

/// (step, value) of a metric in a run's metrics.jsonl, read here as the oracle.
fn curve(dir: &Path, split: &str, metric: &str) -> Vec<(u64, f64)> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).expect("metrics");
    let mut out: Vec<(u64, f64)> = Vec::new();
    for v in text.lines().map(|l| serde_json::from_str::<Value>(l).expect("json")).filter(|v| v["split"] == split) {
        let point = (v["step"].as_u64().expect("step"), v[metric].as_f64().expect("value"));
        match out.last_mut() {
            Some(last) if last.0 == point.0 => *last = point,
            _ => out.push(point),
        }
    }
    out
}

fn keys(rows: &Value) -> Vec<&str> {
    rows.as_array().expect("rows").iter().map(|r| r["key"].as_str().expect("key")).collect()
}

fn redacted(text: &str) -> String {
    let rules = [
        (r"\d{8}-\d{6}-[0-9a-f]{8}", "[run]"),
        (r"\d{4}-\d{2}-\d{2}T[0-9:.]+Z", "[time]"),
        (r"\b[0-9a-f]{10,12}\b", "[hash]"),
        (r"[+-]?\d+\.\d{4}\b", "[x]"),
        (r"[+-]\d+\.\d%", "[%]"),
        (r"\[x\] @\d+", "[x] @[step]"),
        // A relative change is left out when the baseline is 0 (masked accuracy after 4 steps).
        (r"\(\[x\](, \[%\])?\)", "([Δ])"),
    ];
    rules
        .iter()
        .fold(text.to_owned(), |t, (re, to)| regex::Regex::new(re).expect("regex").replace_all(&t, *to).into_owned())
}

#[test]
fn two_runs_show_only_their_overridden_keys_with_sources_and_switches() {
    let w = Workspace::new();
    let a = train(&w, &[]);
    let b = train(&w, &["optimizer.lr=0.001", "schedule=@constant", "model.dropout=0.1", "train.log_every=2"]);
    let d = diff_json(&w, &[&id(&a), &id(&b)]);

    let config = &d["config"];
    assert_eq!(keys(&config["rows"]), ["model.dropout", "optimizer.lr"], "only the overridden semantic keys");
    let rows = config["rows"].as_array().expect("rows");
    assert_eq!(rows[0]["values"], serde_json::json!([0.0, 0.1]));
    assert_eq!(rows[0]["sources"], serde_json::json!(["default", "cli model.dropout=0.1"]));
    assert_eq!(rows[1]["sources"], serde_json::json!(["experiments/tiny.toml:13", "cli optimizer.lr=0.001"]));
    assert_eq!(config["hidden_nonsemantic"], 1, "train.log_every differs but is not semantic");
    let [switch] = config["switches"].as_array().expect("switches").as_slice() else { panic!("one switch: {config}") };
    assert_eq!(switch["slot"], "schedule");
    assert_eq!(switch["variants"], serde_json::json!(["warmup_cosine", "constant"]));
    assert_eq!(switch["sources"][1], "cli schedule=@constant");
    assert_eq!(switch["only_in"], serde_json::json!([[["warmup_steps", 2], ["min_lr_ratio", 0.1]], []]));
    assert_eq!(d["identity"]["same_config"], false);
    assert_eq!(d["identity"]["same_code"], true);
    assert_eq!(d["model"]["same"], true);
    assert_eq!(d["env"], serde_json::json!([]));

    // Metrics: final, best and matched step against the runs' own metrics.jsonl.
    let eval =
        d["metrics"]["rows"].as_array().expect("rows").iter().find(|r| r["metric"] == "eval/loss").expect("eval/loss");
    let (ea, eb) = (curve(&a, "eval", "loss"), curve(&b, "eval", "loss"));
    let (fa, fb) = (ea.last().expect("eval").1, eb.last().expect("eval").1);
    assert_eq!(eval["matched_step"], 4);
    assert_eq!(eval["cells"][0]["final"]["value"].as_f64(), Some(fa));
    assert!((eval["cells"][1]["delta_final"]["abs"].as_f64().expect("delta") - (fb - fa)).abs() < 1e-12);
    assert!((eval["cells"][1]["delta_final"]["rel"].as_f64().expect("rel") - (fb - fa) / fa).abs() < 1e-12);
    let train_loss =
        d["metrics"]["rows"].as_array().expect("rows").iter().find(|r| r["metric"] == "train/loss").expect("train");
    let best = curve(&b, "train", "loss").into_iter().min_by(|x, y| x.1.total_cmp(&y.1)).expect("best");
    assert_eq!(train_loss["cells"][1]["best"]["step"].as_u64(), Some(best.0));
    assert_eq!(eval["cells"][1]["noise"], Value::Null, "no replicas, no verdict");

    let text = w.run(&["diff", &id(&a), &id(&b)]).expect_code(0).stdout;
    crate::snapshot!("diff__two_runs", redacted(&text));
    let md = w.run(&["diff", &id(&a), &id(&b), "--md"]).expect_code(0).stdout;
    crate::snapshot!("diff__two_runs_md", redacted(&md));

    // --all: equal keys and non-semantic ones too.
    let all = diff_json(&w, &[&id(&a), &id(&b), "--all"]);
    let rows = all["config"]["rows"].as_array().expect("rows");
    let row = |k: &str| rows.iter().find(|r| r["key"] == k).unwrap_or_else(|| panic!("{k} in --all"));
    assert_eq!(row("model.n_layers")["differs"], false);
    assert_eq!(row("train.log_every")["semantic"], false);
    assert_eq!(row("train.log_every")["values"], serde_json::json!([1, 2]));
    assert_eq!(
        row("data.files[1].domain")["values"],
        serde_json::json!(["rna", "rna"]),
        "arrays of tables align by element"
    );
    assert!(all["config"]["compared"].as_u64() > d["config"]["compared"].as_u64());
}

#[test]
fn three_runs_make_a_table_of_the_varying_rows() {
    let w = Workspace::new();
    let runs = [train(&w, &[]), train(&w, &["optimizer.lr=0.001"]), train(&w, &["model.n_layers=2"])];
    let ids: Vec<String> = runs.iter().map(|r| id(r)).collect();
    let args: Vec<&str> = ids.iter().map(String::as_str).collect();
    let d = diff_json(&w, &args);
    assert_eq!(keys(&d["config"]["rows"]), ["model.n_layers", "optimizer.lr"]);
    assert_eq!(d["config"]["rows"][0]["values"], serde_json::json!([1, 1, 2]));
    assert_eq!(d["config"]["rows"][1]["values"], serde_json::json!([0.003, 0.001, 0.003]));
    let blocks = d["model"]["rows"].as_array().expect("rows").iter().find(|r| r["module"] == "blocks").expect("blocks");
    assert_eq!(blocks["instances"], serde_json::json!([1, 1, 2]));
    let model = |r: &Path| json(&r.join("model.json"));
    assert_eq!(
        d["model"]["totals"],
        serde_json::json!([model(&runs[0])["total"], model(&runs[1])["total"], model(&runs[2])["total"]])
    );
    let text = w.run(&{
        let mut a = vec!["diff"];
        a.extend_from_slice(&args);
        a
    });
    let text = text.expect_code(0).stdout;
    let header = text.lines().find(|l| l.trim_start().starts_with("key")).expect("config header");
    assert_eq!(header.split_whitespace().collect::<Vec<_>>(), ["key", "A", "B", "C"]);
    assert!(text.contains("model.n_layers") && !text.contains("train.steps"), "{text}");
}

#[test]
fn seed_replicas_give_mean_sd_and_a_noise_verdict() {
    let w = Workspace::new();
    let a0 = train(&w, &[]);
    let a1 = train(&w, &["seed=1"]);
    let b0 = train(&w, &["optimizer.lr=0.001"]);
    let b1 = train(&w, &["optimizer.lr=0.001", "seed=1"]);
    let d = diff_json(&w, &[&id(&a0), &id(&b0)]);
    assert_eq!(d["metrics"]["replicas"][0]["seeds"], serde_json::json!([0, 1]));
    assert_eq!(d["metrics"]["replicas"][1]["runs"], serde_json::json!([id(&b0), id(&b1)]));
    let eval =
        d["metrics"]["rows"].as_array().expect("rows").iter().find(|r| r["metric"] == "eval/loss").expect("eval/loss");

    let last = |dir: &Path| curve(dir, "eval", "loss").last().expect("eval").1;
    let (xa, xb) = ([last(&a0), last(&a1)], [last(&b0), last(&b1)]);
    let mean = |x: [f64; 2]| (x[0] + x[1]) / 2.0;
    let var = |x: [f64; 2]| (x[0] - mean(x)).powi(2) + (x[1] - mean(x)).powi(2);
    let (sa, sb) = (var(xa).sqrt(), var(xb).sqrt());
    let seeds = &eval["cells"][0]["seeds"];
    assert_eq!(seeds["n"], 2);
    assert!((seeds["mean"].as_f64().expect("mean") - mean(xa)).abs() < 1e-12);
    assert!((seeds["sd"].as_f64().expect("sd") - sa).abs() < 1e-12);
    assert!((eval["cells"][1]["seeds"]["sd"].as_f64().expect("sd") - sb).abs() < 1e-12);
    // The stated rule: |Δ of means| > 2 × pooled sd, pooled over 1 + 1 degrees of freedom.
    let pooled = ((var(xa) + var(xb)) / 2.0).sqrt();
    let delta = mean(xb) - mean(xa);
    let verdict = if delta.abs() > 2.0 * pooled { "beyond" } else { "within" };
    let noise = &eval["cells"][1]["noise"];
    assert_eq!(noise["verdict"], verdict);
    assert!((noise["pooled_sd"].as_f64().expect("pooled") - pooled).abs() < 1e-12);

    let text = w.run(&["diff", &id(&a0), &id(&b0)]).expect_code(0).stdout;
    assert!(text.contains("(n=2)") && text.contains(&format!("{verdict} noise")), "{text}");
    assert!(text.contains("A over seeds 0, 1; B over seeds 0, 1") && text.contains("2 × pooled sd"), "{text}");
}

#[test]
fn code_and_data_differences_show_on_request() {
    let w = Workspace::new();
    let clean = train(&w, &[]);
    w.write(".gitignore", "/runs\n# edited\n");
    let dirty = train(&w, &[]);
    let d = diff_json(&w, &[&id(&clean), &id(&dirty), "--code"]);
    assert_eq!(d["code"]["same"], false);
    assert_eq!(d["code"]["runs"][1]["dirty"], true);
    let patch = d["code"]["patches"][1].as_str().expect("patch");
    assert!(
        patch.contains("same commit") && patch.contains("uncommitted changes of B") && patch.contains("+# edited"),
        "{patch}"
    );
    let text = w.run(&["diff", &id(&clean), &id(&dirty)]).expect_code(0).stdout;
    assert!(text.contains("(dirty)") && text.contains("--code"), "{text}");

    let old_size = std::fs::metadata(w.path().join("data/r.fasta")).expect("stat").len();
    w.write("data/r.fasta", ">r0\nACGUACGU\n>r1\nGGGCCCAAAU\n>r2\nACGUACGUAAGG\n");
    w.git(&["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "new data"]);
    let moved = train(&w, &["data.holdout_fraction=0.0"]);
    let d = diff_json(&w, &[&id(&clean), &id(&moved), "--code", "--data"]);
    let patch = d["code"]["patches"][1].as_str().expect("patch");
    assert!(
        patch.contains("# commits: git diff") && patch.contains("+# edited") && patch.contains("+ACGUACGUAAGG"),
        "{patch}"
    );
    assert_eq!(d["data"]["same"], false);
    let m = &d["data"]["manifests"][1];
    let new_size = std::fs::metadata(w.path().join("data/r.fasta")).expect("stat").len();
    assert_eq!(m["changed"], serde_json::json!([["data/r.fasta", old_size, new_size]]));
    assert_eq!(m["params"], serde_json::json!([["holdout_fraction", 0.1, 0.0]]));
    let text = w.run(&["diff", &id(&clean), &id(&moved), "--data"]).expect_code(0).stdout;
    assert!(text.contains("B vs A: changed data/r.fasta"), "{text}");
}

#[test]
fn ls_filters_on_config_keys_and_status() {
    let w = Workspace::new();
    let small = train(&w, &[]);
    let deep = train(&w, &["model.n_layers=2", "schedule=@constant"]);
    let ls = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["ls"];
        a.extend_from_slice(args);
        a.push("--json");
        let v: Value = serde_json::from_str(&w.run(&a).expect_code(0).stdout).expect("json");
        v["runs"].as_array().expect("runs").iter().map(|r| r["id"].as_str().expect("id").to_owned()).collect()
    };
    assert_eq!(ls(&[]), [id(&small), id(&deep)]);
    assert_eq!(ls(&["model.n_layers>=2"]), [id(&deep)]);
    assert_eq!(ls(&["schedule=@warmup_cosine"]), [id(&small)]);
    assert_eq!(ls(&["status=done", "optimizer.lr=3e-3"]), [id(&small), id(&deep)]);
    assert!(ls(&["status=failed"]).is_empty());
    let text = w.run(&["ls"]).expect_code(0).stdout;
    let line = text.lines().find(|l| l.contains(&id(&deep))).expect("listed");
    assert!(
        line.contains("done") && line.contains("4/4") && line.contains("model.n_layers=2 schedule=@constant"),
        "{text}"
    );
    let out = w.run(&["ls", "model.n_layer=2"]).expect_code(2);
    assert!(out.stderr.contains("did you mean `model.n_layers`"), "{}", out.stderr);
}

#[test]
fn freeze_writes_an_experiment_that_resolves_to_the_run() {
    let w = Workspace::new();
    w.write("more.toml", "[train]\neval_batches = 1\n");
    let mut cmd = w.helico(&[
        "run",
        "experiments/tiny.toml",
        "train.steps=4",
        "optimizer.lr=0.001",
        "schedule=@constant",
        "model.n_layers=2",
        "train.log_every=2",
        "--set-file",
        "more.toml",
    ]);
    run(cmd.env("HELICO__SEED", "3")).expect_code(0);
    let [dir] = w.runs().try_into().expect("one run");
    let resolved: toml::Table =
        std::fs::read_to_string(dir.join("config/resolved.toml")).expect("resolved").parse().expect("toml");
    let resolved = serde_json::to_value(&resolved).expect("json");
    let explain = |file: &str| -> Value {
        serde_json::from_str::<Value>(&w.run(&["explain", file, "--json"]).expect_code(0).stdout).expect("json")["config"].clone()
    };

    let out = w.run(&["freeze", &id(&dir), "-o", "experiments/frozen/tiny.toml"]).expect_code(0);
    assert!(out.stdout.contains("extends ../tiny.toml"), "{}", out.stdout);
    let text = std::fs::read_to_string(w.path().join("experiments/frozen/tiny.toml")).expect("frozen");
    let frozen: toml::Table = text.parse().expect("toml");
    assert_eq!(frozen["extends"], toml::Value::Array(vec!["../tiny.toml".into()]));
    let mut set: Vec<String> = Vec::new();
    for (k, v) in &frozen {
        match v {
            toml::Value::Table(t) => set.extend(t.keys().map(|s| format!("{k}.{s}"))),
            _ => set.push(k.clone()),
        }
    }
    set.sort();
    assert_eq!(
        set,
        [
            "extends",
            "model.n_layers",
            "name",
            "optimizer.lr",
            "schedule.type",
            "seed",
            "train.eval_batches",
            "train.log_every",
            "train.steps"
        ],
        "{text}"
    );
    assert_eq!(explain("experiments/frozen/tiny.toml"), resolved, "the round trip gives the run's config");

    let out = w.run(&["freeze", &id(&dir), "-o", "experiments/frozen/tiny.toml"]).expect_code(2);
    assert!(out.stderr.contains("exists: pass --force"), "{}", out.stderr);

    // Without its experiment file the run freezes into the whole config.
    std::fs::rename(w.path().join("experiments/tiny.toml"), w.path().join("experiments/gone.toml")).expect("move");
    let out = w.run(&["freeze", "tiny@latest", "-o", "full.toml", "--json"]).expect_code(0);
    let report: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(report["extends"], Value::Null);
    assert!(report["note"].as_str().is_some_and(|n| n.contains("experiments/tiny.toml is gone")), "{report}");
    assert!(!std::fs::read_to_string(w.path().join("full.toml")).expect("full").contains("extends"));
    assert_eq!(explain("full.toml"), resolved);
}

/// A copy of a run directory (checkpoints left out) under another name, to break.
fn copy_run(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            if entry.file_name() != "checkpoints" {
                std::fs::create_dir_all(&target).expect("mkdir");
                copy_run(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn bad_input_exits_2_naming_the_file_and_writes_nothing() {
    let w = Workspace::new();
    let good = train(&w, &[]);
    let broken = |name: &str, edit: &dyn Fn(&Path)| -> String {
        let dir = w.path().join("runs/tiny").join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        copy_run(&good, &dir);
        edit(&dir);
        dir.to_str().expect("utf8").to_owned()
    };
    let expect = |out: Output, needle: &str| {
        assert!(out.stderr.contains(needle), "expected {needle:?} in\n{}", out.stderr);
    };

    let corrupt = broken("corrupt", &|d| std::fs::write(d.join("run.json"), "{ not json").expect("write"));
    expect(w.run(&["diff", &id(&good), &corrupt]).expect_code(2), "corrupt/run.json is corrupt");
    let missing = broken("missing", &|d| std::fs::remove_file(d.join("config/resolved.toml")).expect("rm"));
    expect(w.run(&["diff", &id(&good), &missing]).expect_code(2), "missing/config/resolved.toml is missing");
    expect(w.run(&["freeze", &missing, "-o", "x.toml"]).expect_code(2), "resolved.toml is missing");
    assert!(!w.path().join("x.toml").exists(), "nothing written");
    expect(w.run(&["diff", &id(&good), "tiny/nope"]).expect_code(2), "no run `tiny/nope`");
    w.run(&["diff", &id(&good)]).expect_code(2);
    let other = broken("other-family", &|d| {
        let p = d.join("config/resolved.toml");
        let text = std::fs::read_to_string(&p).expect("read").replace("type = \"d3pm_lm\"", "type = \"af3\"");
        std::fs::write(p, text).expect("write");
    });
    expect(w.run(&["diff", &id(&good), &other]).expect_code(2), "different model families");
}
