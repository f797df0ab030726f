//! Preprocessing the openfold3 test structures: bad files are recorded and the run goes on,
//! re-runs redo nothing, killed and interrupted runs resume, cache files load back to exactly
//! the freshly parsed structures, the dataset hash is the data manifest's, and the AF3 loader is
//! deterministic whatever its prefetching.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use helico::data::features::Features;
use helico::data::manifest::DataManifest;
use helico::data::prep::loader::{Af3Dataset, LoaderConfig};
use helico::data::prep::{CachedStructure, CcdCache, Params, Record, Status, journal};
use helico::data::structure::{Options, Structure};
use helico::data::tokenize::{TokenizeOptions, tokenize};
use serde_json::Value;
use tch::Tensor;

use crate::data_support::{ccd, ccd_bcif, mmcif_files, oracle, preprocess_dir};
use crate::features::{features, floats, longs};
use crate::support::{helico, run};

/// A source directory holding the 15 test mmCIFs under `prefix`-ed names, `copies` times.
fn sources(dir: &Path, copies: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for copy in 0..copies {
        for file in mmcif_files() {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let name = if copies == 1 { name } else { format!("c{copy}{name}") };
            std::fs::copy(&file, dir.join(name)).unwrap();
        }
    }
}

fn preprocess(src: &Path, out: &Path) -> Value {
    let args = ["preprocess", "--src", path(src), "--out", path(out), "--json"];
    serde_json::from_str(&run(helico().args(args)).expect_code(0).stdout).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn records(out: &Path) -> BTreeMap<String, Record> {
    journal::read(out).unwrap()
}

#[test]
fn bad_files_are_recorded_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("src"), dir.path().join("out"));
    sources(&src, 1);
    let ubq = std::fs::read_to_string(src.join("1ubq.cif")).unwrap();
    // Cut inside _atom_site: the loop's value count is no longer a multiple of its columns.
    std::fs::write(src.join("truncated.cif"), &ubq[..ubq.len() * 2 / 3]).unwrap();
    assert!(ccd().get("QZQZ9").is_none(), "the test needs a component id the CCD lacks");
    std::fs::write(src.join("unknown.cif"), ubq.replace(" MET ", " QZQZ9 ")).unwrap();
    std::fs::write(src.join("nocategory.cif"), "data_X\n_entry.id X\n").unwrap();
    oracle("to_bcif.py", &[dir.path(), &src.join("1ubq.cif")]);
    let bcif = std::fs::read(dir.path().join("1ubq.bcif")).unwrap();
    std::fs::write(src.join("corrupt.bcif"), &bcif[..bcif.len() / 2]).unwrap();
    std::fs::write(src.join("sub_1ubq.bcif"), &bcif).unwrap();

    let summary = preprocess(&src, &out);
    assert_eq!((summary["ok"].as_u64(), summary["rejected"].as_u64()), (Some(13), Some(3)), "{summary:#}");
    assert_eq!((summary["failed"].as_u64(), summary["processed"].as_u64()), (Some(4), Some(20)));
    assert_eq!(summary["rejected_by"]["resolution"], 3);

    let r = records(&out);
    let error = |source: &str| r[source].error.clone().unwrap_or_default();
    assert!(error("truncated.cif").contains("truncated.cif:"), "{}", error("truncated.cif"));
    assert!(error("unknown.cif").contains("structure 1UBQ: chain A residue 1"), "{}", error("unknown.cif"));
    assert!(error("unknown.cif").contains("component \"QZQZ9\" is not in the Chemical Component Dictionary"));
    assert!(error("nocategory.cif").contains("nocategory.cif") && error("nocategory.cif").contains("entity"));
    assert!(error("corrupt.bcif").contains("corrupt.bcif: MessagePack byte"), "{}", error("corrupt.bcif"));
    let nmr = &r["1hf9.cif"];
    assert_eq!((nmr.status, nmr.reasons[0].label.as_str()), (Status::Rejected, "resolution"));
    assert_eq!(nmr.info.as_ref().unwrap().methods, ["SOLUTION NMR"]);
    let ubq = &r["1ubq.cif"];
    assert_eq!(ubq.cache.as_ref().unwrap().path, "structures/ub/1ubq.hsc");
    assert_eq!(r["sub_1ubq.bcif"].info, ubq.info, "BinaryCIF and text give the same entry");

    // A second run redoes nothing and names the same dataset.
    let again = preprocess(&src, &out);
    assert_eq!((again["processed"].as_u64(), again["up_to_date"].as_u64()), (Some(0), Some(20)));
    assert_eq!(again["dataset_hash"], summary["dataset_hash"]);
    // Fixing a file redoes that file only; removing one drops its entry and cache file.
    std::fs::write(src.join("unknown.cif"), std::fs::read(src.join("1ubq.cif")).unwrap()).unwrap();
    std::fs::remove_file(src.join("1a8q.cif")).unwrap();
    let fixed = preprocess(&src, &out);
    assert_eq!(
        (fixed["processed"].as_u64(), fixed["ok"].as_u64(), fixed["failed"].as_u64()),
        (Some(1), Some(13), Some(3))
    );
    assert!(!out.join("structures/a8/1a8q.hsc").exists());
    assert_ne!(fixed["dataset_hash"], summary["dataset_hash"]);
}

#[test]
fn a_missing_or_empty_source_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = run(helico().args(["preprocess", "--src", path(&missing), "--out", path(&dir.path().join("o"))]));
    let out = out.expect_code(2);
    assert!(out.stderr.contains("nope: does not exist; pass --src DIR of mmCIF files"), "{}", out.stderr);
    let out = run(helico().args(["preprocess", "--src", path(dir.path()), "--out", path(&dir.path().join("o"))]));
    assert!(out.expect_code(2).stderr.contains("holds no structure files (.cif, .cif.gz, .bcif, .bcif.gz)"));
}

/// Starts preprocessing and signals it once the manifest has `lines` more lines than `before`.
fn interrupt(src: &Path, out: &Path, signal: i32, before: usize, lines: usize) -> i32 {
    let mut child = helico()
        .args(["preprocess", "--src", path(src), "--out", path(out), "--json", "--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let manifest = out.join(journal::MANIFEST);
    let start = Instant::now();
    loop {
        let n = std::fs::read_to_string(&manifest).map_or(0, |t| t.lines().count());
        if n >= before + lines {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no progress in {}", manifest.display());
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: signalling a child process we started and have not reaped.
    unsafe { libc::kill(child.id() as i32, signal) };
    child.wait().unwrap().code().unwrap_or(-1)
}

#[test]
fn killed_and_interrupted_runs_resume_where_they_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("src"), dir.path().join("out"));
    sources(&src, 6);
    let total = 90;

    let killed = interrupt(&src, &out, libc::SIGKILL, 0, 3);
    assert_eq!(killed, -1, "killed by the signal");
    let kept = records(&out).len();
    assert!((3..total).contains(&kept), "{kept} records survive the kill");

    let code = interrupt(&src, &out, libc::SIGINT, kept, 3);
    assert_eq!(code, 130, "SIGINT stops at a safe point with the resumable exit code");
    let summary = journal::read_summary(&out).unwrap();
    assert!(!summary.complete);
    let err = Af3Dataset::open(&out).unwrap_err().to_string();
    assert!(err.contains("was interrupted; run the same `helico preprocess` command again"), "{err}");
    let done = records(&out).len();
    assert!(done > kept && done < total, "{kept} then {done} of {total}");

    let last = preprocess(&src, &out);
    assert_eq!(
        (last["up_to_date"].as_u64(), last["processed"].as_u64()),
        (Some(done as u64), Some((total - done) as u64))
    );
    let fresh = dir.path().join("fresh");
    assert_eq!(preprocess(&src, &fresh)["dataset_hash"], last["dataset_hash"], "resumed = uninterrupted");
    let leftovers: Vec<_> =
        walk(&out.join("structures")).into_iter().filter(|p| p.to_string_lossy().contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

/// The 15 test structures preprocessed in-process with the shared CCD, once per test binary.
pub fn demo() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // One directory per test process; earlier runs' are removed so they do not pile up.
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for old in std::fs::read_dir(tmp).unwrap().flatten() {
            if old.file_name().to_string_lossy().starts_with("preprocess-demo-") {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        let root = tmp.join(format!("preprocess-demo-{}", std::process::id()));
        sources(&root.join("src"), 1);
        let summary = preprocess_dir(&root.join("src"), &root.join("out"), &Params::default(), 2);
        assert_eq!((summary.ok, summary.failed), (12, 0));
        root.join("out")
    })
}

#[test]
fn cache_files_load_back_to_the_freshly_parsed_structures() {
    let out = demo();
    for record in journal::entries(out).unwrap() {
        let source = mmcif_files().into_iter().find(|f| f.ends_with(&record.source)).unwrap();
        let (mut fresh, _) = Structure::read(&source, &Options::default()).unwrap().complete(ccd()).unwrap();
        let tokens = tokenize(&fresh, &TokenizeOptions::default());
        let cached = CachedStructure::read(&out.join(&record.cache.as_ref().unwrap().path)).unwrap();
        // The cache was made from a copy of the file: only the path differs.
        assert!(cached.structure.path.ends_with(&record.source));
        fresh.path = cached.structure.path.clone();
        // Not assert_eq: the Debug of a whole structure is megabytes.
        assert!(cached.structure == fresh, "{}: the cached structure differs", record.key);
        assert!(cached.tokens == tokens, "{}: the cached tokens differ", record.key);
        let mut names: Vec<&str> = fresh.residues.iter().map(|r| r.name.as_str()).collect();
        names.sort();
        names.dedup();
        let stored: Vec<&str> = cached.ccd.components().map(|c| c.id.as_str()).collect();
        assert_eq!(stored, names, "{}", record.key);
        for name in names {
            assert_eq!(cached.ccd.get(name), ccd().get(name), "{} {name}", record.key);
        }
        // Features from the cache's own components equal those from the full CCD.
        let from_cache = Features::new(
            &cached.structure,
            &cached.tokens,
            &cached.ccd,
            &helico::data::features::FeatureOptions { augment_ref_pos: true },
            &mut helico::data::packing::SplitMix64(5),
        )
        .unwrap();
        let from_ccd = features(&fresh, &tokens, true, 5);
        assert_eq!(floats(&from_cache.ref_pos), floats(&from_ccd.ref_pos), "{}", record.key);
        assert_eq!(longs(&from_cache.has_frame), longs(&from_ccd.has_frame), "{}", record.key);
        assert_eq!(floats(&from_cache.restype), floats(&from_ccd.restype), "{}", record.key);
    }
}

#[test]
fn the_dataset_hash_is_the_data_manifest_hash_of_the_cache_files() {
    let out = demo();
    let summary = journal::read_summary(out).unwrap();
    let manifest = journal::data_manifest(out).unwrap();
    assert_eq!(manifest.hash, summary.dataset_hash);
    assert_eq!(manifest.files.len(), 12);
    let files: Vec<&PathBuf> = manifest.files.iter().map(|f| &f.path).collect();
    let cache = tempfile::tempdir().unwrap();
    let (built, _) =
        DataManifest::build(&files, summary.params.clone(), Some(&cache.path().join("hashes.json"))).unwrap();
    assert_eq!(built.hash, summary.dataset_hash, "the same hash as hashing the cache files");
}

/// What the loader test compares per batch: keys, crops, ref_pos, token_bonds.
type Seen = (Vec<String>, Vec<Vec<usize>>, Tensor, Tensor);

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.size() == b.size() && a.kind() == b.kind() && a.equal(b)
}

#[test]
fn the_loader_is_deterministic_and_prefetching_changes_nothing() {
    let dataset = Arc::new(Af3Dataset::open(demo()).unwrap());
    assert_eq!(dataset.len(), 12);
    let config = |workers| LoaderConfig {
        crop_size: 48,
        batch_size: 3,
        bucket_batches: 2,
        workers,
        seed: 7,
        ..LoaderConfig::default()
    };
    let collect = |workers: usize, epoch: u64| -> Vec<Seen> {
        let batches = dataset.epoch(&config(workers), epoch);
        assert_eq!(batches.len(), 4);
        batches
            .map(|b| {
                let b = b.unwrap();
                let crops = b.crops.into_iter().map(|c| c.tokens).collect();
                (b.keys, crops, b.features.ref_pos, b.features.token_bonds)
            })
            .collect()
    };
    let inline = collect(0, 0);
    let threaded = collect(2, 0);
    let keys = |run: &[Seen]| -> Vec<Vec<String>> { run.iter().map(|b| b.0.clone()).collect() };
    assert_eq!(keys(&inline), keys(&threaded));
    for (a, b) in inline.iter().zip(&threaded) {
        assert_eq!(a.1, b.1, "{:?}: same crops", a.0);
        assert!(a.1.iter().all(|c| c.len() <= 48));
        assert!(same(&a.2, &b.2) && same(&a.3, &b.3), "{:?}: same features", a.0);
    }
    assert_eq!(keys(&collect(1, 0)), keys(&inline), "another loader, same seed");
    assert_ne!(keys(&collect(2, 1)), keys(&inline), "another epoch, another order");
    let mut all: Vec<String> = keys(&inline).concat();
    all.sort();
    assert_eq!(all, dataset.entries().iter().map(|e| e.key.clone()).collect::<Vec<_>>());
}

/// The CCD cache: the first load parses components.bcif and writes `<blake3>.hsc`, the next
/// maps it (the hash known from the file's stat), and both equal a fresh parse, component by
/// component; a damaged cache file is rebuilt, never trusted.
#[test]
fn the_ccd_cache_equals_a_fresh_parse_and_a_damaged_one_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blake3 = blake3::hash(&std::fs::read(ccd_bcif()).expect("components.bcif")).to_hex().to_string();
    let cache = dir.path().join(format!("{blake3}.hsc"));

    let cold = CcdCache::load(&ccd_bcif(), dir.path()).expect("cold load");
    assert!(!cold.hit && cold.hashed && cache.is_file(), "the first load hashes the CCD and writes the cache");
    assert_eq!(cold.blake3, blake3);
    let warm = CcdCache::load(&ccd_bcif(), dir.path()).expect("warm load");
    assert!(warm.hit && !warm.hashed, "the second load maps the cache and knows the hash from the file's stat");
    assert_eq!(warm.blake3, blake3);
    // Decodes every component from the map, each on its first use.
    assert_eq!(warm.ccd.len(), ccd().len());
    assert!(warm.ccd.components().eq(ccd().components()), "the cache holds every component as parsed");
    for id in ["ATP", "HEM", "000", "ZN", "UNL"] {
        assert_eq!(warm.ccd.get(id), ccd().get(id), "{id}");
    }
    for missing in ["atp", "", "ZZZZZZ", "AT"] {
        assert!(warm.ccd.get(missing).is_none(), "{missing:?} is not a component");
    }

    let bytes = std::fs::read(&cache).expect("cache bytes");
    std::fs::write(&cache, &bytes[..bytes.len() / 2]).expect("truncate");
    let rebuilt = CcdCache::load(&ccd_bcif(), dir.path()).expect("load past a damaged cache");
    assert!(!rebuilt.hit && !rebuilt.hashed);
    assert!(rebuilt.ccd.components().eq(ccd().components()));
    assert_eq!(std::fs::read(&cache).expect("rewritten"), bytes, "the damaged file was replaced");
}
