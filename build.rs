//! Link libtorch so the same binary finds CUDA when it is there.
//!
//! torch-sys links `torch_cuda`, but the default `--as-needed` drops it (no symbol is used
//! directly) and `tch::Cuda::is_available()` then reports false; tch's own build.rs fixes this
//! only for tch's examples (link args never reach dependents). An rpath to the build-time
//! libtorch makes the binary run with no `LD_LIBRARY_PATH`.

fn main() {
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys is a direct dependency and exports its lib dir");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
    println!("cargo:rustc-link-arg=-ltorch_cuda");
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
}
