//! `helico run` end to end in a temporary git repository: the snapshot, run-key dedup, resume
//! equivalence (after SIGINT and after SIGKILL), bad input, secrets, sampling.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{EXPERIMENT, Workspace, json, run};

/// (step, loss) of every training record, in file order (a line being written is skipped).
fn train_losses(dir: &Path) -> Vec<(u64, f64)> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).expect("metrics");
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["split"] == "train")
        .map(|v| (v["step"].as_u64().expect("step"), v["loss"].as_f64().expect("loss")))
        .collect()
}

#[test]
fn the_snapshot_says_exactly_what_ran() {
    let w = Workspace::new();
    let out = w.run(&["run", "experiments/tiny.toml", "train.steps=8", "--json"]).expect_code(0);
    let launched: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(launched["status"], "done");
    let [dir] = w.runs().try_into().expect("one run");
    assert!(dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.len() == "20261121-101500-1a2b3c4d".len()));

    let info = json(&dir.join("run.json"));
    assert_eq!(info["status"], "done");
    assert_eq!(info["step"], 8);
    let identity = &info["identity"];
    for k in ["run_key", "config_hash", "code_hash", "data_hash"] {
        assert_eq!(identity[k].as_str().map(str::len), Some(64), "{k}");
    }

    let git = json(&dir.join("code/git.json"));
    assert_eq!(git["sha"].as_str(), Some(w.git(&["rev-parse", "HEAD"]).as_str()));
    assert_eq!(git["branch"], "main");
    assert_eq!(git["dirty"], false);
    assert!(!dir.join("code/dirty.patch").exists());

    let resolved = std::fs::read_to_string(dir.join("config/resolved.toml")).expect("resolved");
    let explained = w.run(&["explain", "experiments/tiny.toml", "train.steps=8", "--json"]).expect_code(0);
    let explained: Value = serde_json::from_str(&explained.stdout).expect("json");
    let resolved: toml::Table = resolved.parse().expect("toml");
    assert_eq!(
        serde_json::to_value(&resolved).expect("json"),
        explained["config"],
        "resolved.toml is the resolved config"
    );
    assert_eq!(explained["config_hash"], identity["config_hash"]);
    assert_eq!(std::fs::read_to_string(dir.join("config/inputs/00-experiment-tiny.toml")).expect("input"), EXPERIMENT);
    let provenance = json(&dir.join("config/provenance.json"));
    assert_eq!(provenance["final"]["model.n_layers"]["line"], 5);
    assert_eq!(provenance["final"]["train.steps"]["kind"], "cli");
    let layers = json(&dir.join("config/inputs/layers.json"));
    assert!(layers["argv"].as_array().expect("argv").iter().any(|a| a == "train.steps=8"));

    let env = json(&dir.join("env.json"));
    assert!(env["host"]["logical_cores"].as_u64().is_some_and(|n| n > 0), "{env}");
    assert!(
        env["env"].as_object().expect("env").keys().all(|k| !k.contains("PATH") || k == "LD_LIBRARY_PATH"),
        "only allowlisted variables"
    );

    let manifest = json(&dir.join("data/manifest.json"));
    assert_eq!(manifest["files"].as_array().map(Vec::len), Some(3));
    assert_eq!(manifest["hash"], identity["data_hash"]);
    assert_eq!(json(&dir.join("seeds.json"))["run"], 0);
    let rerun = std::fs::read_to_string(dir.join("RERUN")).expect("RERUN");
    assert!(rerun.contains(&format!("git checkout {}", w.git(&["rev-parse", "HEAD"]))), "{rerun}");
    assert!(rerun.contains("run experiments/tiny.toml train.steps=8 --json --force"), "{rerun}");

    let steps: Vec<u64> = train_losses(&dir).iter().map(|s| s.0).collect();
    assert_eq!(steps, (1..=8).collect::<Vec<_>>());
    let summary = json(&dir.join("summary.json"));
    assert!(summary["final_eval_loss"].as_f64().is_some_and(f64::is_finite));
    let index = json(&dir.join("checkpoints/index.json"));
    assert_eq!(
        index.as_array().expect("index").iter().map(|e| e["step"].as_u64().expect("step")).collect::<Vec<_>>(),
        [4, 8]
    );
    assert!(json(&dir.join("model.json"))["total"].as_i64().is_some_and(|n| n > 0));
}

#[test]
fn a_dirty_tree_is_recorded_and_changes_the_code_hash() {
    let w = Workspace::new();
    w.run(&["run", "experiments/tiny.toml", "train.steps=4"]).expect_code(0);
    w.write("notes.txt", "an untracked file\n");
    w.write(".gitignore", "/runs\n# edited\n");
    let out = w.run(&["run", "experiments/tiny.toml", "train.steps=4"]).expect_code(0);
    assert!(out.stdout.starts_with("done:"), "a changed tree is another run: {}", out.stdout);
    let runs = w.runs();
    assert_eq!(runs.len(), 2);
    let (first, second) = (json(&runs[0].join("run.json")), json(&runs[1].join("run.json")));
    assert_ne!(first["identity"]["code_hash"], second["identity"]["code_hash"]);
    assert_eq!(first["identity"]["data_hash"], second["identity"]["data_hash"]);
    assert_eq!(first["identity"]["config_hash"], second["identity"]["config_hash"]);
    let git = json(&runs[1].join("code/git.json"));
    assert_eq!(git["dirty"], true);
    let patch = std::fs::read_to_string(runs[1].join("code/dirty.patch")).expect("patch");
    assert!(patch.contains("+an untracked file") && patch.contains("+# edited"), "{patch}");
}

#[test]
fn an_identical_run_is_reported_not_repeated() {
    let w = Workspace::new();
    w.run(&["run", "experiments/tiny.toml", "train.steps=4"]).expect_code(0);
    let again = w
        .run(&["run", "experiments/tiny.toml", "train.steps=4", "train.log_every=2", "runtime.threads=1"])
        .expect_code(0);
    assert!(again.stdout.starts_with("an identical run already completed: runs/tiny/"), "{}", again.stdout);
    assert_eq!(w.runs().len(), 1, "non-semantic keys do not make another run");
    w.run(&["run", "experiments/tiny.toml", "train.steps=4", "--force"]).expect_code(0);
    w.run(&["run", "experiments/tiny.toml", "train.steps=4", "seed=1"]).expect_code(0);
    assert_eq!(w.runs().len(), 3);
    // Other data contents, same paths: another data hash, another run.
    w.write("data/r.fasta", ">r0\nACGUACGU\n>r1\nGGGCCCAAAU\n");
    w.git(&["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "data"]);
    let out = w.run(&["run", "experiments/tiny.toml", "train.steps=4", "data.holdout_fraction=0.0"]).expect_code(0);
    assert!(out.stdout.starts_with("done:"), "{}", out.stdout);
}

/// Kills (SIGKILL, mid-step) or interrupts (SIGINT) a run once it has logged `at` steps.
pub(crate) fn stop_midway(w: &Workspace, args: &[&str], signal: i32, at: u64) -> PathBuf {
    let before = w.runs();
    let mut child =
        w.helico(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let dir = loop {
        assert!(std::time::Instant::now() < deadline, "the run never got to step {at}");
        assert!(child.try_wait().expect("wait").is_none(), "the run ended before it could be stopped");
        if let Some(dir) = w.runs().into_iter().find(|d| !before.contains(d))
            && dir.join("metrics.jsonl").exists()
            && train_losses(&dir).last().is_some_and(|s| s.0 >= at)
        {
            break dir;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let status = child.wait().expect("wait");
    if signal == libc::SIGINT {
        assert_eq!(status.code(), Some(130), "SIGINT exits with 130");
        assert_eq!(json(&dir.join("run.json"))["status"], "interrupted");
    } else {
        assert_eq!(json(&dir.join("run.json"))["status"], "running", "a killed run cannot say anything");
    }
    dir
}

#[test]
fn resume_continues_bit_for_bit_after_sigint_and_sigkill() {
    let w = Workspace::new();
    // Long enough to be stopped midway; every step logged.
    let args = [
        "run",
        "experiments/tiny.toml",
        "train.steps=300",
        "train.checkpoint_every=25",
        "train.eval_every=50",
        "model.d_model=32",
    ];
    let reference = {
        let mut a = args.to_vec();
        a.push("--runs-dir=ref");
        w.run(&a).expect_code(0);
        let dir = std::fs::read_dir(w.path().join("ref/tiny")).expect("ref").flatten().next().expect("one run").path();
        train_losses(&dir)
    };
    assert_eq!(reference.len(), 300);

    for signal in [libc::SIGINT, libc::SIGKILL] {
        let mut a = args.to_vec();
        a.push("--force");
        let dir = stop_midway(&w, &a, signal, 60);
        let out = w.run(&["run", "--resume", dir.to_str().expect("utf8")]).expect_code(0);
        assert!(out.stdout.starts_with("done:"), "{}", out.stdout);
        let resumed = train_losses(&dir);
        assert_eq!(resumed.len(), 300, "one record per step, the repeated ones dropped");
        for (a, b) in reference.iter().zip(&resumed) {
            assert!(
                a.0 == b.0 && a.1.to_bits() == b.1.to_bits(),
                "signal {signal}: step {} loss {} resumed vs {} uninterrupted",
                a.0,
                b.1,
                a.1
            );
        }
        let info = json(&dir.join("run.json"));
        assert_eq!(info["status"], "done");
        assert_eq!(info["commands"].as_array().map(Vec::len), Some(2), "the resume is recorded");
    }
    let out = w.run(&["run", "--resume", "tiny/does-not-exist"]).expect_code(2);
    assert!(out.stderr.contains("no run `tiny/does-not-exist`"), "{}", out.stderr);
}

#[test]
fn bad_input_fails_before_a_run_directory_exists() {
    let w = Workspace::new();
    w.write("data/bad.fasta", ">ok\nMKV\n>bad\nMKJV\n");
    let out = w
        .run(&["run", "experiments/tiny.toml", "data.files+={path=\"data/bad.fasta\", domain=\"protein\"}"])
        .expect_code(2);
    assert!(out.stderr.contains("data/bad.fasta:3: sequence `bad` is not valid protein"), "{}", out.stderr);
    let out = w
        .run(&["run", "experiments/tiny.toml", "data.files=[{path=\"data/missing.fasta\", domain=\"rna\"}]"])
        .expect_code(2);
    assert!(out.stderr.contains("cannot read data/missing.fasta"), "{}", out.stderr);
    let out = w.run(&["run", "experiments/tiny.toml", "name=../escape"]).expect_code(2);
    assert!(out.stderr.contains("`name` = \"../escape\" is not allowed"), "{}", out.stderr);
    let out = w.run(&["run", "experiments/tiny.toml", "train.batch_size=500"]).expect_code(2);
    assert!(out.stderr.contains("fewer than train.batch_size = 500"), "{}", out.stderr);
    assert!(!w.path().join("runs").exists() || w.runs().is_empty(), "no run directory was left behind");
}

#[test]
fn secrets_never_reach_the_run_directory() {
    let w = Workspace::new();
    let token = "hf_abcdefghijklmnopqrstuvwxyzABCD0123";
    let key = "0123456789abcdef0123456789abcdef01234567";
    w.write("secrets.env", &format!("HF_TOKEN={token}\n"));
    let mut cmd = w.helico(&["run", "experiments/tiny.toml", "train.steps=2"]);
    cmd.env("HF_TOKEN", token).env("WANDB_API_KEY", key).env("HELICO__TRAIN__LOG_EVERY", "1");
    run(&mut cmd).expect_code(0);
    let [dir] = w.runs().try_into().expect("one run");
    let mut checked = 0;
    for entry in walk(&dir) {
        let bytes = std::fs::read(&entry).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(token) && !text.contains(key), "{} leaks a secret", entry.display());
        checked += 1;
    }
    assert!(checked > 10);
    let patch = std::fs::read_to_string(dir.join("code/dirty.patch")).expect("the untracked file is in the patch");
    assert!(patch.contains("[REDACTED"), "{patch}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        if e.path().is_dir() { out.extend(walk(&e.path())) } else { out.push(e.path()) }
    }
    out
}

#[test]
fn samples_hold_only_valid_tokens_of_their_domain() {
    let w = Workspace::new();
    w.run(&["run", "experiments/tiny.toml"]).expect_code(0);
    let [dir] = w.runs().try_into().expect("one run");
    let id = format!("tiny/{}", dir.file_name().and_then(|n| n.to_str()).expect("name"));
    let by_name =
        w.run(&["sample", "tiny@latest", "--domain", "rna", "--n", "1", "--steps", "2", "--json"]).expect_code(0);
    let by_name: Value = serde_json::from_str(&by_name.stdout).expect("json");
    assert_eq!(by_name["run"].as_str(), Some(id.as_str()), "name@latest names the newest run");
    let out = w.run(&["sample", "nothing@latest", "--domain", "rna"]).expect_code(2);
    assert!(out.stderr.contains("no run of experiment `nothing`") && out.stderr.contains(&id), "{}", out.stderr);
    for (domain, alphabet) in [("protein", "ACDEFGHIKLMNPQRSTVWYX"), ("rna", "ACGUN")] {
        let out = w.run(&["sample", &id, "--domain", domain, "--n", "6", "--steps", "10", "--json"]).expect_code(0);
        let report: Value = serde_json::from_str(&out.stdout).expect("json");
        assert_eq!(report["weights"], "ema", "the run kept an EMA");
        let samples = report["samples"].as_array().expect("samples");
        assert_eq!(samples.len(), 6);
        for s in samples {
            let s = s.as_str().expect("str");
            assert!(!s.is_empty() && s.chars().all(|c| alphabet.contains(c)), "{domain} sample {s:?}");
        }
        assert_eq!(report["metrics"]["validity"], 1.0);
    }
    let trace = w.path().join("trace.jsonl");
    let out = w
        .run(&[
            "sample",
            &id,
            "--domain",
            "smiles",
            "--n",
            "4",
            "--steps",
            "5",
            "--trace",
            trace.to_str().expect("utf8"),
            "--json",
        ])
        .expect_code(0);
    let report: Value = serde_json::from_str(&out.stdout).expect("json");
    let vocab: Value = json(&dir.join("data/vocab.json"));
    let tokens: Vec<String> = vocab["smiles"]
        .as_array()
        .expect("smiles tokens")
        .iter()
        .map(|t| t.as_str().expect("str").to_owned())
        .collect();
    for s in report["samples"].as_array().expect("samples") {
        let s = s.as_str().expect("str");
        assert!(!s.contains('?') && !s.contains('_'), "only SMILES tokens, no MASK: {s:?}");
        assert!(s.chars().all(|c| tokens.iter().any(|t| t.contains(c))), "{s:?}");
    }
    let lines = std::fs::read_to_string(&trace).expect("trace");
    assert_eq!(lines.lines().count(), 6, "the start and one state per step");
    let out = w.run(&["sample", &id, "--domain", "protein", "--steps", "500"]).expect_code(2);
    assert!(out.stderr.contains("steps = 500 must lie in 1..=20"), "{}", out.stderr);
}

/// The acceptance check on the real embedded corpus: the D3PM loss falls.
#[test]
fn d3pm_loss_falls_on_the_demo_data() {
    crate::support::setup_file("data/demo/smiles.smi");
    let runs = tempfile::tempdir().expect("tempdir");
    let out = crate::support::helico_run(&[
        "run",
        "experiments/demo.toml",
        "train.steps=150",
        "train.eval_every=50",
        "train.log_every=5",
        "schedule.warmup_steps=20",
        "model.n_layers=2",
        "model.d_model=64",
        "--force",
        &format!("--runs-dir={}", runs.path().display()),
    ])
    .expect_code(0);
    let dir = PathBuf::from(out.stdout.trim_start_matches("done: ").split(' ').next().expect("dir"));
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).expect("metrics");
    let eval: Vec<f64> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .filter(|v| v["split"] == "eval")
        .map(|v| v["loss"].as_f64().expect("loss"))
        .collect();
    assert_eq!(eval.len(), 3);
    let train = train_losses(&dir);
    let first: f64 = train[..10].iter().map(|s| s.1).sum::<f64>() / 10.0;
    let last: f64 = train[train.len() - 10..].iter().map(|s| s.1).sum::<f64>() / 10.0;
    assert!(last < 0.8 * first, "train loss {first:.3} → {last:.3}");
    assert!(eval[2] < eval[0], "held-out loss falls: {eval:?}");
}
