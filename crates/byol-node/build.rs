// The addon links libtorch_cpu and libc10 only. libtorch_cuda, which pulls in
// cuBLAS, cuDNN, NCCL and the rest (about 230 MB of a process's memory once
// mapped and relocated), is not a NEEDED entry: src/native.ts loads it before
// the addon where a CUDA driver is present, and its static initialisers then
// register CUDA with libtorch_cpu. A CPU-only host never maps it.
fn main() {
    napi_build::setup();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-search=native={lib_dir}");
        println!("cargo:rustc-cdylib-link-arg=-ltorch_cpu");
        println!("cargo:rustc-cdylib-link-arg=-lc10");
        // No absolute rpath: the loader in src/native.ts preloads libtorch from
        // BYOL_TORCH_LIBTORCH, the per-user cache or the python3 on PATH, so the
        // same binary works on any host with PyTorch 2.11.0.
    }
}
