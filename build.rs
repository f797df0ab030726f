//! Link libtorch so the same binary finds CUDA when it is there.
//!
//! torch-sys links `torch_cuda`, but the default `--as-needed` drops it (no symbol is used
//! directly) and `tch::Cuda::is_available()` then reports false; tch's own build.rs fixes this
//! only for tch's examples (link args never reach dependents). An rpath to the build-time
//! libtorch makes the binary run with no `LD_LIBRARY_PATH`.
//!
//! Also exports what the run snapshot records about the build (`run::env::BuildInfo`): rustc
//! version, profile, opt-level, target, enabled features and the libtorch lib dir.
//!
//! And compiles the libtorch shim (`src/sys/shim.cpp`, see `src/sys/mod.rs`) against
//! libtorch's headers alone, with torch-sys's own flags: no CUDA headers or toolkit, so CPU
//! machines build it too. It includes per-operator ATen headers rather than `ATen/ATen.h`,
//! which keeps its compile to ~10 s of CPU time.

fn main() {
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys is a direct dependency and exports its lib dir");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
    println!("cargo:rustc-link-arg=-ltorch_cuda");
    println!("cargo:rustc-link-arg=-Wl,--as-needed");

    shim(&lib);

    // The commit the binary was built from, for benchmark reports (`bench::d3pm`).
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
        String::from_utf8(out.stdout).ok().map(|s| s.trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "commit unknown".to_owned());
    println!("cargo:rustc-env=HELICO_BUILD_GIT={commit}");
    let head_ref = git(&["symbolic-ref", "-q", "HEAD"]);
    for name in ["HEAD"].into_iter().chain(head_ref.as_deref()) {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }

    println!("cargo:rustc-env=HELICO_BUILD_LIBTORCH_LIB={lib}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc_version = std::process::Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |v| v.trim().to_owned());
    println!("cargo:rustc-env=HELICO_BUILD_RUSTC={rustc_version}");
    for (var, exported) in
        [("PROFILE", "PROFILE"), ("OPT_LEVEL", "OPT_LEVEL"), ("TARGET", "TARGET"), ("CARGO_CFG_FEATURE", "FEATURES")]
    {
        let value = std::env::var(var).unwrap_or_default();
        println!("cargo:rustc-env=HELICO_BUILD_{exported}={value}");
    }
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
}

/// Compiles `src/sys/shim.cpp` unless this build script already compiled the same source
/// against the same libtorch: the script reruns on every commit (for the commit above), and
/// the compile costs ~10 s of CPU.
fn shim(lib: &str) {
    let source = "src/sys/shim.cpp";
    println!("cargo:rerun-if-changed={source}");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let text = std::fs::read(source).expect("src/sys/shim.cpp is part of the crate");
    let stamp = format!("{lib}\n{}", fnv1a(&text));
    let stamp_path = out.join("helico_shim.stamp");
    if out.join("libhelico_shim.a").exists() && std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(&stamp) {
        println!("cargo:rustc-link-search=native={}", out.display());
        println!("cargo:rustc-link-lib=static=helico_shim");
        println!("cargo:rustc-link-lib=stdc++");
        return;
    }
    let include = std::path::Path::new(lib).parent().expect("the libtorch lib dir has a parent").join("include");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file(source)
        .compile("helico_shim");
    std::fs::write(&stamp_path, stamp).expect("OUT_DIR is writable");
}

/// A content fingerprint without a build dependency: FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}
