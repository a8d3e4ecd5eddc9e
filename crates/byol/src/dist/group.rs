//! A c10d process group (Gloo, and NCCL for CUDA tensors, over a TCPStore
//! rendezvous) through the shim in `csrc/dist/`: what
//! `torch.distributed.init_process_group` makes.
use crate::dist::{DistBackend, DistEnv};
use crate::error::{Error, Result};
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::time::Duration;
use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn byol_last_error() -> *const c_char;
    fn byol_dist_new(
        host: *const c_char,
        port: c_int,
        rank: c_int,
        size: c_int,
        serve: c_int,
        prefix: *const c_char,
        rendezvous_ms: i64,
        timeout_ms: i64,
        nccl: c_int,
    ) -> *mut c_void;
    fn byol_dist_free(group: *mut c_void);
    fn byol_dist_nccl_loaded() -> c_int;
    fn byol_dist_allreduce_mean(group: *mut c_void, ts: *const *const C_tensor, n: usize, bucket_bytes: i64) -> c_int;
    fn byol_dist_backward_mean(
        group: *mut c_void,
        loss: *const C_tensor,
        params: *const *const C_tensor,
        n: usize,
        extra: *const *const C_tensor,
        bucket_bytes: i64,
        out: *mut *mut C_tensor,
    ) -> c_int;
    fn byol_dist_broadcast(group: *mut c_void, ts: *const *const C_tensor, n: usize, root: c_int) -> c_int;
    fn byol_dist_barrier(group: *mut c_void, timeout_ms: i64) -> c_int;
    fn byol_dist_allreduce_sum_autograd(group: *mut c_void, x: *const C_tensor) -> *mut C_tensor;
    fn byol_dist_suspects(group: *mut c_void, out: *mut c_char, len: usize);
}

/// The longest a collective waits for the other ranks by default: a rank
/// that died or hangs is reported within it.
pub const DEFAULT_TIMEOUT_SECONDS: f64 = 60.0;
/// DistributedDataParallel's `bucket_cap_mb` (25 MiB).
pub const DEFAULT_BUCKET_BYTES: i64 = 25 * 1024 * 1024;
/// How long the ranks may take to arrive at the rendezvous, in collective
/// timeouts: processes reach `fit` at different times (data to index, models
/// to load), and launchers on several hosts start them seconds apart.
const RENDEZVOUS_TIMEOUTS: u32 = 5;

#[derive(Clone, Copy, Debug)]
pub struct GroupOptions {
    /// The longest a collective waits (`DEFAULT_TIMEOUT_SECONDS`).
    pub timeout: Duration,
    /// Gradients are all-reduced in flat buckets of at most this many bytes.
    pub bucket_bytes: i64,
    /// What carries the collectives of the model's tensors.
    pub backend: DistBackend,
    /// The device the ranks train on (the backend `Auto` follows it).
    pub device: tch::Device,
}

impl Default for GroupOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs_f64(DEFAULT_TIMEOUT_SECONDS),
            bucket_bytes: DEFAULT_BUCKET_BYTES,
            backend: DistBackend::Auto,
            device: tch::Device::Cpu,
        }
    }
}

/// One process's membership of a group of `world_size` processes.
pub struct ProcessGroup {
    handle: *mut c_void,
    rank: usize,
    world_size: usize,
    local_rank: usize,
    local_world_size: usize,
    options: GroupOptions,
    /// Whether NCCL carries the CUDA tensors (else Gloo carries all).
    nccl: bool,
}

// SAFETY: c10d backends are made to be called from any thread; the handle is
// owned by this value alone and freed once, in Drop.
unsafe impl Send for ProcessGroup {}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn handles(tensors: &[&Tensor]) -> Vec<*const C_tensor> {
    tensors.iter().map(|t| t.as_ptr()).collect()
}

impl ProcessGroup {
    /// Joins the group `env` describes: rank 0 serves the rendezvous at
    /// `MASTER_ADDR:MASTER_PORT`, every rank waits there for the others.
    pub fn join(env: &DistEnv, options: GroupOptions) -> Result<Self> {
        let host = CString::new(env.master_addr.as_str()).map_err(|_| Error::invalid("MASTER_ADDR", "a host name", &env.master_addr))?;
        // Under torchrun the agent serves the store and each restart of the
        // workers keeps its keys apart, as torch's env:// rendezvous does.
        let (serve, prefix) = match env.agent_restart {
            Some(attempt) => (false, format!("/worker/attempt_{attempt}")),
            None => (env.rank == 0, String::new()),
        };
        let prefix = CString::new(prefix).map_err(|_| Error::invalid("TORCHELASTIC_RESTART_COUNT", "a number", "a string with NUL"))?;
        let (rank, size) = (c_int::try_from(env.rank), c_int::try_from(env.world_size));
        let (Ok(rank), Ok(size)) = (rank, size) else {
            return Err(Error::range("WORLD_SIZE", "fewer than 2^31 processes", env.world_size));
        };
        let nccl = match options.backend {
            // As `init_process_group(backend=None)`: NCCL where it can run.
            DistBackend::Auto => options.backend.uses_nccl(options.device) && nccl_loaded(),
            forced => forced.uses_nccl(options.device),
        };
        // Before the rendezvous, so that no rank waits for one that cannot join.
        if nccl && !crate::tensor::device::cuda_is_available() {
            return Err(Error::Distributed {
                rank: env.rank,
                op: "making the NCCL process group".into(),
                message: format!(
                    "NCCL needs CUDA, and this host has none: libtorch's CUDA half (libtorch_cuda.so) is not loaded, as \
                     on every host without an NVIDIA driver (libcuda.so.1){}; train with backend 'gloo' here",
                    if options.backend == DistBackend::Nccl { ", and backend 'nccl' was asked for" } else { "" }
                ),
            });
        }
        // SAFETY: `host` and `prefix` outlive the call; the shim copies them.
        let handle = unsafe {
            let rendezvous = options.timeout.saturating_mul(RENDEZVOUS_TIMEOUTS);
            byol_dist_new(
                host.as_ptr(),
                c_int::from(env.master_port),
                rank,
                size,
                c_int::from(serve),
                prefix.as_ptr(),
                millis(rendezvous),
                millis(options.timeout),
                c_int::from(nccl),
            )
        };
        if handle.is_null() {
            return Err(dist_error(env.rank, &format!("joining the group at {}:{}", env.master_addr, env.master_port)));
        }
        Ok(Self {
            handle,
            rank: env.rank,
            world_size: env.world_size,
            local_rank: env.local_rank,
            local_world_size: env.local_world_size,
            options,
            nccl,
        })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// This process's place among those of its host (`LOCAL_RANK`).
    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// The device this rank trains on when the run asks for `device`: on a
    /// GPU host each local rank takes its own GPU, `cuda:LOCAL_RANK`, as
    /// torchrun and Lightning assign them.
    pub fn device_for(&self, device: tch::Device) -> Result<tch::Device> {
        match device {
            tch::Device::Cuda(_) if self.local_world_size > 1 => {
                let gpus = crate::tensor::device::cuda_device_count();
                if self.local_rank >= gpus {
                    return Err(Error::Device(format!(
                        "local rank {} of {} needs cuda:{}, and this host has {gpus} GPU(s): start at most one process per GPU",
                        self.local_rank, self.local_world_size, self.local_rank
                    )));
                }
                Ok(tch::Device::Cuda(self.local_rank))
            }
            other => Ok(other),
        }
    }

    /// The backend of the model's tensors: `"nccl"` or `"gloo"`.
    pub fn backend(&self) -> &'static str {
        if self.nccl {
            DistBackend::Nccl.name()
        } else {
            DistBackend::Gloo.name()
        }
    }

    pub fn options(&self) -> GroupOptions {
        self.options
    }

    /// Replaces each tensor by its mean over the ranks, as
    /// DistributedDataParallel averages gradients (bucketed, all buckets in
    /// flight at once).
    pub fn all_reduce_mean_(&self, tensors: &[&Tensor]) -> Result<()> {
        let h = handles(tensors);
        // SAFETY: live at::Tensor handles borrowed for the call.
        if unsafe { byol_dist_allreduce_mean(self.handle, h.as_ptr(), h.len(), self.options.bucket_bytes) } != 0 {
            return Err(self.failed("all-reduce"));
        }
        Ok(())
    }

    /// The gradients of `loss` with respect to `params`, averaged over the
    /// ranks as `all_reduce_mean_` averages them, each bucket's all-reduce
    /// started during backward as soon as its gradients exist (DDP's overlap
    /// of communication with computation). `summed`: gradients of earlier
    /// micro-batches, added to this one's before the reduction.
    pub fn backward_mean(&self, loss: &Tensor, params: &[Tensor], summed: Option<&[Tensor]>) -> Result<Vec<Tensor>> {
        let p: Vec<&Tensor> = params.iter().collect();
        let p = handles(&p);
        let extra = match summed {
            Some(s) if s.len() != params.len() => {
                return Err(Error::invalid("summed", format!("{} gradients, one per parameter", params.len()), s.len()))
            }
            Some(s) => Some(handles(&s.iter().collect::<Vec<_>>())),
            None => None,
        };
        let mut out: Vec<*mut C_tensor> = vec![std::ptr::null_mut(); params.len()];
        // SAFETY: live handles borrowed for the call; `out` has room for one
        // handle per parameter, each a new at::Tensor we then own.
        let status = unsafe {
            byol_dist_backward_mean(
                self.handle,
                loss.as_ptr(),
                p.as_ptr(),
                p.len(),
                extra.as_ref().map_or(std::ptr::null(), |e| e.as_ptr()),
                self.options.bucket_bytes,
                out.as_mut_ptr(),
            )
        };
        if status != 0 {
            return Err(self.failed("all-reduce"));
        }
        // SAFETY: every slot holds a new handle on success.
        Ok(out.into_iter().map(|t| unsafe { Tensor::from_ptr(t) }).collect())
    }

    /// Sets every tensor to rank `root`'s.
    pub fn broadcast_(&self, tensors: &[&Tensor], root: usize) -> Result<()> {
        let h = handles(tensors);
        let root = c_int::try_from(root).map_err(|_| Error::range("root", "a rank", root))?;
        // SAFETY: as in `all_reduce_mean_`.
        if unsafe { byol_dist_broadcast(self.handle, h.as_ptr(), h.len(), root) } != 0 {
            return Err(self.failed("broadcast"));
        }
        Ok(())
    }

    /// The sum of `x` over the ranks, differentiable: its gradient is the sum
    /// over the ranks of the gradients (`torch.distributed.nn.functional.all_reduce`).
    /// The backward pass runs the matching all-reduce, so every rank must
    /// take part in both.
    pub fn all_reduce_sum(&self, x: &Tensor) -> Result<Tensor> {
        // SAFETY: a live handle borrowed for the call; the group outlives the
        // autograd graph, which holds its pointer for the backward pass,
        // because the step that builds the graph borrows the group.
        let ptr = unsafe { byol_dist_allreduce_sum_autograd(self.handle, x.as_ptr()) };
        if ptr.is_null() {
            return Err(self.failed("all-reduce"));
        }
        // SAFETY: a new at::Tensor the shim made for us to own.
        Ok(unsafe { Tensor::from_ptr(ptr) })
    }

    /// Waits for every rank, for at most `timeout` (the group's when `None`).
    pub fn barrier(&self, timeout: Option<Duration>) -> Result<()> {
        // SAFETY: the group's own handle.
        if unsafe { byol_dist_barrier(self.handle, timeout.map_or(-1, millis)) } != 0 {
            return Err(self.failed("barrier"));
        }
        Ok(())
    }
}

impl ProcessGroup {
    /// The error of a failed collective, naming the ranks that are gone
    /// when they can be told (on this host, or the store's server).
    fn failed(&self, op: &str) -> Error {
        // The shim's message first: the check below makes calls of its own.
        let detail = last_error();
        let mut buf = vec![0u8; 512];
        // SAFETY: the group's handle; the shim writes a NUL-terminated string of at most `len` bytes.
        unsafe { byol_dist_suspects(self.handle, buf.as_mut_ptr().cast(), buf.len()) };
        let said = std::ffi::CStr::from_bytes_until_nul(&buf).map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
        let message = if said.is_empty() { explain(detail) } else { format!("{said} ({detail})") };
        Error::Distributed { rank: self.rank, op: op.to_string(), message }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: made by byol_dist_new, freed once.
        unsafe { byol_dist_free(self.handle) }
    }
}

/// Whether byol-torch's NCCL backend (libbyol_nccl.so, which the Node
/// loader opens with libtorch_cuda) is in the process.
pub fn nccl_loaded() -> bool {
    // SAFETY: a lookup of a symbol, no arguments.
    unsafe { byol_dist_nccl_loaded() != 0 }
}

fn last_error() -> String {
    // SAFETY: the shim keeps a NUL-terminated message per thread.
    unsafe { std::ffi::CStr::from_ptr(byol_last_error()) }.to_string_lossy().into_owned()
}

/// Gloo names the peer's address, not its rank: say what a closed connection means.
fn explain(mut message: String) -> String {
    if ["Connection closed by peer", "Connection reset by peer", "Broken pipe"].iter().any(|s| message.contains(s)) {
        message.push_str(" (another rank stopped: killed, or failed; its own output says which and why)");
    }
    message
}

fn dist_error(rank: usize, op: &str) -> Error {
    Error::Distributed { rank, op: op.to_string(), message: explain(last_error()) }
}
