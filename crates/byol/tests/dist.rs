//! Process groups on a host without CUDA: which backend they get, and what
//! asking for NCCL says.
use byol::dist::{nccl_loaded, DistBackend, DistEnv, GroupOptions, ProcessGroup};
use byol::tch::Device;

/// A world of two whose rank 1 never comes: a join that reached the
/// rendezvous would wait there.
fn env() -> DistEnv {
    DistEnv {
        rank: 0,
        world_size: 2,
        local_rank: 0,
        local_world_size: 2,
        master_addr: "127.0.0.1".into(),
        master_port: 1,
        agent_restart: None,
    }
}

#[test]
fn no_nccl_backend_is_loaded_in_a_process_without_libtorch_cuda() {
    assert!(!nccl_loaded());
}

#[test]
fn nccl_without_cuda_is_a_distributed_error_naming_what_is_missing_before_the_rendezvous() {
    let options = GroupOptions { backend: DistBackend::Nccl, device: Device::Cpu, ..GroupOptions::default() };
    let started = std::time::Instant::now();
    let Err(e) = ProcessGroup::join(&env(), options) else { panic!("joined a group with NCCL on a host without CUDA") };
    assert_eq!(e.code(), "ERR_BYOL_DISTRIBUTED");
    let message = e.to_string();
    assert!(message.contains("NCCL needs CUDA") && message.contains("libtorch_cuda.so"), "{message}");
    assert!(started.elapsed().as_secs() < 5, "waited {:?}", started.elapsed());
}
