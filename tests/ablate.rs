//! `helico ablate` end to end in a temporary git repository: the issue's Done-when command (six
//! trials, all skipped on a second run, the report checked against numbers computed here from
//! the runs' own files), trial counts of grid, zip and oat, the dry-run table, the budget, bad
//! input, failures with keep-going, fail-fast and `--resume`, Ctrl-C, and `--help`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::snapshot;
use crate::support::{Workspace, helico_run, json};

const EXP: &str = "experiments/short.toml";

/// The tiny experiment cut to 4 steps, committed: a trial takes about a second.
fn workspace() -> Workspace {
    let w = Workspace::new();
    w.write(EXP, "extends = [\"tiny.toml\"]\nname = \"tiny\"\n\n[train]\nsteps = 4\n");
    w.git(&["add", "-A"]);
    w.git(&["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "short"]);
    w
}

fn ablate(w: &Workspace, args: &[&str]) -> crate::support::Output {
    let mut a = vec!["ablate", EXP];
    a.extend_from_slice(args);
    w.run(&a)
}

fn dry_run(w: &Workspace, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--dry-run", "--json"]);
    serde_json::from_str(&ablate(w, &a).expect_code(0).stdout).expect("json")
}

/// Ablation directories, oldest first.
fn ablations(w: &Workspace) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(w.path().join("runs/_ablations"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort_by_key(|d| json(&d.join("spec.json"))["created"].as_str().map(str::to_owned));
    dirs
}

fn id_of(dir: &Path) -> String {
    dir.file_name().and_then(|n| n.to_str()).expect("utf-8 id").to_owned()
}

fn states(dir: &Path) -> Vec<String> {
    let trials = json(&dir.join("trials.json"));
    trials.as_array().expect("trials").iter().map(|t| t["state"].as_str().expect("state").to_owned()).collect()
}

/// The last record of `split` in a run's metrics.jsonl.
fn last_record(run: &Path, split: &str) -> Value {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics");
    text.lines().rev().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|r| r["split"] == split).expect(split)
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (m, (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt())
}

#[test]
fn the_issue_command_runs_six_trials_skips_them_again_and_reports_them() {
    let w = workspace();
    let args = ["model.n_layers=1,2,3", "seed=0..2"];
    let out = ablate(&w, &args).expect_code(0);
    assert!(out.stdout.contains("6 trials; 6 done, 0 skipped"), "{}", out.stdout);
    let runs = w.runs();
    assert_eq!(runs.len(), 6);
    let [dir] = ablations(&w).try_into().expect("one ablation");
    let id = id_of(&dir);
    assert!(id.starts_with("tiny-") && id.len() == "tiny-20261121-101500-1a2b3c4d".len(), "{id}");
    assert_eq!(states(&dir), ["done"; 6]);
    for run in &runs {
        let info = json(&run.join("run.json"));
        let resolved: toml::Table =
            std::fs::read_to_string(run.join("config/resolved.toml")).expect("resolved").parse().expect("toml");
        let ablation = &info["ablation"];
        assert_eq!(ablation["id"], id.as_str());
        assert_eq!(ablation["axes"]["model.n_layers"], resolved["model"]["n_layers"].to_string().as_str());
        assert_eq!(ablation["axes"]["seed"], resolved["seed"].to_string().as_str());
        let rerun = std::fs::read_to_string(run.join("RERUN")).expect("RERUN");
        assert!(rerun.contains("run experiments/short.toml model.n_layers="), "each trial reruns alone: {rerun}");
    }

    let again = ablate(&w, &args).expect_code(0);
    assert!(again.stdout.contains("6 trials; 0 done, 6 skipped"), "{}", again.stdout);
    assert_eq!(w.runs().len(), 6, "nothing ran twice");
    assert_eq!(states(&ablations(&w)[1]), ["skipped"; 6]);

    // The report, against means and sample sds computed here from each run's metrics.jsonl,
    // grouped by the n_layers its resolved config records.
    let mut expected: BTreeMap<i64, Vec<[f64; 4]>> = BTreeMap::new();
    for run in &runs {
        let resolved: toml::Table =
            std::fs::read_to_string(run.join("config/resolved.toml")).expect("resolved").parse().expect("toml");
        let (eval, train) = (last_record(run, "eval"), last_record(run, "train"));
        let metric = |r: &Value, k: &str| r[k].as_f64().expect(k);
        expected.entry(resolved["model"]["n_layers"].as_integer().expect("n_layers")).or_default().push([
            metric(&eval, "loss"),
            metric(&eval, "masked_accuracy"),
            metric(&eval, "perplexity_bound"),
            metric(&train, "loss"),
        ]);
    }
    let report: Value =
        serde_json::from_str(&w.run(&["ablate", "report", &id, "--json"]).expect_code(0).stdout).expect("json");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3);
    for row in rows {
        let n_layers: i64 = row["settings"][0]["value"].as_str().expect("value").parse().expect("int");
        assert_eq!(row["settings"].as_array().map(Vec::len), Some(1), "seeds are averaged, not shown");
        let runs_of = &expected[&n_layers];
        assert_eq!(row["runs"].as_array().map(Vec::len), Some(2));
        for m in 0..4 {
            let (mean, sd) = mean_sd(&runs_of.iter().map(|r| r[m]).collect::<Vec<_>>());
            let stat = &row["stats"][m];
            assert!((stat["mean"].as_f64().expect("mean") - mean).abs() <= 1e-12 * mean.abs(), "{n_layers} {m}");
            assert!((stat["sd"].as_f64().expect("sd") - sd).abs() <= 1e-9 * sd.abs().max(1e-12), "{n_layers} {m}");
            assert_eq!(stat["n"], 2);
        }
    }
    let md = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    assert!(md.contains("| model.n_layers | eval loss | masked accuracy | perplexity bound | train loss | n | runs |"));
    for link in md.split("](").skip(1).map(|s| &s[..s.find(')').expect("link end")]) {
        assert!(dir.join(link).join("run.json").is_file(), "{link} links a run");
    }
    let csv = std::fs::read_to_string(dir.join("report.csv")).expect("report.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("model.n_layers,final_eval_loss_mean,final_eval_loss_sd,"), "{}", lines[0]);
    let first: Vec<&str> = lines[1].split(',').collect();
    let (mean, _) = mean_sd(&expected[&1].iter().map(|r| r[0]).collect::<Vec<_>>());
    assert_eq!((first[0], first[1].parse::<f64>().expect("mean")), ("1", mean));
    // The second ablation's trials stand on the same runs: the same numbers.
    let latest: Value =
        serde_json::from_str(&w.run(&["ablate", "report", "latest", "--json"]).expect_code(0).stdout).expect("json");
    assert_eq!(latest["rows"], report["rows"]);
    let unknown = w.run(&["ablate", "report", "nope"]).expect_code(2);
    assert!(unknown.stderr.contains("no ablation `nope`") && unknown.stderr.contains(&id), "{}", unknown.stderr);
}

#[test]
fn grid_zip_oat_and_the_file_form_plan_the_right_trials() {
    let w = workspace();
    let count = |v: &Value| v["trials"].as_array().map(Vec::len).expect("trials");
    let grid = dry_run(&w, &["model.n_layers=1,2", "optimizer.lr=1e-3,2e-3,3e-3"]);
    assert_eq!(count(&grid), 6);
    let zip = dry_run(&w, &["--zip", "shape: model.n_layers=1,2; model.d_model=16,32", "seed=0..2"]);
    assert_eq!(count(&zip), 4);
    assert_eq!(zip["trials"][3]["overrides"], serde_json::json!(["model.n_layers=2", "model.d_model=32", "seed=1"]));

    // tiny.toml has n_layers = 1 and lr = 3e-3: those oat values are the base itself.
    let oat = dry_run(&w, &["--mode", "oat", "model.n_layers=1,2", "optimizer.lr=3e-3,1e-3", "seed=0..2"]);
    let trials = oat["trials"].as_array().expect("trials");
    assert_eq!(trials.len(), 10);
    let same_as: Vec<Option<u64>> = trials.iter().map(|t| t["same_as"].as_u64()).collect();
    assert_eq!(same_as, [None, None, Some(0), Some(1), None, None, Some(0), Some(1), None, None]);
    assert_eq!(oat["totals"]["to_run"], 6);
    assert_eq!(oat["totals"]["duplicates"], 4);
    let nonsemantic = dry_run(&w, &["train.log_every=1,2"]);
    assert_eq!(nonsemantic["trials"][1]["state"], "duplicate", "identical run keys are one trial");

    std::fs::create_dir_all(w.path().join("ablations")).expect("mkdir");
    w.write(
        "ablations/depth.toml",
        "base = \"../experiments/short.toml\"\nmode = \"oat\"\nrepeat = 2\n\n[[axis]]\n\"model.n_layers\" = [1, 2]\n\n[[axis]]\n\"optimizer.lr\" = \"3e-3,1e-3\"\n",
    );
    let file: Value =
        serde_json::from_str(&w.run(&["ablate", "ablations/depth.toml", "--dry-run", "--json"]).expect_code(0).stdout)
            .expect("json");
    assert_eq!(file["spec_hash"], oat["spec_hash"], "the file form is the command line form");
    assert!(!w.path().join("runs").exists(), "a dry run writes nothing");

    // The table a person reads, hashes and the machine's device redacted.
    let text = ablate(&w, &["--mode", "oat", "model.n_layers=1,2", "optimizer.lr=3e-3,1e-3", "seed=0..2", "--dry-run"])
        .expect_code(0)
        .stdout;
    let device = oat["totals"]["device"].as_str().expect("device");
    let hash = regex::Regex::new(r"\b[0-9a-f]{8}\b").expect("regex");
    snapshot!("ablate_dry_run_oat", hash.replace_all(&text.replace(device, "[device]"), "[hash]"));
}

#[test]
fn the_budget_is_measured_from_past_runs_and_enforced() {
    let w = workspace();
    let out = ablate(&w, &["model.n_layers=1,2", "--max-gpu-hours", "10"]).expect_code(2);
    assert!(
        out.stderr.contains("cannot check --max-gpu-hours") && out.stderr.contains("trials 0, 1"),
        "{}",
        out.stderr
    );
    assert!(!w.path().join("runs").exists(), "nothing written");

    w.run(&["run", EXP, "model.n_layers=2", "seed=7"]).expect_code(0);
    let [past] = w.runs().try_into().expect("one run");
    let summary = json(&past.join("summary.json"));
    let secs = summary["wall_secs"].as_f64().expect("wall_secs");
    let plan = dry_run(&w, &["model.n_layers=1,2", "seed=0..2"]);
    let estimates: Vec<Option<f64>> =
        plan["trials"].as_array().expect("trials").iter().map(|t| t["estimate_secs"].as_f64()).collect();
    assert_eq!(&estimates[..2], [None, None], "no past run of a 1-layer model");
    for e in &estimates[2..] {
        assert!((e.expect("measured") - secs).abs() < 1e-9 * secs, "same steps as the past run: {e:?} vs {secs}");
    }
    let two = ["model.n_layers=2", "seed=0..2"];
    let over = ablate(&w, &[&two[..], &["--max-gpu-hours", "1e-9"]].concat()).expect_code(2);
    assert!(over.stderr.contains("over --max-gpu-hours 0.000000001"), "{}", over.stderr);
    assert!(!w.path().join("runs/_ablations").exists(), "nothing written");
    ablate(&w, &[&two[..], &["--max-gpu-hours", "100", "--dry-run"]].concat()).expect_code(0);
}

#[test]
fn bad_axes_and_bad_values_are_all_reported_and_nothing_is_written() {
    let w = workspace();
    let grammar = ablate(
        &w,
        &[
            "seed=3..3",
            "train.steps=@*",
            "model.n_layers=linspace(1,2,0)",
            "--zip",
            "g: model.d_model=16,32; model.n_heads=2",
        ],
    )
    .expect_code(2);
    for expected in [
        "`3..3` is an empty range",
        "`train.steps` is not a slot",
        "count 0 gives no values",
        "members must have equal length",
        "the ablation is invalid: 4 problems",
    ] {
        assert!(grammar.stderr.contains(expected), "{expected}\n{}", grammar.stderr);
    }
    let config =
        ablate(&w, &["model.n_layer=1,2", "schedule=@warmup_cosine,@cosine", "optimizer.lr=1e-3,abc"]).expect_code(2);
    for expected in [
        "unknown key `model.n_layer`",
        "  --> axis `model.n_layer`",
        "did you mean `model.n_layers`?",
        "`schedule` has no variant `cosine`",
        "  --> axis `schedule` = @cosine",
        "`optimizer.lr` expects a number ≥ 0, got string \"abc\"",
        "  --> axis `optimizer.lr` = abc",
        "in 8 trials",
    ] {
        assert!(config.stderr.contains(expected), "{expected}\n{}", config.stderr);
    }
    let json_out = ablate(&w, &["model.n_layer=1,2", "--json"]).expect_code(2);
    let v: Value = serde_json::from_str(&json_out.stdout).expect("json");
    assert_eq!(v["problems"][0]["axis"], "model.n_layer");
    assert_eq!(v["problems"][0]["kind"], "unknown-key");
    let data = ablate(&w, &["data.files=[{path=\"data/missing.fasta\",domain=\"protein\"}]"]).expect_code(2);
    assert!(data.stderr.contains("data/missing.fasta") && data.stderr.contains("axis `data.files`"), "{}", data.stderr);
    assert!(!w.path().join("runs").exists(), "nothing written");
}

#[test]
fn a_failed_trial_does_not_stop_the_others_and_resume_reruns_only_what_is_not_done() {
    let w = workspace();
    // lr = 1e30 passes validation and diverges at run time.
    let axis = "optimizer.lr=1e30,2e-3,3e-3";
    let out = ablate(&w, &[axis, "--fail-fast"]).expect_code(1);
    let [dir] = ablations(&w).try_into().expect("one ablation");
    let id = id_of(&dir);
    assert!(out.stdout.contains("failed: trial 0 (optimizer.lr=1e30)"), "{}", out.stdout);
    assert!(out.stdout.contains("training diverged"), "the error line is in the summary: {}", out.stdout);
    assert_eq!(states(&dir), ["failed", "pending", "pending"], "fail-fast stopped the rest");

    // Child processes this time: the failure's error lines come from the trial's log.
    let resumed = w.run(&["ablate", "--resume", &id, "--jobs", "2", "--keep-going"]).expect_code(1);
    assert!(
        resumed.stdout.contains("failed: trial 0") && resumed.stdout.contains("training diverged"),
        "{}",
        resumed.stdout
    );
    assert_eq!(states(&dir), ["failed", "done", "done"]);
    assert!(dir.join("logs/trial-0000.log").is_file());
    let runs_before = w.runs().len();
    w.run(&["ablate", "--resume", &id]).expect_code(1);
    assert_eq!(w.runs().len(), runs_before + 1, "only the failed trial ran again");
    let summary = json(&dir.join("summary.json"));
    assert_eq!(summary["failed"][0]["trial"], 0);
    assert!(summary["failed"][0]["error"].as_str().is_some_and(|e| e.contains("training diverged")), "{summary}");

    let changed = w.run(&["ablate", EXP, "optimizer.lr=1e30,2e-3", "--resume", &id]).expect_code(2);
    assert!(
        changed.stderr.contains("was started with another spec") && changed.stderr.contains("is gone"),
        "{}",
        changed.stderr
    );
    let same = w.run(&["ablate", EXP, axis, "--resume", &id, "--dry-run"]).expect_code(0);
    assert!(same.stdout.contains("1 to run"), "{}", same.stdout);
    let report = w.run(&["ablate", "report", &id]).expect_code(0);
    assert!(report.stdout.contains("- trial 0 (optimizer.lr=1e30): failed: "), "{}", report.stdout);
}

#[test]
fn ctrl_c_leaves_trials_resumable_and_resume_continues_them() {
    let w = workspace();
    let mut child = w
        .helico(&["ablate", EXP, "train.steps=80", "model.d_model=32", "seed=0..2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        assert!(std::time::Instant::now() < deadline, "the first trial never logged 5 records");
        assert!(child.try_wait().expect("wait").is_none(), "the ablation ended before it could be stopped");
        let step = w
            .runs()
            .first()
            .and_then(|r| std::fs::read_to_string(r.join("metrics.jsonl")).ok())
            .map(|t| t.lines().count());
        if step.is_some_and(|n| n >= 5) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    assert_eq!(child.wait().expect("wait").code(), Some(130));
    let [dir] = ablations(&w).try_into().expect("one ablation");
    assert_eq!(states(&dir), ["interrupted", "pending"]);
    let [run] = w.runs().try_into().expect("one run");
    let out = w.run(&["ablate", "--resume", &id_of(&dir)]).expect_code(0);
    assert!(out.stdout.contains("2 trials; 2 done"), "{}", out.stdout);
    assert_eq!(w.runs().len(), 2, "the interrupted trial continued in its own run directory");
    assert_eq!(json(&run.join("run.json"))["status"], "done");
    assert_eq!(json(&run.join("run.json"))["step"], 80);
}

#[test]
fn help_pins_the_ablate_surface() {
    snapshot!("help__ablate", helico_run(&["ablate", "--help"]).expect_code(0).stdout);
    snapshot!("help__ablate_report", helico_run(&["ablate", "report", "--help"]).expect_code(0).stdout);
}
