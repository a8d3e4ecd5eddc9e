// Compiles the C++ in csrc/ against the headers of the libtorch that torch-sys
// links (its lib dir's sibling `include`), with the same C++ ABI: the shim
// (what tch does not expose) and the compatibility symbols of compat.cpp,
// linked whole so that they also serve torch-sys's own C++ objects.
fn main() {
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB); build through scripts/cargo.sh");
    };
    let Some(root) = std::path::Path::new(&lib).parent() else {
        panic!("the libtorch lib folder {lib} has no parent holding `include`");
    };
    let include = root.join("include");
    let cxx = |name: &str| {
        let mut b = cc::Build::new();
        b.cpp(true)
            .file(format!("csrc/{name}.cpp"))
            .flag("-std=c++17")
            .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
            // Each float operation rounded on its own, as ATen's separate ops
            // round them: no fused multiply-add (aarch64's default contracts).
            .flag("-ffp-contract=off")
            .flag_if_supported("-Wno-unused-parameter")
            .warnings(false);
        b
    };
    cxx("shim")
        .file("csrc/views.cpp")
        .file("csrc/dist.cpp")
        .file("csrc/jit.cpp")
        .file("csrc/maxpool.cpp")
        .file("csrc/batchnorm.cpp")
        .file("csrc/resize.cpp")
        // The shim's loops run on ATen's OpenMP threads (the wheel's libgomp,
        // which torch-sys links as `gomp`); see parallel_chunks in shim.h.
        .flag("-fopenmp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .compile("byol_shim");
    cxx("compat").link_lib_modifier("+whole-archive").compile("byol_compat");
    // libc10 ahead of torch-sys's `-ltorch`: libtorch_cpu's reference to
    // std::ios_base_library_init is then met by libc10, where it resolves at run
    // time, and `--as-needed` leaves out libtorch.so, whose own NEEDED entry
    // would map libtorch_cuda and the CUDA libraries on every host (see
    // crates/byol-node/build.rs and src/native.ts).
    println!("cargo:rustc-link-lib=dylib=c10");
}
