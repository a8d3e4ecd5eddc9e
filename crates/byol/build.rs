// Compiles the C++ in csrc/ against the headers of the libtorch that torch-sys
// links (its lib dir's sibling `include`), with the same C++ ABI: the shim
// (what tch does not expose) and the compatibility symbols of compat.cpp,
// linked whole so that they also serve torch-sys's own C++ objects. Where the
// libtorch is a CUDA build, also links libbyol_nccl.so (csrc/dist/nccl.cpp),
// the NCCL backend that only a host with CUDA loads.
use std::path::{Path, PathBuf};
use std::process::Command;

/// The libtorch release the shim is written for (csrc/version.h checks the
/// same at compile time).
const TORCH_MAJOR_MINOR: (u32, u32) = (2, 11);

fn main() {
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-changed=third_party");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB); build through scripts/cargo.sh");
    };
    let lib = PathBuf::from(lib);
    let Some(root) = lib.parent() else {
        panic!("the libtorch lib folder {} has no parent holding `include`", lib.display());
    };
    let include = root.join("include");
    check_version(&include);
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
            .include(&include)
            .include(include.join("torch/csrc/api/include"))
            .warnings(false);
        b
    };
    cxx("shim")
        .file("csrc/views.cpp")
        .file("csrc/dist/group.cpp")
        .file("csrc/jit.cpp")
        .file("csrc/maxpool.cpp")
        .file("csrc/batchnorm.cpp")
        .file("csrc/resize.cpp")
        // ProcessGroupGloo.hpp is empty without it (the wheel is built with Gloo).
        .define("USE_C10D_GLOO", None)
        .include("third_party/gloo")
        // The shim's loops run on ATen's OpenMP threads (the wheel's libgomp,
        // which torch-sys links as `gomp`); see parallel_chunks in shim.h.
        .flag("-fopenmp")
        .compile("byol_shim");
    cxx("compat").link_lib_modifier("+whole-archive").compile("byol_compat");
    // libc10 ahead of torch-sys's `-ltorch`: libtorch_cpu's reference to
    // std::ios_base_library_init is then met by libc10, where it resolves at run
    // time, and `--as-needed` leaves out libtorch.so, whose own NEEDED entry
    // would map libtorch_cuda and the CUDA libraries on every host (see
    // crates/byol-node/build.rs and src/native.ts).
    println!("cargo:rustc-link-lib=dylib=c10");
    nccl_library(&lib, cxx("dist/nccl"));
}

/// Stops the build when the headers are not libtorch 2.11's: the shim uses
/// c10d's C++ classes, whose layout changes between releases.
fn check_version(include: &Path) {
    let header = include.join("torch/headeronly/version.h");
    let text = std::fs::read_to_string(&header).unwrap_or_default();
    let number = |name: &str| text.lines().find_map(|l| l.trim().strip_prefix(&format!("#define {name} "))?.trim().parse::<u32>().ok());
    match (number("TORCH_VERSION_MAJOR"), number("TORCH_VERSION_MINOR")) {
        (Some(major), Some(minor)) if (major, minor) == TORCH_MAJOR_MINOR => {}
        (Some(major), Some(minor)) => panic!(
            "byol-torch needs libtorch {}.{} (PyTorch {}.{}.x), and the libtorch found has headers of {major}.{minor} ({}); \
             install the right one with `node scripts/install-libtorch.cjs` or point BYOL_TORCH_LIBTORCH at it",
            TORCH_MAJOR_MINOR.0,
            TORCH_MAJOR_MINOR.1,
            TORCH_MAJOR_MINOR.0,
            TORCH_MAJOR_MINOR.1,
            header.display()
        ),
        _ => panic!("cannot read libtorch's version from {}: is this a libtorch 2.11 install?", header.display()),
    }
}

/// libbyol_nccl.so next to the build's other outputs (target/<triple>/release),
/// where scripts/build-native.sh takes it. Built only where libtorch has its
/// CUDA half and the wheels of NCCL and the CUDA runtime headers sit beside
/// it, as in PyPI's torch for x86-64; every symbol it uses must resolve
/// against those libraries when it is linked (`--no-undefined`).
fn nccl_library(lib: &Path, mut build: cc::Build) {
    let site = lib.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let (nccl, cuda) = (site.join("nvidia/nccl"), site.join("nvidia/cu13"));
    let needs = [lib.join("libtorch_cuda.so"), nccl.join("include/nccl.h"), cuda.join("include/crt/host_config.h")];
    if let Some(missing) = needs.iter().find(|p| !p.exists()) {
        println!("cargo:warning=no NCCL backend is built: {} is missing (libtorch without CUDA)", missing.display());
        return;
    }
    build
        .file("csrc/compat.cpp")
        .define("USE_C10D_NCCL", None)
        .include(nccl.join("include"))
        .include(cuda.join("include"))
        .include(cuda.join("include/cccl"))
        .flag("-fvisibility=hidden")
        .flag("-fvisibility-inlines-hidden");
    let objects = build.compile_intermediates();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is target/<triple>/<profile>/build/byol-<hash>/out.
    let Some(dest) = out.ancestors().nth(3) else { panic!("unexpected OUT_DIR {}", out.display()) };
    let linker = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| build.get_compiler().path().display().to_string());
    let libstdcxx = Command::new(build.get_compiler().path()).arg("-print-file-name=libstdc++.so").output();
    let libstdcxx = libstdcxx.ok().map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string()));
    let mut link = Command::new(&linker);
    link.arg("-shared").arg("-o").arg(dest.join("libbyol_nccl.so")).args(&objects);
    for dir in [lib.to_path_buf(), nccl.join("lib"), cuda.join("lib")] {
        link.arg(format!("-L{}", dir.display()));
    }
    if let Some(dir) = libstdcxx.as_deref().and_then(Path::parent) {
        link.arg(format!("-L{}", dir.display()));
    }
    link.args(["-Wl,--as-needed", "-ltorch_cuda", "-lc10_cuda", "-ltorch_cpu", "-lc10", "-l:libcudart.so.13", "-l:libnccl.so.2"]).args([
        "-lstdc++",
        "-Wl,--no-undefined",
        "-Wl,--allow-shlib-undefined",
    ]);
    match link.status() {
        Ok(s) if s.success() => {}
        other => panic!("linking libbyol_nccl.so with {linker} failed ({other:?}): {link:?}"),
    }
}
