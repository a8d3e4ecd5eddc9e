// Link arguments from torch-sys's build script are not passed on to a cdylib,
// so the addon has to ask for libtorch_cuda itself. Without `--no-as-needed` the
// linker drops libtorch_cuda (nothing references its symbols directly) and CUDA
// is never registered, so `cudaIsAvailable()` would be false even on a GPU host.
fn main() {
    napi_build::setup();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-search=native={lib_dir}");
        let has_cuda = std::path::Path::new(&lib_dir).join("libtorch_cuda.so").exists();
        println!("cargo:rustc-cdylib-link-arg=-Wl,--no-as-needed");
        if has_cuda {
            println!("cargo:rustc-cdylib-link-arg=-ltorch_cuda");
            println!("cargo:rustc-cdylib-link-arg=-lc10_cuda");
        }
        println!("cargo:rustc-cdylib-link-arg=-ltorch_cpu");
        println!("cargo:rustc-cdylib-link-arg=-ltorch");
        println!("cargo:rustc-cdylib-link-arg=-lc10");
        println!("cargo:rustc-cdylib-link-arg=-Wl,--as-needed");
        // No absolute rpath: the loader in src/native.ts preloads libtorch from
        // BYOL_TORCH_LIBTORCH, the per-user cache or the python3 on PATH, so the
        // same binary works on any host with PyTorch 2.11.0.
    }
}
