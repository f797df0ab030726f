//! Shared helpers for the data tests: repository paths that must exist (else: run `make setup`),
//! the Python oracles under `tests/oracles/`, and one CCD load shared by the tests that need it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use helico::data::ccd::Ccd;

/// `rel` under the repository root; a missing file fails the test with the fix.
pub fn repo_path(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    assert!(path.exists(), "{} is missing: run `make setup` (test data and Python oracles)", path.display());
    path
}

pub fn ccd_bcif() -> PathBuf {
    repo_path("data/ccd/components.bcif")
}

pub fn mmcif_dir() -> PathBuf {
    repo_path("data/openfold3/mmcifs")
}

/// The openfold3 test mmCIFs, sorted.
pub fn mmcif_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(mmcif_dir())
        .expect("list the mmCIF directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension() == Some(OsStr::new("cif")))
        .collect();
    files.sort();
    assert_eq!(files.len(), 15, "expected the 15 openfold3 test mmCIFs in {}: run `make setup`", mmcif_dir().display());
    files
}

/// Runs `tests/oracles/<script>` with the project's Python and parses the JSON it prints.
pub fn oracle<S: AsRef<OsStr>>(script: &str, args: &[S]) -> serde_json::Value {
    let python = repo_path(".venv/bin/python");
    let script = repo_path(&format!("tests/oracles/{script}"));
    let out = Command::new(&python).arg(&script).args(args).output().expect("run the Python oracle");
    assert!(out.status.success(), "{} failed:\n{}", script.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the oracle prints JSON")
}

/// The full CCD from `components.bcif`, loaded once per test binary.
pub fn ccd() -> &'static Ccd {
    static CCD: OnceLock<Ccd> = OnceLock::new();
    CCD.get_or_init(|| {
        let start = Instant::now();
        let ccd = Ccd::read(ccd_bcif()).expect("components.bcif loads");
        eprintln!("CCD: {} components loaded in {:.2?}", ccd.len(), start.elapsed());
        ccd
    })
}

/// Preprocesses `src` into `out` with the real CCD, as `helico preprocess` would, in-process.
pub fn preprocess_dir(
    src: &Path,
    out: &Path,
    params: &helico::data::prep::Params,
    jobs: usize,
) -> helico::data::prep::Summary {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let job = helico::data::prep::Job {
        src,
        out,
        ccd: ccd(),
        ccd_blake3: &helico::data::prep::file_blake3(&ccd_bcif()).unwrap(),
        params,
        jobs,
        progress: false,
        stop: &stop,
    };
    helico::data::prep::run(&job).unwrap()
}
