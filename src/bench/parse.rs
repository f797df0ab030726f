//! `helico bench parse`: structure parsing throughput on one core, side by side with gemmi,
//! biotite and Biopython in the same run, then preprocessing with 1 and 2 (or more) workers.
//!
//! Every library parses the same files from text already in memory, so disk and page cache do
//! not enter. helico is measured twice: "parse + tokenize" (text → observed structure → tokens,
//! the work the Python libraries do plus tokenization) and "+ complete" (the CCD completion
//! that preprocessing adds). Each measurement repeats whole rounds over the files until a
//! minimum time has passed; throughput is files and bytes per second over all rounds. The
//! process is pinned to one CPU for the single-core numbers (`sched_setaffinity`), and so is the
//! Python script.
//!
//! The CCD is loaded once, through the CCD cache, before anything is timed, and its load time
//! is reported apart. A cached CCD decodes a component the first time it is used: the warm-up
//! round of "+ complete" decodes those the files use, so no timed round pays for it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;

use crate::data::ccd::Ccd;
use crate::data::cif::CifFile;
use crate::data::crop::crop;
use crate::data::packing::SplitMix64;
use crate::data::prep::loader::{AF3_INITIAL_CROP, Af3Dataset, LoaderConfig};
use crate::data::prep::{self, CachedStructure, CcdCache, Job, Params};
use crate::data::structure::{Options, Structure};
use crate::data::tokenize::{TokenizeOptions, tokenize};

/// What to measure.
pub struct ParseBench {
    pub files: Vec<PathBuf>,
    /// Seconds each single-core measurement runs at least.
    pub min_seconds: f64,
    /// The Python with gemmi, biotite and Biopython, and the script that times them.
    pub python: PathBuf,
    pub script: PathBuf,
    pub ccd: PathBuf,
    /// Copies of the file set preprocessed in the scaling measurement (more files than
    /// workers, so that scaling is not limited by the largest file).
    pub copies: usize,
    /// Worker counts of the scaling measurement.
    pub jobs: Vec<usize>,
}

/// One library's single-core throughput.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub library: String,
    pub version: String,
    pub work: String,
    pub rounds: u64,
    pub seconds: f64,
    pub structures_per_second: f64,
    pub mb_per_second: f64,
}

/// Reading preprocessed entries back: the cache file alone, and a whole training example.
#[derive(Debug, Clone, Serialize)]
pub struct CacheLoad {
    pub entries: usize,
    pub mean_tokens: f64,
    pub mean_atoms: f64,
    /// Memory-map and decode a cache file (structure, tokens, components), mean per entry.
    pub load_ms: f64,
    /// Load and crop to 384 tokens (AF3 §2.7 method drawn with AF3's weights).
    pub crop_ms: f64,
    /// Load, crop to 384 tokens and build `Features` (what the loader does per example).
    pub example_ms: f64,
}

/// Loading the CCD, outside every other measurement.
#[derive(Debug, Clone, Serialize)]
pub struct CcdLoad {
    pub components: usize,
    pub seconds: f64,
    /// Whether the CCD cache was mapped (else components.bcif was parsed and the cache written).
    pub cache_hit: bool,
}

/// Preprocessing wall time with `jobs` workers.
#[derive(Debug, Clone, Serialize)]
pub struct Scaling {
    pub jobs: usize,
    pub structures: usize,
    pub seconds: f64,
    pub structures_per_second: f64,
    /// Relative to the first entry (one worker).
    pub speedup: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub files: usize,
    pub bytes: u64,
    pub ccd: CcdLoad,
    pub single_core: Vec<Throughput>,
    pub preprocess: Vec<Scaling>,
    pub cache: CacheLoad,
    /// helico "parse + tokenize" over gemmi's and over Biopython's structures per second.
    pub vs_gemmi: f64,
    pub vs_biopython: f64,
    pub cpu: String,
    pub cores: usize,
    pub python: String,
    /// `release` unless the binary was built without optimisations (then the numbers mean little).
    pub build: String,
}

/// Runs the whole benchmark.
pub fn run(bench: &ParseBench) -> anyhow::Result<Report> {
    let texts: Vec<(PathBuf, Vec<u8>)> = bench
        .files
        .iter()
        .map(|p| std::fs::read(p).map(|b| (p.clone(), b)).with_context(|| format!("cannot read {}", p.display())))
        .collect::<anyhow::Result<_>>()?;
    if texts.is_empty() {
        bail!("no structure files to measure");
    }
    let bytes: u64 = texts.iter().map(|(_, b)| b.len() as u64).sum();
    let start = Instant::now();
    let loaded =
        CcdCache::load_default(&bench.ccd).with_context(|| format!("cannot load the CCD {}", bench.ccd.display()))?;
    let ccd_load =
        CcdLoad { components: loaded.ccd.len(), seconds: start.elapsed().as_secs_f64(), cache_hit: loaded.hit };
    let ccd = loaded.ccd;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (cpu, affinity) = pin_to_one_cpu()?;
    let mut single_core = Vec::new();
    let version = env!("CARGO_PKG_VERSION").to_owned();
    for (work, complete) in [("parse + tokenize", false), ("parse + complete + tokenize", true)] {
        let (rounds, seconds) = repeat(bench.min_seconds, || {
            for (path, text) in &texts {
                parse_tokenize(path, text, complete.then_some(&ccd))?;
            }
            Ok(())
        })?;
        single_core.push(throughput("helico", &version, work, rounds, seconds, texts.len(), bytes));
    }
    let python = python_libraries(bench, cpu)?;
    for (label, name) in [("gemmi", "gemmi"), ("biotite", "biotite"), ("biopython", "Biopython")] {
        let lib = &python[label];
        let number = |k: &str| lib[k].as_f64().unwrap_or(f64::NAN);
        let rounds = lib["rounds"].as_u64().unwrap_or(0);
        let version = lib["version"].as_str().unwrap_or("?");
        single_core.push(throughput(name, version, "parse", rounds, number("seconds"), texts.len(), bytes));
    }
    set_affinity(&affinity)?;

    let (preprocess, cache) = scaling(bench, &ccd)?;
    let per_second =
        |library: &str| single_core.iter().find(|t| t.library == library).map_or(f64::NAN, |t| t.structures_per_second);
    let ours = per_second("helico");
    Ok(Report {
        files: texts.len(),
        bytes,
        ccd: ccd_load,
        vs_gemmi: ours / per_second("gemmi"),
        vs_biopython: ours / per_second("Biopython"),
        single_core,
        preprocess,
        cache,
        cpu: cpu_model(),
        cores,
        python: python["python"].as_str().unwrap_or("?").to_owned(),
        build: if cfg!(debug_assertions) { "debug" } else { "release" }.to_owned(),
    })
}

fn parse_tokenize(path: &Path, text: &[u8], ccd: Option<&Ccd>) -> anyhow::Result<usize> {
    let file = CifFile::from_bytes(text.to_vec(), path)?;
    let mut s = Structure::from_cif(&file, &Options::default())?;
    if let Some(ccd) = ccd {
        s = s.complete(ccd)?.0;
    }
    Ok(tokenize(&s, &TokenizeOptions::default()).len())
}

/// Runs `round` until `min_seconds` have passed (after one warm-up round): (rounds, seconds).
fn repeat(min_seconds: f64, mut round: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<(u64, f64)> {
    round()?;
    let start = Instant::now();
    let mut rounds = 0;
    loop {
        round()?;
        rounds += 1;
        let seconds = start.elapsed().as_secs_f64();
        if seconds >= min_seconds {
            return Ok((rounds, seconds));
        }
    }
}

fn throughput(
    library: &str,
    version: &str,
    work: &str,
    rounds: u64,
    seconds: f64,
    files: usize,
    bytes: u64,
) -> Throughput {
    Throughput {
        library: library.to_owned(),
        version: version.to_owned(),
        work: work.to_owned(),
        rounds,
        seconds,
        structures_per_second: rounds as f64 * files as f64 / seconds,
        mb_per_second: rounds as f64 * bytes as f64 / seconds / 1e6,
    }
}

fn python_libraries(bench: &ParseBench, cpu: usize) -> anyhow::Result<Value> {
    let out = Command::new(&bench.python)
        .arg(&bench.script)
        .arg(bench.min_seconds.to_string())
        .arg(cpu.to_string())
        .args(&bench.files)
        .output()
        .with_context(|| format!("cannot run {} (run `make setup`)", bench.python.display()))?;
    if !out.status.success() {
        bail!("{} failed:\n{}", bench.script.display(), String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).context("the Python benchmark prints JSON")
}

/// Preprocesses `copies` copies of the files with each worker count, into fresh directories
/// (the CCD is loaded once, outside the timing), then times reading the entries back.
fn scaling(bench: &ParseBench, ccd: &Ccd) -> anyhow::Result<(Vec<Scaling>, CacheLoad)> {
    let dir = std::env::temp_dir().join(format!("helico-bench-parse-{}", std::process::id()));
    let result = scaling_in(bench, ccd, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn scaling_in(bench: &ParseBench, ccd: &Ccd, dir: &Path) -> anyhow::Result<(Vec<Scaling>, CacheLoad)> {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).with_context(|| format!("cannot create {}", src.display()))?;
    for copy in 0..bench.copies {
        for file in &bench.files {
            let name = file.file_name().context("a file name")?.to_string_lossy().into_owned();
            std::fs::copy(file, src.join(format!("c{copy}{name}")))?;
        }
    }
    let stop = AtomicBool::new(false);
    let params = Params::default();
    let mut out = Vec::new();
    for &jobs in &bench.jobs {
        let target = dir.join(format!("out-{jobs}"));
        let job = Job {
            src: &src,
            out: &target,
            ccd,
            ccd_blake3: "benchmark",
            params: &params,
            jobs,
            progress: false,
            stop: &stop,
        };
        let summary = prep::run(&job)?;
        let first = out.first().map_or(summary.seconds, |s: &Scaling| s.seconds);
        out.push(Scaling {
            jobs,
            structures: summary.processed,
            seconds: summary.seconds,
            structures_per_second: summary.structures_per_second,
            speedup: first / summary.seconds,
        });
    }
    let first = dir.join(format!("out-{}", bench.jobs.first().context("at least one worker count")?));
    Ok((out, cache_load(&first, bench.min_seconds)?))
}

fn cache_load(dir: &Path, min_seconds: f64) -> anyhow::Result<CacheLoad> {
    let dataset = Af3Dataset::open(dir)?;
    let n = dataset.len();
    if n == 0 {
        bail!("no entry was kept in {}", dir.display());
    }
    let mut atoms = 0;
    for e in dataset.entries() {
        atoms += CachedStructure::read(&e.path)?.structure.atoms.len();
    }
    let (rounds, seconds) = repeat(min_seconds, || {
        for e in dataset.entries() {
            CachedStructure::read(&e.path)?;
        }
        Ok(())
    })?;
    let load_ms = seconds * 1e3 / (rounds as f64 * n as f64);
    let config = LoaderConfig { crop_size: AF3_INITIAL_CROP, workers: 0, ..LoaderConfig::default() };
    let (rounds, seconds) = repeat(min_seconds, || {
        for (i, e) in dataset.entries().iter().enumerate() {
            let cached = CachedStructure::read(&e.path)?;
            let mut rng = SplitMix64(i as u64);
            let method = config.crop_weights.choose(&mut rng);
            crop(&cached.structure, &cached.tokens, config.crop_size, method, &[], &mut rng);
        }
        Ok(())
    })?;
    let crop_ms = seconds * 1e3 / (rounds as f64 * n as f64);
    let (rounds, seconds) = repeat(min_seconds, || {
        for i in 0..n {
            dataset.example(&config, i, i as u64)?;
        }
        Ok(())
    })?;
    Ok(CacheLoad {
        entries: n,
        mean_tokens: dataset.entries().iter().map(|e| e.tokens as f64).sum::<f64>() / n as f64,
        mean_atoms: atoms as f64 / n as f64,
        load_ms,
        crop_ms,
        example_ms: seconds * 1e3 / (rounds as f64 * n as f64),
    })
}

/// Pins the calling thread to the CPU it runs on; returns that CPU and the affinity to restore.
fn pin_to_one_cpu() -> anyhow::Result<(usize, libc::cpu_set_t)> {
    // SAFETY: a zeroed cpu_set_t is a valid (empty) set for sched_getaffinity to fill;
    // sched_getcpu has no preconditions.
    let (before, cpu) = unsafe {
        let mut before: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut before) != 0 {
            bail!("sched_getaffinity: {}", std::io::Error::last_os_error());
        }
        (before, usize::try_from(libc::sched_getcpu()).context("sched_getcpu")?)
    };
    // SAFETY: as above; CPU_SET writes within the set for a CPU the kernel just reported.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut one) };
    set_affinity(&one)?;
    Ok((cpu, before))
}

fn set_affinity(set: &libc::cpu_set_t) -> anyhow::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) } != 0 {
        bail!("sched_setaffinity: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// The CPU's model name from /proc/cpuinfo.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The report as a markdown page, with the command that produced it.
pub fn markdown(report: &Report, command: &str, commit: &str, date: &str) -> String {
    let mut md = format!(
        "# Structure parsing throughput ({date})\n\n\
         `{command}` at commit `{commit}` ({} build).\n\n\
         {} files, {:.1} MB of mmCIF (openfold3's test structures); CPU: {} ({} cores, shared machine); \
         Python {}. The CCD ({} components) was loaded once before any timing, in {:.0} ms ({}), \
         and is counted in no number below.\n\n## One core\n\n\
         | library | version | work | structures/s | MB/s | rounds |\n|---|---|---|---:|---:|---:|\n",
        report.build,
        report.files,
        report.bytes as f64 / 1e6,
        report.cpu,
        report.cores,
        report.python,
        report.ccd.components,
        report.ccd.seconds * 1e3,
        if report.ccd.cache_hit { "mapped from the CCD cache" } else { "parsed, and the CCD cache written" }
    );
    for t in &report.single_core {
        md += &format!(
            "| {} | {} | {} | {:.1} | {:.1} | {} |\n",
            t.library, t.version, t.work, t.structures_per_second, t.mb_per_second, t.rounds
        );
    }
    md += &format!(
        "\nhelico parse + tokenize: {:.2}× gemmi, {:.1}× Biopython (targets: ≥ 1× and ≥ 20×).\n\n\
         ## Preprocessing (parse, complete, tokenize, filter, write the cache)\n\n\
         | workers | structures | seconds | structures/s | speedup |\n|---:|---:|---:|---:|---:|\n",
        report.vs_gemmi, report.vs_biopython
    );
    for s in &report.preprocess {
        md += &format!(
            "| {} | {} | {:.2} | {:.1} | {:.2}× |\n",
            s.jobs, s.structures, s.seconds, s.structures_per_second, s.speedup
        );
    }
    let c = &report.cache;
    md += &format!(
        "\n## Reading the cache (one thread)\n\n\
         {} entries, {:.0} tokens and {:.0} atoms on average: a cache file loads (mmap + decode) in \
         {:.3} ms; with a crop to 384 tokens (AF3 §2.7) {:.2} ms; a whole training example (load, crop, \
         `Features::new`) {:.2} ms.\n",
        c.entries, c.mean_tokens, c.mean_atoms, c.load_ms, c.crop_ms, c.example_ms
    );
    md
}
