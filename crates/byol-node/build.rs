// The addon links what torch-sys links, libtorch_cpu and libc10 (libc10 put
// ahead of `-ltorch` by crates/byol/build.rs). libtorch_cuda, which pulls in
// cuBLAS, cuDNN, NCCL and the rest (about 230 MB of a process's memory once
// mapped and relocated), is not a NEEDED entry: src/native.ts loads it before
// the addon where a CUDA driver is present, and its static initialisers then
// register CUDA with libtorch_cpu. A CPU-only host never maps it. There is no
// absolute rpath either: the same loader preloads libtorch from
// BYOL_TORCH_LIBTORCH, the per-user cache or the python3 on PATH, so one
// binary works on any host with PyTorch 2.11.0.
fn main() {
    napi_build::setup();
}
