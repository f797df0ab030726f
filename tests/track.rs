//! Trackers end to end, each checked by the real library of its format: the W&B offline run
//! read back by wandb 0.28's own reader and protobuf classes, plots decoded as PNG and parsed
//! as SVG, the Hugging Face cache written and read by `huggingface_hub`, and the `publish`
//! folder's weights read by `safetensors`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::data_support::oracle;
use crate::support::{Workspace, json};
use helico::track::hf::{HfCache, HfRef};
use helico::track::plot::{self, Series};

/// The offline run log of a run directory, read by `tests/oracles/wandb_read.py`.
fn wandb_records(run: &Path) -> (Value, Vec<Value>) {
    let links = json(&run.join("links.json"));
    let link = links["wandb"].clone();
    let id = link["run_id"].as_str().expect("run_id");
    let log = run.join(link["offline_dir"].as_str().expect("offline_dir")).join(format!("run-{id}.wandb"));
    let records = oracle("wandb_read.py", &[&log]);
    (link, records.as_array().expect("records").clone())
}

/// metrics.jsonl as W&B rows: step → {"<split>/<metric>": value}.
fn metric_rows(run: &Path) -> BTreeMap<u64, BTreeMap<String, Value>> {
    let mut rows: BTreeMap<u64, BTreeMap<String, Value>> = BTreeMap::new();
    for line in std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics").lines() {
        let v: Value = serde_json::from_str(line).expect("a metrics line");
        let step = v["step"].as_u64().expect("step");
        let split = v["split"].as_str().expect("split").to_owned();
        for (k, x) in v.as_object().expect("object") {
            if !["step", "split", "time"].contains(&k.as_str()) {
                rows.entry(step).or_default().insert(format!("{split}/{k}"), x.clone());
            }
        }
        rows.entry(step).or_default().insert("_runtime".into(), v["time"].clone());
    }
    rows
}

/// Every history row equals the metrics.jsonl records of its step, key for key, bit for bit.
fn assert_history_matches_metrics(run: &Path, records: &[Value]) {
    let history: Vec<&Value> = records.iter().filter(|r| r["type"] == "history").collect();
    let expected = metric_rows(run);
    let steps: Vec<u64> = history.iter().map(|r| r["step"].as_u64().expect("step")).collect();
    assert_eq!(steps, expected.keys().copied().collect::<Vec<_>>(), "one history row per logged step, in order");
    for (row, (step, want)) in history.iter().zip(&expected) {
        let got = row["values"].as_object().expect("values");
        assert_eq!(got["_step"], json!(step));
        assert!(got["_timestamp"].as_f64().is_some_and(|t| t > 1.7e9), "{row}");
        for (k, v) in want {
            if v.is_null() {
                // metrics.jsonl writes NaN (a step with no masked token) as null, W&B as NaN.
                assert_eq!(got[k], "NaN", "step {step} {k}");
                continue;
            }
            let (a, b) = (got[k].as_f64().expect(k), v.as_f64().expect(k));
            assert_eq!(a.to_bits(), b.to_bits(), "step {step} {k}: W&B {a} vs metrics.jsonl {b}");
        }
        assert_eq!(got.len(), want.len() + 2, "step {step}: no other keys than _step and _timestamp");
    }
}

#[test]
fn a_run_writes_a_wandb_offline_run_that_wandb_reads_back() {
    let w = Workspace::new();
    // A 100 kB note makes the run record span four 32 KiB blocks (FIRST, MIDDLE…, LAST).
    let notes: String = (0..100_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    w.write("notes.toml", &format!("[track.wandb]\nnotes = \"{notes}\"\n"));
    let args = [
        "run",
        "experiments/tiny.toml",
        "--set-file",
        "notes.toml",
        "track.wandb.entity=\"lab\"",
        "track.wandb.tags=[\"baseline\"]",
    ];
    w.run(&args).expect_code(0);
    let [run] = w.runs().try_into().expect("one run");
    let info = json(&run.join("run.json"));
    let (link, records) = wandb_records(&run);

    let id = link["run_id"].as_str().expect("id");
    assert_eq!(link["url"], format!("https://wandb.ai/lab/helico/runs/{id}"));
    assert_eq!((link["project"].as_str(), link["entity"].as_str()), (Some("helico"), Some("lab")));
    let offline = link["offline_dir"].as_str().expect("dir");
    assert!(offline.starts_with("wandb/offline-run-") && offline.ends_with(&format!("-{id}")), "{offline}");
    assert!(std::fs::metadata(run.join(offline).join(format!("run-{id}.wandb"))).expect("log").len() > 4 * 32768);

    let types: Vec<&str> = records.iter().map(|r| r["type"].as_str().expect("type")).collect();
    assert_eq!(types[..2], ["header", "run"]);
    assert_eq!(types[types.len() - 3..], ["summary", "files", "exit"]);
    assert!(records.iter().all(|r| r["stream"] == id), "every record belongs to the run");
    let nums: Vec<i64> = records.iter().map(|r| r["num"].as_i64().expect("num")).collect();
    assert_eq!(nums, (1..=records.len() as i64).collect::<Vec<_>>());

    let r = &records[1]["record"];
    assert_eq!(
        (r["run_id"].as_str(), r["entity"].as_str(), r["project"].as_str()),
        (Some(id), Some("lab"), Some("helico"))
    );
    assert_eq!(r["display_name"], info["id"]);
    assert_eq!(r["notes"].as_str().map(str::len), Some(notes.len()));
    assert!(r["notes"] == notes.as_str(), "the 100 kB note survives the chunking");
    let tags: Vec<&str> = r["tags"].as_array().expect("tags").iter().filter_map(Value::as_str).collect();
    let short = |k: &str| info["identity"][k].as_str().expect(k)[..12].to_owned();
    assert_eq!(
        tags,
        [format!("config:{}", short("config_hash")), format!("run_key:{}", short("run_key")), "baseline".into()]
    );
    assert_eq!(r["git"]["commit"].as_str(), Some(w.git(&["rev-parse", "HEAD"]).as_str()));

    // The config: every resolved key flattened, the nested tree, and the run's identity.
    let config = records[1]["values"].as_object().expect("config");
    let resolved: toml::Table =
        std::fs::read_to_string(run.join("config/resolved.toml")).expect("toml").parse().expect("toml");
    let resolved = serde_json::to_value(&resolved).expect("json");
    assert_eq!(config["helico/config"], resolved);
    assert_eq!(config["model.n_layers"], 1);
    assert_eq!(config["train.steps"], 12);
    assert_eq!(config["data.files.2.domain"], "smiles");
    assert_eq!(config["track.wandb.tags.0"], "baseline");
    assert_eq!(config["helico/config_hash"], info["identity"]["config_hash"]);
    assert_eq!(config["helico/run_key"], info["identity"]["run_key"]);
    let plain = w.run(&["explain", "experiments/tiny.toml", "--json"]).expect_code(0);
    let plain: Value = serde_json::from_str(&plain.stdout).expect("json");
    assert_eq!(plain["config_hash"], info["identity"]["config_hash"], "[track] is not part of the config hash");
    let leaves = config.keys().filter(|k| !k.starts_with("helico/")).count();
    assert_eq!(leaves, count_leaves(&resolved), "every leaf of the resolved config, once");

    assert_history_matches_metrics(&run, &records);
    let summary = json(&run.join("summary.json"));
    let last = &records[types.len() - 3]["values"];
    assert_eq!(last["helico/final_eval_loss"], summary["final_eval_loss"]);
    assert_eq!(last["_step"], 12);
    let files: Vec<&str> = records[types.len() - 2]["record"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert!(files.contains(&"helico/resolved.toml") && files.contains(&"helico/plots/loss.png"), "{files:?}");
    for f in files {
        assert!(run.join(offline).join("files").join(f).is_file(), "{f} is in files/");
    }
    assert_eq!(records.last().expect("exit")["record"].get("exit_code"), None, "exit code 0 (proto3 omits zero)");

    // Per-run plots: one figure per metric, the train loss curve through every logged step.
    for metric in ["loss", "masked_accuracy", "lr", "perplexity_bound"] {
        assert!(run.join(format!("plots/{metric}.png")).is_file() && run.join(format!("plots/{metric}.svg")).is_file());
    }
    let train_points = svg_polylines(&run.join("plots/loss.svg"), plot::color(1));
    assert_eq!(train_points.iter().max(), Some(&12), "the train loss curve has all 12 steps: {train_points:?}");
    let eval_points = svg_polylines(&run.join("plots/loss.svg"), plot::color(0));
    assert_eq!(eval_points.iter().max(), Some(&3), "eval at steps 4, 8, 12: {eval_points:?}");
    assert_eq!(png_size(&run.join("plots/loss.png")), plot::SIZE);

    // Publishing the run stages its weights and card, and records the target.
    publish_stages_the_run(&w, &run, &info, &link);
}

fn count_leaves(v: &Value) -> usize {
    match v {
        Value::Object(m) if !m.is_empty() => m.values().map(count_leaves).sum(),
        Value::Array(a) if !a.is_empty() => a.iter().map(count_leaves).sum(),
        _ => 1,
    }
}

fn publish_stages_the_run(w: &Workspace, run: &Path, info: &Value, wandb: &Value) {
    let out = w.run(&["publish", info["id"].as_str().expect("id"), "--repo", "lab/tiny-d3pm", "--json"]);
    let staged: Value = serde_json::from_str(&out.expect_code(0).stdout).expect("json");
    let dir = PathBuf::from(staged["dir"].as_str().expect("dir"));
    assert_eq!(dir, std::fs::canonicalize(run.join("publish")).expect("staged"), "an absolute path, for `hf upload`");
    let files: Vec<&str> = staged["files"].as_array().expect("files").iter().filter_map(Value::as_str).collect();
    assert_eq!(
        files,
        [
            "README.md",
            "config/resolved.toml",
            "data/manifest.json",
            "data/vocab.json",
            "model.safetensors",
            "plots/loss.png",
            "run.json",
            "summary.json"
        ]
    );
    assert_eq!(staged["weights"], "ema", "the tiny experiment keeps an EMA");
    let published = oracle("safetensors_read.py", &[dir.join("model.safetensors")]);
    let ckpt = run.join("checkpoints").join(format!("step-{:08}", staged["checkpoint_step"].as_u64().expect("step")));
    let ema = oracle("safetensors_read.py", &[ckpt.join("ema.safetensors")]);
    assert_eq!(published["tensors"], ema["tensors"], "the EMA weights, unchanged");
    let meta = &published["metadata"];
    assert_eq!(
        (meta["format"].as_str(), meta["weights"].as_str(), meta["step"].as_str()),
        (Some("pt"), Some("ema"), Some("12"))
    );
    assert_eq!(meta["config_hash"], info["identity"]["config_hash"]);

    let card = std::fs::read_to_string(dir.join("README.md")).expect("card");
    assert!(card.starts_with("---\nlibrary_name: helico\n"), "{card}");
    for needle in
        [w.git(&["rev-parse", "HEAD"]), wandb["url"].as_str().expect("url").to_owned(), "final_eval_loss".into()]
    {
        assert!(card.contains(&needle), "the card names {needle}:\n{card}");
    }
    let hf = &json(&run.join("links.json"))["huggingface"];
    assert_eq!((hf["repo"].as_str(), hf["revision"].as_str()), (Some("lab/tiny-d3pm"), Some("main")));
    assert!(hf["upload"].as_str().is_some_and(|u| u.starts_with("hf upload lab/tiny-d3pm ")), "{hf}");
    assert_eq!(json(&run.join("links.json"))["wandb"], *wandb, "the W&B link is kept");

    // Again into the same folder replaces our staging; a folder of anything else is refused.
    w.run(&["publish", run.to_str().expect("utf8"), "--repo", "lab/tiny-d3pm", "--revision", "v1"]).expect_code(0);
    assert_eq!(json(&run.join("links.json"))["huggingface"]["revision"], "v1");
    let refused = w.run(&["publish", run.to_str().expect("utf8"), "--repo", "lab/x", "--out", "."]).expect_code(2);
    assert!(refused.stderr.contains("was not staged by helico publish"), "{}", refused.stderr);
    let bad = w.run(&["publish", run.to_str().expect("utf8"), "--repo", "lab"]).expect_code(2);
    assert!(bad.stderr.contains("`lab` is not owner/name"), "{}", bad.stderr);
}

/// Point counts of the SVG polylines drawn in `color` (a curve, and its 2-point legend line).
fn svg_polylines(path: &Path, color: plotters::style::RGBColor) -> Vec<usize> {
    let text = std::fs::read_to_string(path).expect("svg");
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    let stroke = format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2);
    doc.descendants()
        .filter(|n| {
            n.has_tag_name("polyline") && n.attribute("stroke").is_some_and(|s| s.eq_ignore_ascii_case(&stroke))
        })
        .map(|n| n.attribute("points").expect("points").split_whitespace().count())
        .collect()
}

/// Decodes a PNG fully (so a corrupt stream fails) and returns its size.
fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).expect("png")));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).expect("the PNG decodes");
    (frame.width, frame.height)
}

/// Whether the decoded PNG holds a pixel of exactly `color`.
fn png_has_color(path: &Path, color: plotters::style::RGBColor) -> bool {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).expect("png")));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).expect("the PNG decodes");
    let channels = frame.color_type.samples();
    buf[..frame.buffer_size()].chunks(channels).any(|p| p[..3] == [color.0, color.1, color.2])
}

#[test]
fn curves_are_valid_png_and_svg_with_every_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let series = [
        Series { label: "a".into(), points: (0..37).map(|i| (i as f64, (i as f64 * 0.3).sin())).collect() },
        Series { label: "b".into(), points: (0..12).map(|i| (3.0 * i as f64, 0.1 * i as f64)).collect() },
    ];
    let written = plot::curves(&dir.path().join("fig"), "two curves", "x", "y", &series).expect("draws");
    assert_eq!(png_size(&written.png), plot::SIZE);
    for (i, s) in series.iter().enumerate() {
        assert!(png_has_color(&written.png, plot::color(i)), "series {i} is drawn in the PNG");
        let counts = svg_polylines(&written.svg, plot::color(i));
        assert_eq!(counts.iter().max(), Some(&s.points.len()), "series {i}: {counts:?}");
    }
    let svg = std::fs::read_to_string(&written.svg).expect("svg");
    let doc = roxmltree::Document::parse(&svg).expect("XML");
    let texts: Vec<&str> =
        doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).map(str::trim).collect();
    for t in ["two curves", "x", "y", "a", "b"] {
        assert!(texts.contains(&t), "the SVG has the text `{t}`: {texts:?}");
    }
}

/// SIGINT or SIGKILL midway, then resume: one offline run whose history is every step once.
#[test]
fn a_resumed_run_continues_the_same_wandb_run() {
    let w = Workspace::new();
    let args = ["run", "experiments/tiny.toml", "train.steps=80", "train.checkpoint_every=20", "train.eval_every=40"];
    for signal in [libc::SIGINT, libc::SIGKILL] {
        let mut a = args.to_vec();
        a.push("--force");
        let dir = crate::runs::stop_midway(&w, &a, signal, 30);
        if signal == libc::SIGINT {
            let (_, records) = wandb_records(&dir);
            let types: Vec<&str> = records.iter().map(|r| r["type"].as_str().expect("type")).collect();
            assert_eq!(types[types.len() - 2..], ["preempting", "exit"], "an interrupted run is preempted");
            assert_eq!(records.last().expect("exit")["record"]["exit_code"], 130);
        }
        w.run(&["run", "--resume", dir.to_str().expect("utf8")]).expect_code(0);
        let (_, records) = wandb_records(&dir);
        let types: Vec<&str> = records.iter().map(|r| r["type"].as_str().expect("type")).collect();
        assert_eq!(types.iter().filter(|t| **t == "run").count(), 1, "{signal}: one run");
        assert_eq!(types.iter().filter(|t| **t == "exit").count(), 1, "{signal}: one exit");
        assert!(!types.contains(&"preempting"), "{signal}: the resumed run is not preempted");
        assert_eq!(types.last(), Some(&"exit"));
        assert_eq!(records.last().expect("exit")["record"].get("exit_code"), None, "exit code 0");
        assert_history_matches_metrics(&dir, &records);
        assert_eq!(metric_rows(&dir).len(), 80);
        let wandb_dirs = std::fs::read_dir(dir.join("wandb")).expect("wandb").count();
        assert_eq!(wandb_dirs, 1, "{signal}: no second offline run");
    }
}

#[test]
fn huggingface_hub_reads_a_cache_helico_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = HfCache::at(dir.path().join("hub"));
    let source = dir.path().join("weights.bin");
    std::fs::write(&source, b"not really weights").expect("write");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    for (reference, repo_type, repo_id, revision, file) in [
        ("hf://lab/model@main/ckpt/weights.bin", "model", "lab/model", "main", "ckpt/weights.bin"),
        ("hf://datasets/lab/seqs@v1.0/weights.bin", "dataset", "lab/seqs", "v1.0", "weights.bin"),
        (&format!("hf://lab/pinned@{commit}/weights.bin"), "model", "lab/pinned", commit, "weights.bin"),
    ] {
        let r = HfRef::parse(reference).expect("parses");
        let stored = cache.store(&r, commit, &source).expect("stores");
        let read =
            oracle("hf_cache.py", &["read", cache.root.to_str().expect("utf8"), repo_type, repo_id, revision, file]);
        assert_eq!(read["download"].as_str().map(PathBuf::from), Some(stored.clone()), "{reference}");
        assert_eq!(read["cached"], read["download"]);
        assert_eq!(read["sha256"].as_str(), Some(helico::track::hf::sha256_file(&source).expect("sha").as_str()));
        assert_eq!(cache.resolve(&r).expect("resolves").local_path, stored);
    }
}

#[test]
fn runs_read_hf_references_from_a_cache_huggingface_hub_wrote() {
    let w = Workspace::new();
    let hub = w.path().join("hub");
    let commit = "fedcba9876543210fedcba9876543210fedcba98";
    let p = w.path().join("data/p.fasta");
    let wrote = oracle(
        "hf_cache.py",
        &[
            "write",
            hub.to_str().expect("utf8"),
            "dataset",
            "lab/seqs",
            "main",
            commit,
            "proteins/p.fasta",
            p.to_str().expect("utf8"),
        ],
    );
    let files = |first: &str| {
        format!(
            "data.files=[{{path=\"{first}\", domain=\"protein\"}}, {{path=\"data/r.fasta\", domain=\"rna\"}}, {{path=\"data/s.smi\", domain=\"smiles\"}}]"
        )
    };
    let with_cache = |args: &[&str]| {
        let mut cmd = w.helico(args);
        cmd.env("HF_HUB_CACHE", &hub);
        crate::support::run(&mut cmd)
    };
    let reference = "hf://datasets/lab/seqs@main/proteins/p.fasta";
    with_cache(&["run", "experiments/tiny.toml", "train.steps=2", &files(reference)]).expect_code(0);
    let [run] = w.runs().try_into().expect("one run");
    let recorded = json(&run.join("data/hf.json"));
    assert_eq!(recorded[0]["reference"], reference);
    assert_eq!(recorded[0]["commit"], commit);
    assert_eq!(recorded[0]["sha256"], wrote["sha256"]);
    assert_eq!(recorded[0]["size"], std::fs::metadata(&p).expect("stat").len());
    let manifest = json(&run.join("data/manifest.json"));
    assert_eq!(
        manifest["files"][0]["path"].as_str().map(PathBuf::from),
        Some(PathBuf::from(wrote["path"].as_str().expect("path")))
    );

    // The same content under its local path is the same data: the run is already done.
    let local = w.run(&["run", "experiments/tiny.toml", "train.steps=2", &files("data/p.fasta")]).expect_code(0);
    assert!(local.stdout.starts_with("an identical run already completed"), "{}", local.stdout);

    let absent = "hf://datasets/lab/seqs@main/absent.fasta";
    let out = with_cache(&["run", "experiments/tiny.toml", "train.steps=2", &files(absent)]).expect_code(2);
    for needle in
        [absent, hub.to_str().expect("utf8"), "hf download lab/seqs absent.fasta --revision main --repo-type dataset"]
    {
        assert!(out.stderr.contains(needle), "the error names {needle}:\n{}", out.stderr);
    }
    assert_eq!(w.runs().len(), 1, "no run directory for bad input");
}
