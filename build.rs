//! Link libtorch so the same binary finds CUDA when it is there.
//!
//! torch-sys links `torch_cuda`, but the default `--as-needed` drops it (no symbol is used
//! directly) and `tch::Cuda::is_available()` then reports false; tch's own build.rs fixes this
//! only for tch's examples (link args never reach dependents). An rpath to the build-time
//! libtorch makes the binary run with no `LD_LIBRARY_PATH`.
//!
//! Also exports what the run snapshot records about the build (`run::env::BuildInfo`): rustc
//! version, profile, opt-level, target, enabled features and the libtorch lib dir.

fn main() {
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys is a direct dependency and exports its lib dir");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
    println!("cargo:rustc-link-arg=-ltorch_cuda");
    println!("cargo:rustc-link-arg=-Wl,--as-needed");

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
