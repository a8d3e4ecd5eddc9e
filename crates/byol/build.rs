// Compiles the small C++ shim in csrc/ against the headers of the libtorch that
// torch-sys links (its lib dir's sibling `include`), with the same C++ ABI.
fn main() {
    println!("cargo:rerun-if-changed=csrc/amp.cpp");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB)");
    let include = std::path::Path::new(&lib).parent().expect("libtorch lib dir has a parent").join("include");
    cc::Build::new()
        .cpp(true)
        .file("csrc/amp.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .compile("byol_amp");
}
