//! `helico bench d3pm` end to end on the CPU with the tiny experiment: helico's kernels, the
//! PyTorch side (eager, dense mask) through `.venv/bin/python`, and the reports it writes; and
//! `helico bench parse` on one file. The numbers mean nothing here; real runs are recorded
//! under `bench/results/`.

use crate::support::{Workspace, json, root, setup_file};

#[test]
fn bench_d3pm_writes_json_and_markdown_with_both_sides() {
    let w = Workspace::new();
    let python = setup_file(".venv/bin/python");
    let script = root().join("bench/d3pm_torch.py");
    let out = w
        .run(&[
            "bench",
            "d3pm",
            "experiments/tiny.toml",
            "runtime.device=\"cpu\"",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--pool",
            "3",
            "--kernels",
            "flash_varlen,sdpa",
            "--python",
            python.to_str().expect("utf-8 path"),
            "--script",
            script.to_str().expect("utf-8 path"),
            "--torch-variants",
            "eager-sdpa",
            "--out",
            "results",
        ])
        .expect_code(0);
    let reports: Vec<_> =
        std::fs::read_dir(w.path().join("results")).expect("results dir").flatten().map(|e| e.path()).collect();
    let report = reports.iter().find(|p| p.extension().is_some_and(|e| e == "json")).expect("a JSON report");
    assert!(reports.iter().any(|p| p.extension().is_some_and(|e| e == "md")), "{reports:?}");
    let r = json(report);
    let results = r["results"].as_array().expect("results");
    let by = |implementation: &str, kernel: &str| {
        results
            .iter()
            .find(|x| x["implementation"] == implementation && x["kernel"] == kernel)
            .unwrap_or_else(|| panic!("no {implementation} {kernel} in {results:?}"))
    };
    assert!(by("helico", "flash_varlen")["note"].as_str().expect("a note").contains("needs a CUDA GPU"));
    for (implementation, kernel) in [("helico", "sdpa"), ("pytorch", "sdpa")] {
        let m = by(implementation, kernel);
        assert!(m["tokens_per_s"].as_f64().expect("tokens/s") > 0.0, "{m}");
        assert_eq!(m["steps"], 2);
        assert!(m["mfu"].as_f64().expect("mfu") > 0.0);
    }
    // The tiny experiment: 1 layer of d 16, (4 + 2·4)·16² + V·16 matmul weights.
    assert_eq!(r["model"]["n_layers"], 1);
    let flops = r["flops_per_token"].as_f64().expect("flops");
    assert!(flops > 6.0 * 12.0 * 256.0, "{flops}");
    assert!(out.stdout.contains("| helico | eager | sdpa |"), "{}", out.stdout);
}

/// `helico bench parse` on one small file, briefly: every library measured, the CCD loaded
/// through its cache outside the timing and said so, both reports written.
#[test]
fn bench_parse_reports_every_library_and_the_ccd_load_apart() {
    let files = tempfile::tempdir().expect("tempdir");
    std::fs::copy(setup_file("data/openfold3/mmcifs/1ubq.cif"), files.path().join("1ubq.cif")).expect("copy");
    let out = tempfile::tempdir().expect("tempdir");
    let path = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_owned();
    let args = ["bench", "parse", "--files", &path(files.path()), "--out", &path(out.path())];
    let run = crate::support::helico_run(
        &[&args[..], &["--min-seconds", "0.05", "--copies", "1", "--jobs", "1", "--json"]].concat(),
    )
    .expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert!(v["command"].as_str().expect("command").starts_with("helico bench parse"), "{}", v["command"]);
    let report = &v["report"];
    assert_eq!(report["ccd"]["components"], 49_196);
    assert!(report["ccd"]["seconds"].as_f64().expect("seconds") > 0.0);
    let libraries: Vec<&str> =
        report["single_core"].as_array().expect("rows").iter().map(|t| t["library"].as_str().expect("name")).collect();
    assert_eq!(libraries, ["helico", "helico", "gemmi", "biotite", "Biopython"]);
    assert_eq!(report["preprocess"][0]["structures"], 1);
    let md = std::fs::read_dir(out.path())
        .expect("reports")
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "md"))
        .map(|e| std::fs::read_to_string(e.path()).expect("markdown"))
        .expect("a markdown report");
    assert!(md.contains("The CCD (49196 components) was loaded once before any timing"), "{md}");
}
