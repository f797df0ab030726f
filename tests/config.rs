//! The config engine through the CLI: layer order, variant switches, append/reset, env,
//! unknown keys in every layer, the schema and the error corpus.

use serde_json::Value;

use crate::snapshot;
use crate::support::{helico, helico_run, root, run};

fn explain_json(cmd: &mut std::process::Command) -> Value {
    let out = run(cmd).expect_code(0);
    serde_json::from_str(&out.stdout).expect("explain --json prints JSON")
}

fn sources(explained: &Value) -> Vec<String> {
    let history = explained["history"].as_array().expect("history");
    history.iter().map(|e| format!("{} {}", e["source"]["kind"].as_str().unwrap_or("?"), e["value"])).collect()
}

#[test]
fn layers_apply_in_order_file_set_file_env_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = dir.path().join("set.toml");
    std::fs::write(&set, "[train]\nsteps = 300\n").expect("write");
    let set = set.to_str().expect("utf8");
    // file (1200) < set-file (300) < env (400) < cli in order (500, then 600)
    let mut cmd = helico();
    cmd.args([
        "explain",
        "experiments/demo.toml",
        "train.steps",
        "train.steps=500",
        "train.steps=600",
        "--set-file",
        set,
        "--json",
    ]);
    cmd.env("HELICO__TRAIN__STEPS", "400");
    let ex = explain_json(&mut cmd);
    assert_eq!(ex["value"], 600);
    assert_eq!(sources(&ex), ["file 100000", "file 1200", "file 300", "env 400", "cli 500", "cli 600"]);
    assert_eq!(ex["source"]["kind"], "cli");
    assert_eq!(ex["source"]["index"], 2);

    // Without the CLI, the environment wins; without it, the set-file.
    let mut cmd = helico();
    cmd.args(["explain", "experiments/demo.toml", "train.steps", "--set-file", set, "--json"])
        .env("HELICO__TRAIN__STEPS", "400");
    assert_eq!(explain_json(&mut cmd)["value"], 400);
    let ex =
        explain_json(helico().args(["explain", "experiments/demo.toml", "train.steps", "--set-file", set, "--json"]));
    assert_eq!(ex["value"], 300);
    assert_eq!(ex["source"]["kind"], "file");
    assert_eq!(ex["source"]["role"], "set_file");
}

#[test]
fn a_variant_switch_drops_what_the_new_variant_lacks_and_says_so() {
    let out = helico_run(&["check", "experiments/demo.toml", "schedule=@constant", "--json"]).expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("json");
    let dropped = v["dropped"].as_array().expect("dropped");
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    let note = dropped[0].as_str().expect("str");
    assert!(note.contains("`schedule.warmup_steps` = 100 (set at experiments/demo.toml:16:1)"), "{note}");
    assert!(note.contains("cli argument 1 `schedule=@constant` switched it to @constant"), "{note}");

    // Parameters both variants have survive a switch.
    let ex = explain_json(helico().args([
        "explain",
        "experiments/demo.toml",
        "schedule",
        "schedule=@warmup_linear",
        "--json",
    ]));
    assert_eq!(ex["value"]["type"], "warmup_linear");
    assert_eq!(ex["value"]["warmup_steps"], 100);
    assert_eq!(ex["value"]["min_lr_ratio"], 0.0, "the new variant's own default");

    // Switch and set in one token.
    let ex = explain_json(helico().args([
        "explain",
        "experiments/demo.toml",
        "schedule",
        "schedule=@warmup_linear{min_lr_ratio=0.5}",
        "--json",
    ]));
    assert_eq!(ex["value"]["min_lr_ratio"], 0.5);

    // A key the new variant lacks, set after the switch, is an error, not a silent drop.
    let out =
        helico_run(&["check", "experiments/demo.toml", "schedule=@constant", "schedule.warmup_steps=3"]).expect_code(2);
    assert!(
        out.stderr.contains("unknown key `schedule.warmup_steps`: not a parameter of `schedule` (variant @constant)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_switch_inside_a_file_layer_drops_keys_from_lower_layers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = dir.path().join("constant.toml");
    std::fs::write(&set, "[schedule]\ntype = \"constant\"\n").expect("write");
    let out = helico_run(&["check", "experiments/demo.toml", "--set-file", set.to_str().expect("utf8")]).expect_code(0);
    assert!(out.stderr.contains("note: dropped `schedule.warmup_steps` = 100"), "{}", out.stderr);
}

#[test]
fn append_and_reset() {
    let ex = explain_json(helico().args([
        "explain",
        "experiments/demo.toml",
        "data.files",
        "data.files+={path=\"x.txt\", domain=\"rna\"}",
        "--json",
    ]));
    let files = ex["value"].as_array().expect("array");
    assert_eq!(files.len(), 4);
    assert_eq!(files[3]["path"], "x.txt");
    assert_eq!(files[3]["limit"], 0, "defaults fill inside array elements");

    let ex = explain_json(helico().args([
        "explain",
        "experiments/demo.toml",
        "model.n_layers",
        "~model.n_layers",
        "--json",
    ]));
    assert_eq!(ex["value"], 12, "back to the registry default");
    assert_eq!(ex["source"]["kind"], "default");

    let out = helico_run(&["check", "experiments/demo.toml", "train.steps+=1", "~train.bogus"]).expect_code(2);
    assert!(out.stderr.contains("cannot append to `train.steps`: it is not an array"), "{}", out.stderr);
    assert!(out.stderr.contains("cannot reset `train.bogus`: no such key"), "{}", out.stderr);
}

#[test]
fn unknown_keys_in_every_layer_are_all_reported_with_their_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = dir.path().join("set.toml");
    std::fs::write(&set, "[optimizer]\nlrr = 1.0\n").expect("write");
    let mut cmd = helico();
    cmd.args([
        "check",
        "tests/fixtures/broken/unknown_keys.toml",
        "--set-file",
        set.to_str().expect("utf8"),
        "model.n_head=3",
        "--json",
    ]);
    cmd.env("HELICO__TRAIN__STPES", "4");
    let out = run(&mut cmd).expect_code(2);
    let v: Value = serde_json::from_str(&out.stdout).expect("json");
    let problems = v["problems"].as_array().expect("problems");
    let found: Vec<(String, String, String)> = problems
        .iter()
        .map(|p| {
            (
                p["key"].as_str().unwrap_or("").to_owned(),
                p["source"]["kind"].as_str().unwrap_or("").to_owned(),
                p["help"][0].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for (key, kind, help) in [
        ("stpes", "file", "did you mean `train.steps`?"),
        ("model.n_layer", "file", "did you mean `model.n_layers`?"),
        ("optimizer.lrr", "file", "did you mean `optimizer.lr`?"),
        ("train.stpes", "env", "did you mean `train.steps`?"),
        ("model.n_head", "cli", "did you mean `model.n_heads`?"),
    ] {
        assert!(
            found.contains(&(key.to_owned(), kind.to_owned(), help.to_owned())),
            "{key} ({kind}) missing from {found:#?}"
        );
    }
    // Input order: files, then env, then the command line.
    let kinds: Vec<&str> = found.iter().map(|f| f.1.as_str()).collect();
    assert_eq!(kinds.last(), Some(&"cli"));
}

/// The acceptance check: the reference experiment is valid, a typo is named and fixed.
#[test]
fn atomwell_checks_and_a_typo_is_named_with_the_real_key() {
    let out = helico_run(&["explain", "experiments/atomwell.toml", "--json"]).expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["config"]["model"]["n_layers"], 12);
    let out = helico_run(&["check", "experiments/atomwell.toml", "model.n_layer=2"]).expect_code(2);
    assert!(out.stderr.contains("unknown key `model.n_layer`"), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean `model.n_layers`?"), "{}", out.stderr);
    assert!(out.stderr.contains("cli argument 1 `model.n_layer=2`"), "{}", out.stderr);
}

#[test]
fn malformed_overrides_are_argument_errors() {
    let out = helico_run(&["check", "experiments/demo.toml", "train.steps"]).expect_code(2);
    assert!(out.stderr.contains("`train.steps` is not an override"), "{}", out.stderr);
}

#[test]
fn non_semantic_keys_stay_out_of_the_config_hash() {
    let hash = |extra: &[&str]| -> String {
        let mut args = vec!["explain", "experiments/demo.toml", "--json"];
        args.extend_from_slice(extra);
        let v: Value = serde_json::from_str(&helico_run(&args).expect_code(0).stdout).expect("json");
        v["config_hash"].as_str().expect("hash").to_owned()
    };
    let base = hash(&[]);
    assert_eq!(base, hash(&["train.log_every=3", "runtime.attention=@math", "name=other"]));
    assert_ne!(base, hash(&["seed=1"]));
    assert_ne!(
        base,
        hash(&["data.files+={path=\"x.txt\", domain=\"rna\"}"]),
        "adding a file is semantic even though paths are not"
    );
}

/// Every broken experiment in the corpus: all problems, sources and suggestions, reviewed.
#[test]
fn error_corpus() {
    let mut files: Vec<_> =
        std::fs::read_dir(root().join("tests/fixtures/broken")).expect("corpus").flatten().map(|e| e.path()).collect();
    files.sort();
    assert!(files.len() >= 10);
    for f in files {
        let name = f.file_stem().and_then(|s| s.to_str()).expect("name").to_owned();
        let rel = f.strip_prefix(root()).expect("under root").to_str().expect("utf8").to_owned();
        let out = helico_run(&["check", &rel]).expect_code(2);
        snapshot!(format!("broken__{name}"), out.stderr);
    }
}

#[test]
fn resolved_configs() {
    for exp in ["demo", "atomwell"] {
        let out = helico_run(&["explain", &format!("experiments/{exp}.toml")]).expect_code(0);
        snapshot!(format!("resolved__{exp}"), out.stdout);
    }
}

#[test]
fn schema_is_committed_current_and_validates_every_experiment_with_taplo() {
    let out = helico_run(&["schema"]).expect_code(0);
    let committed = std::fs::read_to_string(root().join("helico.schema.json")).expect("helico.schema.json");
    assert_eq!(out.stdout, committed, "helico.schema.json is stale: run `helico schema > helico.schema.json`");
    snapshot!("schema", out.stdout);

    let taplo = crate::support::setup_file(".venv/bin/taplo");
    let mut experiments: Vec<String> = std::fs::read_dir(root().join("experiments"))
        .expect("experiments")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.strip_prefix(root()).expect("under root").display().to_string())
        .collect();
    experiments.sort();
    for e in &experiments {
        let text = std::fs::read_to_string(root().join(e)).expect("read");
        assert!(text.starts_with("#:schema ../helico.schema.json\n"), "{e} must start with the #:schema line");
    }
    let ok = run(std::process::Command::new(&taplo).current_dir(root()).arg("check").args(&experiments));
    assert_eq!(ok.code, 0, "taplo rejects an experiment:\n{}", ok.stderr);

    // ... and the same validator rejects a typo, so the check above can fail.
    let dir = root().join("experiments");
    let bad = tempfile::Builder::new().prefix("zz-typo-").suffix(".toml").tempfile_in(&dir).expect("temp experiment");
    std::fs::write(bad.path(), "#:schema ../helico.schema.json\n[model]\nn_layer = 3\n").expect("write");
    let rejected = run(std::process::Command::new(&taplo).current_dir(root()).arg("check").arg(bad.path()));
    assert_ne!(rejected.code, 0, "taplo accepted an unknown key");
}

#[test]
fn registry_listing() {
    snapshot!("registry_list", helico_run(&["registry", "list"]).expect_code(0).stdout);
    for what in ["model.d3pm_lm", "schedule", "attention.sdpa"] {
        snapshot!(format!("registry_show__{what}"), helico_run(&["registry", "show", what]).expect_code(0).stdout);
    }
    let out = helico_run(&["registry", "show", "model.d3pm"]).expect_code(2);
    assert!(out.stderr.contains("did you mean `model.d3pm_lm`?"), "{}", out.stderr);
    let v: Value =
        serde_json::from_str(&helico_run(&["registry", "list", "--json"]).expect_code(0).stdout).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(6));
}

#[test]
fn help_pins_the_cli_surface() {
    for sub in [
        "",
        "run",
        "check",
        "explain",
        "sample",
        "publish",
        "schema",
        "registry",
        "demo-data",
        "diff",
        "ls",
        "freeze",
        "preprocess",
        "bench",
        "bench d3pm",
        "bench loader",
        "bench parse",
    ] {
        let mut args: Vec<&str> = sub.split_whitespace().collect();
        args.push("--help");
        snapshot!(
            format!("help__{}", if sub.is_empty() { "helico".to_owned() } else { sub.replace(' ', "-") }),
            helico_run(&args).expect_code(0).stdout
        );
    }
}
