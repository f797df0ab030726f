//! The environment a run ran in (`env.json`): host, GPUs and driver, build, libtorch, process,
//! and an allowlist of environment variables.
//!
//! Only allowlisted variables are recorded ([`is_recorded_var`]); their values, the command
//! line and the working directory pass through the [`Redactor`]. Every probe is best effort:
//! what cannot be read (no `/proc`, no NVIDIA driver, no `nvidia-smi`) is recorded as `null`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::secrets::{MIN_SECRET_LEN, Redactor, is_secret_name};

/// libtorch version that torch-sys 0.24.0 is written against (its `build.rs` pins it).
pub const PINNED_LIBTORCH_VERSION: &str = "2.11.0";

/// Environment variables recorded by exact name.
const RECORDED_VARS: &[&str] = &[
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "LIBTORCH",
    "LD_LIBRARY_PATH",
    "NVIDIA_VISIBLE_DEVICES",
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "SLURM_JOB_ID",
    "SLURM_JOB_NAME",
    "SLURM_JOB_NODELIST",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SLURM_LOCALID",
    "SLURM_NODEID",
];

/// Environment variables recorded by prefix: everything that changes what libtorch, CUDA,
/// NCCL or helico's config layer (`HELICO__A__B`) do, and array-job coordinates.
const RECORDED_PREFIXES: &[&str] =
    &["CUDA_", "CUBLAS", "CUDNN_", "NCCL_", "TORCH_", "PYTORCH_", "SLURM_ARRAY_", "HELICO_"];

/// How long `nvidia-smi` may take before it is killed: a wedged driver can hang it forever.
const NVIDIA_SMI_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything `env.json` records.
#[derive(Debug, Clone, Serialize)]
pub struct EnvInfo {
    pub host: HostInfo,
    pub gpu: GpuInfo,
    pub build: BuildInfo,
    pub libtorch: LibtorchInfo,
    pub process: ProcessInfo,
    /// Allowlisted environment variables, values redacted, sorted by name.
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    pub hostname: Option<String>,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os: Option<String>,
    /// Kernel release (`uname -r`).
    pub kernel: Option<String>,
    pub arch: String,
    pub cpu_model: Option<String>,
    /// Logical CPUs online in the machine (`/proc/cpuinfo`).
    pub logical_cores: Option<usize>,
    /// Logical CPUs this process may use (affinity and cgroup quota applied).
    pub available_parallelism: Option<usize>,
    pub memory_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GpuInfo {
    pub cuda_available: bool,
    pub device_count: i64,
    /// GPU models, from the driver's `/proc` files or `nvidia-smi`, in bus order.
    pub models: Vec<String>,
    pub driver_version: Option<String>,
    pub cudnn_available: bool,
    /// cuDNN version as libtorch reports it (e.g. 91002); `None` without a usable GPU.
    pub cudnn_version: Option<i64>,
    /// CUDA runtime version libtorch was built with (e.g. 13000); `None` without CUDA.
    pub cudart_version: Option<i64>,
}

/// How this binary was built (captured by `build.rs`).
#[derive(Debug, Clone, Serialize)]
pub struct BuildInfo {
    pub helico_version: String,
    pub rustc: String,
    /// `debug` or `release` (cargo's build-script `PROFILE`).
    pub profile: String,
    pub opt_level: String,
    pub target: String,
    pub features: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LibtorchInfo {
    pub pinned_version: String,
    /// Version read beside the loaded library (`build-version` or pip's `version.py`).
    pub version: Option<String>,
    /// libtorch lib dir at build time (the rpath).
    pub build_lib_dir: String,
    /// The `libtorch_cpu.so` actually mapped into this process: differs from the build dir
    /// when `LD_LIBRARY_PATH` points elsewhere, as on the GPU machines.
    pub loaded_library: Option<PathBuf>,
    pub intra_op_threads: i32,
    pub inter_op_threads: i32,
    pub cudnn_enabled: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessInfo {
    /// argv, each argument redacted.
    pub command_line: Vec<String>,
    pub working_dir: Option<String>,
    pub pid: u32,
}

impl EnvInfo {
    /// Probes this process: its environment, argv and working directory.
    pub fn collect(redactor: &Redactor) -> EnvInfo {
        EnvInfo::collect_from(std::env::vars_os(), std::env::args_os(), redactor)
    }

    /// Like [`EnvInfo::collect`] with the environment and argv given, e.g. to record a
    /// launcher's view, or in tests (setting the process environment is unsafe with threads).
    pub fn collect_from<V, A>(vars: V, args: A, redactor: &Redactor) -> EnvInfo
    where
        V: IntoIterator<Item = (OsString, OsString)>,
        A: IntoIterator<Item = OsString>,
    {
        let loaded_library = loaded_libtorch();
        let build_lib_dir = env!("HELICO_BUILD_LIBTORCH_LIB");
        let lib_dir = loaded_library.as_deref().and_then(Path::parent).unwrap_or(Path::new(build_lib_dir));
        EnvInfo {
            host: HostInfo::collect(),
            gpu: GpuInfo::collect(),
            build: BuildInfo::current(),
            libtorch: LibtorchInfo {
                pinned_version: PINNED_LIBTORCH_VERSION.to_owned(),
                version: lib_dir.parent().and_then(libtorch_version),
                build_lib_dir: build_lib_dir.to_owned(),
                loaded_library,
                intra_op_threads: tch::get_num_threads(),
                inter_op_threads: tch::get_num_interop_threads(),
                cudnn_enabled: tch::Cuda::user_enabled_cudnn(),
            },
            process: ProcessInfo {
                command_line: args.into_iter().map(|a| redactor.redact(&a.to_string_lossy()).into_owned()).collect(),
                working_dir: std::env::current_dir().ok().map(|d| redactor.redact(&d.to_string_lossy()).into_owned()),
                pid: std::process::id(),
            },
            env: recorded_vars(vars, redactor),
        }
    }
}

/// Whether `env.json` records this variable (see [`RECORDED_VARS`], [`RECORDED_PREFIXES`]).
pub fn is_recorded_var(name: &str) -> bool {
    RECORDED_VARS.contains(&name) || RECORDED_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn recorded_vars<V>(vars: V, redactor: &Redactor) -> BTreeMap<String, String>
where
    V: IntoIterator<Item = (OsString, OsString)>,
{
    let mut recorded = BTreeMap::new();
    for (name, value) in vars {
        let name = name.to_string_lossy().into_owned();
        if !is_recorded_var(&name) {
            continue;
        }
        let value = value.to_string_lossy();
        // A secret-named variable is hidden whole even if the redactor was built from another
        // environment (`HELICO__TRACK__WANDB_API_KEY` passed to a launcher).
        let value = if is_secret_name(&name) && value.len() >= MIN_SECRET_LEN {
            format!("[REDACTED:{name}]")
        } else {
            redactor.redact(&value).into_owned()
        };
        recorded.insert(name, value);
    }
    recorded
}

impl HostInfo {
    fn collect() -> HostInfo {
        let cpuinfo = read_trimmed("/proc/cpuinfo");
        HostInfo {
            hostname: hostname(),
            os: read_trimmed("/etc/os-release").as_deref().and_then(os_pretty_name),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            arch: std::env::consts::ARCH.to_owned(),
            cpu_model: cpuinfo.as_deref().and_then(cpu_model),
            logical_cores: cpuinfo.as_deref().map(|c| c.lines().filter(|l| l.starts_with("processor")).count()),
            available_parallelism: std::thread::available_parallelism().ok().map(usize::from),
            memory_bytes: read_trimmed("/proc/meminfo").as_deref().and_then(mem_total_bytes),
        }
    }
}

impl GpuInfo {
    fn collect() -> GpuInfo {
        let cuda_available = tch::Cuda::is_available();
        let cudnn_available = cuda_available && tch::Cuda::cudnn_is_available();
        let mut models = proc_gpu_models();
        let mut driver_version = read_trimmed("/proc/driver/nvidia/version").as_deref().and_then(driver_version);
        if (models.is_empty() || driver_version.is_none())
            && let Some((smi_models, smi_driver)) = nvidia_smi()
        {
            if models.is_empty() {
                models = smi_models;
            }
            driver_version = driver_version.or(smi_driver);
        }
        GpuInfo {
            cuda_available,
            device_count: if cuda_available { tch::Cuda::device_count() } else { 0 },
            models,
            driver_version,
            cudnn_available,
            // Both versions are queried through libtorch's CUDA hooks, which throw without
            // libtorch_cuda; only ask when CUDA is usable.
            cudnn_version: cudnn_available.then(tch::utils::version_cudnn),
            cudart_version: cuda_available.then(tch::utils::version_cudart),
        }
    }
}

impl BuildInfo {
    /// The build this code was compiled in.
    pub fn current() -> BuildInfo {
        let features = env!("HELICO_BUILD_FEATURES");
        BuildInfo {
            helico_version: env!("CARGO_PKG_VERSION").to_owned(),
            rustc: env!("HELICO_BUILD_RUSTC").to_owned(),
            profile: env!("HELICO_BUILD_PROFILE").to_owned(),
            opt_level: env!("HELICO_BUILD_OPT_LEVEL").to_owned(),
            target: env!("HELICO_BUILD_TARGET").to_owned(),
            features: features.split(',').filter(|f| !f.is_empty()).map(str::to_owned).collect(),
        }
    }
}

fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn os_pretty_name(os_release: &str) -> Option<String> {
    let value = os_release.lines().find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
    Some(value.trim_matches('"').to_owned())
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    // x86 says "model name"; some aarch64 kernels say "Model" or nothing at all.
    cpuinfo.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        matches!(key.trim(), "model name" | "Model").then(|| value.trim().to_owned())
    })
}

fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// The driver version in the `NVRM version:` line: the first dotted all-digit word, since the
/// words before it vary (`… Kernel Module  550.54.15 …`, `… Open Kernel Module for x86_64
/// 580.159.04 …`).
fn driver_version(proc_version: &str) -> Option<String> {
    let line = proc_version.lines().find(|l| l.starts_with("NVRM version:"))?;
    line.split_whitespace()
        .find(|w| w.contains('.') && w.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .map(str::to_owned)
}

/// `Model:` lines of `/proc/driver/nvidia/gpus/<bus id>/information`, in bus order.
fn proc_gpu_models() -> Vec<String> {
    let Ok(dir) = fs::read_dir("/proc/driver/nvidia/gpus") else {
        return Vec::new();
    };
    let mut buses: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
    buses.sort();
    buses.iter().filter_map(|bus| read_trimmed(bus.join("information"))).filter_map(|info| gpu_model(&info)).collect()
}

fn gpu_model(information: &str) -> Option<String> {
    information.lines().find_map(|l| l.strip_prefix("Model:")).map(|m| m.trim().to_owned())
}

/// GPU models and driver version from `nvidia-smi`, if it exists and answers in time.
fn nvidia_smi() -> Option<(Vec<String>, Option<String>)> {
    let mut child = Command::new("nvidia-smi")
        .args(["--query-gpu=name,driver_version", "--format=csv,noheader"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < NVIDIA_SMI_TIMEOUT => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once(','))
        .map(|(name, driver)| (name.trim().to_owned(), driver.trim().to_owned()))
        .collect();
    let driver = rows.first().map(|(_, d)| d.clone());
    Some((rows.into_iter().map(|(name, _)| name).collect(), driver))
}

/// Path of the `libtorch_cpu.so` mapped into this process (Linux `/proc/self/maps`).
fn loaded_libtorch() -> Option<PathBuf> {
    let maps = fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| Path::new(p).file_name().is_some_and(|f| f.to_string_lossy().starts_with("libtorch_cpu.so")))
        .map(PathBuf::from)
}

/// Version of the libtorch at `root`: `build-version` (libtorch zip) or `version.py` (pip wheel).
fn libtorch_version(root: &Path) -> Option<String> {
    if let Some(v) = read_trimmed(root.join("build-version")) {
        return Some(v);
    }
    let py = read_trimmed(root.join("version.py"))?;
    let line = py.lines().find_map(|l| l.strip_prefix("__version__"))?;
    Some(line.trim_start_matches([' ', '=']).trim().trim_matches(['\'', '"']).to_owned())
}

/// This machine's host name (from the kernel), if it can be read.
pub fn hostname() -> Option<String> {
    read_trimmed("/proc/sys/kernel/hostname")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsers() {
        assert_eq!(mem_total_bytes("MemTotal:       24684084 kB\nMemFree: 1 kB\n"), Some(24684084 * 1024));
        assert_eq!(cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 9654\n").as_deref(), Some("AMD EPYC 9654"));
        assert_eq!(
            os_pretty_name("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        let nvrm = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\nGCC version: gcc 12\n";
        assert_eq!(driver_version(nvrm).as_deref(), Some("550.54.15"));
        // Seen on an H200 host with the open kernel module.
        let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)  \nGCC version:  gcc 15.3.0\n";
        assert_eq!(driver_version(open).as_deref(), Some("580.159.04"));
        let info = "Model: \t\t NVIDIA H200\nIRQ:   \t\t 41\n";
        assert_eq!(gpu_model(info).as_deref(), Some("NVIDIA H200"));
    }

    #[test]
    fn allowlist() {
        for name in [
            "CUDA_VISIBLE_DEVICES",
            "NCCL_DEBUG",
            "TORCH_SHOW_CPP_STACKTRACES",
            "HELICO__TRAIN__LR",
            "SLURM_ARRAY_TASK_ID",
            "RANK",
        ] {
            assert!(is_recorded_var(name), "{name}");
        }
        for name in ["HOME", "PATH", "USER", "SSH_AUTH_SOCK", "WANDB_API_KEY", "HF_TOKEN", "SLURM_JOB_ACCOUNT_X"] {
            assert!(!is_recorded_var(name), "{name}");
        }
    }

    #[test]
    fn recorded_values_are_redacted() {
        let redactor = Redactor::from_vars([("HF_TOKEN", "hf_plain-env-token-value")]);
        let vars = [
            ("HELICO__TRACK__WANDB_API_KEY", "0123456789abcdef"),
            ("NCCL_DEBUG", "INFO"),
            ("HELICO__DATA__MAX_TOKENS", "384"),
            ("TORCH_HOME", "/x/hf_plain-env-token-value"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let got = recorded_vars(vars, &redactor);
        let want: BTreeMap<String, String> = [
            ("HELICO__DATA__MAX_TOKENS", "384"),
            ("HELICO__TRACK__WANDB_API_KEY", "[REDACTED:HELICO__TRACK__WANDB_API_KEY]"),
            ("NCCL_DEBUG", "INFO"),
            ("TORCH_HOME", "/x/[REDACTED:HF_TOKEN]"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn libtorch_version_from_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join("version.py"), "__all__ = []\n__version__ = '2.11.0+cu130'\n").expect("write");
        assert_eq!(libtorch_version(dir.path()).as_deref(), Some("2.11.0+cu130"));
        fs::write(dir.path().join("build-version"), "2.11.0+cpu\n").expect("write");
        assert_eq!(libtorch_version(dir.path()).as_deref(), Some("2.11.0+cpu"));
    }
}
