// torch.distributed's engine (c10d) for byol-torch: a TCPStore rendezvous
// and the process group over it, with the collectives data-parallel training
// needs (bucketed gradient all-reduce, coalesced broadcast, barrier).
//
// As `init_process_group(backend=None)` does, a group holds Gloo for CPU
// tensors and, when asked, NCCL for CUDA tensors; each collective goes to the
// backend of its tensors' device. Gloo is made through its own header (gloo's
// headers are vendored in third_party/gloo: the wheel does not ship them).
// NCCL lives in libbyol_nccl.so (nccl.cpp), which only a host with CUDA
// loads: it is found here by name, never linked. Every failure is caught and
// kept for byol_last_error with the rank and the operation in front;
// exceptions never cross into Rust.
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <atomic>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "../shim.h"
#include "../version.h"

namespace {

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> gloo;
  // Null unless the group was made with NCCL for CUDA tensors.
  c10::intrusive_ptr<c10d::Backend> nccl;
  int rank;
  int size;
  std::chrono::milliseconds timeout;
  bool serves_store;
};

// Where this process runs, as "host pid": each rank leaves it in the store so
// that, when a collective fails, the others can tell which rank has gone.
std::string whereabouts() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return std::string(host) + " " + std::to_string(static_cast<long>(getpid()));
}

std::string pid_key(int rank) { return "byol/pid/" + std::to_string(rank); }

// How long a failed collective waits to learn from the store which rank went.
constexpr std::chrono::milliseconds kSuspectsWait(4000);

// Keeps the message of `e` with the step that failed in front.
void fail(const char* step, const std::exception& e) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  remember(std::runtime_error(std::string(step) + ": " + (c10 ? c10->what_without_backtrace() : e.what())));
}

c10::intrusive_ptr<c10d::Backend> new_gloo(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                           std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create_default(timeout);
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}

// libbyol_nccl.so's entry point (nccl.cpp), null where it is not loaded.
using NcclNew = c10d::Backend* (*)(const void* store, int rank, int size, int64_t timeout_ms, char* error, size_t len);
NcclNew nccl_entry() { return reinterpret_cast<NcclNew>(dlsym(RTLD_DEFAULT, "byol_nccl_backend_new")); }

// NCCL over its own namespace of `store`, as init_process_group gives each
// device's backend a PrefixStore of the device's name.
c10::intrusive_ptr<c10d::Backend> new_nccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                           std::chrono::milliseconds timeout) {
  auto make = nccl_entry();
  if (make == nullptr) {
    throw std::runtime_error(
        "byol-torch's NCCL library (libbyol_nccl.so, beside the addon) is not loaded: it is loaded with libtorch_cuda "
        "on a host with a CUDA driver");
  }
  c10::intrusive_ptr<c10d::Store> prefixed = c10::make_intrusive<c10d::PrefixStore>("cuda/", store);
  char error[1024] = {0};
  c10d::Backend* backend = make(&prefixed, rank, size, timeout.count(), error, sizeof(error));
  if (backend == nullptr) throw std::runtime_error(error);
  return c10::intrusive_ptr<c10d::Backend>::reclaim(backend);
}

// The backend that serves tensors on `t`'s device.
c10d::Backend& backend_for(Group* g, const at::Tensor& t) { return t.is_cuda() && g->nccl ? *g->nccl : *g->gloo; }

// Waits for every piece of work, then rethrows the first failure.
void wait_all(std::vector<c10::intrusive_ptr<c10d::Work>>& works, std::chrono::milliseconds timeout) {
  for (auto& w : works) {
    w->wait(timeout);
  }
}

// Tensors grouped into flat buffers of one dtype and device each, at most
// `bucket_bytes` per buffer (one tensor may exceed it alone).
std::vector<std::vector<size_t>> buckets(const at::Tensor* const* ts, size_t n, int64_t bucket_bytes) {
  std::vector<std::vector<size_t>> out;
  std::map<std::pair<int, std::string>, size_t> open;
  std::vector<int64_t> filled;
  for (size_t i = 0; i < n; ++i) {
    const at::Tensor& t = *ts[i];
    auto key = std::make_pair(static_cast<int>(t.scalar_type()), t.device().str());
    auto it = open.find(key);
    const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
    if (it == open.end() || (filled[it->second] > 0 && filled[it->second] + bytes > bucket_bytes)) {
      out.emplace_back();
      filled.push_back(0);
      it = open.insert_or_assign(key, out.size() - 1).first;
    }
    out[it->second].push_back(i);
    filled[it->second] += bytes;
  }
  return out;
}

at::Tensor flatten(const at::Tensor* const* ts, const std::vector<size_t>& index) {
  std::vector<at::Tensor> parts;
  parts.reserve(index.size());
  for (size_t i : index) {
    parts.push_back(ts[i]->reshape({-1}));
  }
  return at::cat(parts);
}

void unflatten(const at::Tensor& flat, const at::Tensor* const* ts, const std::vector<size_t>& index) {
  int64_t offset = 0;
  for (size_t i : index) {
    at::Tensor t = *ts[i];
    const int64_t n = t.numel();
    t.copy_(flat.narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

// Starts the SUM all-reduce of `t` in place.
c10::intrusive_ptr<c10d::Work> start_sum(Group* g, at::Tensor& t) {
  std::vector<at::Tensor> one{t};
  c10d::AllreduceOptions options;
  options.timeout = g->timeout;
  return backend_for(g, t).allreduce(one, options);
}

void allreduce_sum_(Group* g, at::Tensor& t) { start_sum(g, t)->wait(g->timeout); }

// DDP's bucket: the tensors `index` of `ts` copied into one flat buffer,
// each multiplied by 1/size, and its SUM all-reduce started.
std::pair<at::Tensor, c10::intrusive_ptr<c10d::Work>> start_mean(Group* g, const at::Tensor* const* ts, const std::vector<size_t>& index) {
  at::NoGradGuard no_grad;
  at::Tensor flat = flatten(ts, index).mul_(1.0 / static_cast<double>(g->size));
  auto work = start_sum(g, flat);
  return {flat, work};
}

// torch.distributed.nn.functional.all_reduce: the sum over the ranks, whose
// gradient is again the sum over the ranks of the gradients. SyncBatchNorm's
// statistics go through it, so that autograd differentiates the batch
// statistics of all ranks.
struct AllReduceSum : public torch::autograd::Function<AllReduceSum> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    at::Tensor y = x.contiguous().clone();
    allreduce_sum_(reinterpret_cast<Group*>(group), y);
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    at::Tensor g = grads[0].contiguous().clone();
    allreduce_sum_(reinterpret_cast<Group*>(ctx->saved_data["group"].toInt()), g);
    return {g, at::Tensor()};
  }
};

// Whether a process of this host has exited. A killed rank closes its
// sockets before it is reaped, so the peers' read errors can come while it is
// still a zombie (or still exiting): both count as gone, and a process that
// looks alive is watched until `deadline` (one for all peers) before it is
// believed.
bool exited(pid_t pid, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (stat && std::getline(stat, line)) {
      const auto close = line.rfind(')');
      if (close != std::string::npos && close + 2 < line.size()) {
        const char state = line[close + 2];
        if (state == 'Z' || state == 'X' || state == 'x') return true;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

extern "C" {

// The differentiable sum of `x` over the ranks (AllReduceSum); null on
// failure (see byol_last_error).
at::Tensor* byol_dist_allreduce_sum_autograd(void* group, const at::Tensor* x) {
  try {
    return new at::Tensor(AllReduceSum::apply(*x, reinterpret_cast<int64_t>(group)));
  } catch (const std::exception& e) {
    remember(e);
    return nullptr;
  }
}


// Joins the group of `size` processes over the TCPStore at host:port
// (MASTER_ADDR, MASTER_PORT), served by rank 0 when `serve` (else by a
// launcher, as torchrun's agent does), with every key under `prefix` when it
// is not empty; and makes a Gloo process group over it, and an NCCL one for
// CUDA tensors when `nccl`. `rendezvous_ms` bounds the wait for every rank to
// arrive; `timeout_ms` every collective. Returns the group, or null (see
// byol_last_error).
void* byol_dist_new(const char* host, int port, int rank, int size, int serve, const char* prefix, int64_t rendezvous_ms,
                    int64_t timeout_ms, int nccl) {
  const char* step = "the TCPStore rendezvous";
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(port);
    options.isServer = serve != 0;
    options.numWorkers = static_cast<size_t>(size);
    options.waitWorkers = true;
    options.timeout = std::chrono::milliseconds(rendezvous_ms);
    c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(std::string(host), options);
    if (prefix[0] != '\0') {
      store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), store);
    }
    step = "making the Gloo process group";
    auto gloo = new_gloo(store, rank, size, std::chrono::milliseconds(timeout_ms));
    c10::intrusive_ptr<c10d::Backend> nccl_backend;
    if (nccl != 0) {
      step = "making the NCCL process group";
      nccl_backend = new_nccl(store, rank, size, std::chrono::milliseconds(timeout_ms));
    }
    step = "recording this process in the store";
    const std::string here = whereabouts();
    store->set(pid_key(rank), std::vector<uint8_t>(here.begin(), here.end()));
    return new Group{store, gloo, nccl_backend, rank, size, std::chrono::milliseconds(timeout_ms), serve != 0};
  } catch (const std::exception& e) {
    fail(step, e);
    return nullptr;
  }
}

void byol_dist_free(void* group) { delete static_cast<Group*>(group); }

// Whether libbyol_nccl.so is loaded, so that a group can have NCCL.
int byol_dist_nccl_loaded() { return nccl_entry() != nullptr ? 1 : 0; }

// After a failed collective: which ranks are gone, in words, into `out`
// (empty when none can be named). A rank on this host whose process no
// longer exists is named; when the store itself no longer answers, its
// server is (rank 0, or the launcher's agent). The store is asked on a
// thread of its own, waited for at most kSuspectsWait: a TCPStore client
// whose server's host was cut off blocks in recv() without end, and a rank
// must fail within its collective timeout, not hang with the network.
void byol_dist_suspects(void* group, char* out, size_t len) {
  auto* g = static_cast<Group*>(group);
  const bool client = !g->serves_store && g->rank != 0;
  // Polled rather than a std::future or a timed condition variable: those
  // would import symbols of libstdc++ 3.4.29 and glibc 2.30, newer than the
  // glibc 2.28 and GCC 8 the addon loads on.
  struct Answer {
    std::mutex lock;
    std::string said;
    std::atomic<bool> ready{false};
  };
  auto answer = std::make_shared<Answer>();
  auto ask = [store = g->store, rank = g->rank, size = g->size, client]() -> std::string {
    try {
      store->setTimeout(std::chrono::milliseconds(2000));
      std::string here = whereabouts();
      std::string host = here.substr(0, here.find(' '));
      std::vector<int> gone;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
      for (int r = 0; r < size; ++r) {
        if (r == rank || !store->check({pid_key(r)})) continue;
        auto v = store->get(pid_key(r));
        std::string there(v.begin(), v.end());
        auto space = there.find(' ');
        if (space == std::string::npos || there.substr(0, space) != host) continue;
        const long pid = std::stol(there.substr(space + 1));
        if (exited(static_cast<pid_t>(pid), deadline)) gone.push_back(r);
      }
      std::string said;
      for (size_t i = 0; i < gone.size(); ++i) said += (i ? ", " : "") + std::to_string(gone[i]);
      if (!said.empty()) said = (gone.size() == 1 ? "rank " : "ranks ") + said + (gone.size() == 1 ? " has" : " have") + " exited";
      return said;
    } catch (const std::exception&) {
      return client ? "the rendezvous store no longer answers: rank 0 (or the launcher serving it) has exited" : "";
    }
  };
  // Detached: where the store's host is unreachable the thread stays blocked
  // until the process ends, holding its own reference to the store.
  std::thread([ask, answer] {
    std::string said = ask();
    std::lock_guard<std::mutex> hold(answer->lock);
    answer->said = std::move(said);
    answer->ready = true;
  }).detach();
  const auto deadline = std::chrono::steady_clock::now() + kSuspectsWait;
  while (!answer->ready && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string said;
  if (answer->ready) {
    std::lock_guard<std::mutex> hold(answer->lock);
    said = answer->said;
  } else if (client) {
    said = "the host of rank 0, which serves the rendezvous store, no longer answers: the network to it is cut, or it "
           "stopped";
  }
  if (said.empty() && g->size == 2) said = "lost rank " + std::to_string(1 - g->rank) + ", the other one";
  std::snprintf(out, len, "%s", said.c_str());
}

// DistributedDataParallel's gradient reduction: each tensor multiplied by
// 1/size while copied into a flat bucket, the buckets all-reduced with SUM
// (all in flight at once), and the averages copied back. Returns 0 or -1.
int byol_dist_allreduce_mean(void* group, const at::Tensor* const* ts, size_t n, int64_t bucket_bytes) {
  auto* g = static_cast<Group*>(group);
  try {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < n; ++i) {
      if (!ts[i]->defined()) throw std::invalid_argument("tensor " + std::to_string(i) + " of " + std::to_string(n) + " has no value");
    }
    auto plan = buckets(ts, n, bucket_bytes);
    std::vector<at::Tensor> flats;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (const auto& index : plan) {
      auto [flat, work] = start_mean(g, ts, index);
      flats.push_back(flat);
      works.push_back(work);
    }
    wait_all(works, g->timeout);
    for (size_t b = 0; b < plan.size(); ++b) {
      unflatten(flats[b], ts, plan[b]);
    }
    return 0;
  } catch (const std::exception& e) {
    remember(e);
    return -1;
  }
}

// DistributedDataParallel's backward: the gradients of `loss` with respect
// to `params`, averaged over the ranks, with each bucket's all-reduce started
// by a hook as soon as backward has produced its last gradient, so that
// communication overlaps the rest of backward. Buckets are filled in reverse
// parameter order (the order backward produces them), as DDP's are. `extra`
// (null, or one tensor per parameter): gradients summed over earlier
// micro-batches, added before the reduction. Writes one new tensor handle per
// parameter to `out` (views of the reduced buckets). Returns 0 or -1.
int byol_dist_backward_mean(void* group, const at::Tensor* loss, const at::Tensor* const* params, size_t n,
                            const at::Tensor* const* extra, int64_t bucket_bytes, at::Tensor** out) {
  auto* g = static_cast<Group*>(group);
  std::vector<std::pair<at::Tensor, unsigned>> hooks;
  auto remove_hooks = [&hooks] {
    for (auto& [t, h] : hooks) t.remove_hook(h);
    hooks.clear();
  };
  try {
    std::vector<const at::Tensor*> reversed(params, params + n);
    std::reverse(reversed.begin(), reversed.end());
    const auto plan = buckets(reversed.data(), n, bucket_bytes);
    // Parameter i is reversed[n - 1 - i]; its bucket, and what backward has
    // produced so far, in the same reversed order as the plan.
    std::vector<size_t> bucket_of(n);
    for (size_t b = 0; b < plan.size(); ++b) {
      for (size_t j : plan[b]) bucket_of[j] = b;
    }
    std::vector<size_t> pending(plan.size());
    for (size_t b = 0; b < plan.size(); ++b) pending[b] = plan[b].size();
    std::vector<at::Tensor> ready(n);
    std::vector<const at::Tensor*> ready_ptrs(n);
    for (size_t j = 0; j < n; ++j) ready_ptrs[j] = &ready[j];
    std::vector<at::Tensor> flats(plan.size());
    std::vector<c10::intrusive_ptr<c10d::Work>> works(plan.size());
    auto produced = [&](size_t i, const at::Tensor& grad) {
      at::NoGradGuard no_grad;
      const size_t j = n - 1 - i;
      ready[j] = extra ? grad + *extra[i] : grad;
      const size_t b = bucket_of[j];
      if (--pending[b] == 0) std::tie(flats[b], works[b]) = start_mean(g, ready_ptrs.data(), plan[b]);
    };
    std::vector<at::Tensor> inputs;
    for (size_t i = 0; i < n; ++i) {
      at::Tensor p = *params[i];
      hooks.emplace_back(p, p.register_hook([&produced, i](const at::Tensor& grad) { produced(i, grad); }));
      inputs.push_back(p);
    }
    auto grads = torch::autograd::grad({*loss}, inputs, {}, false, false, false);
    remove_hooks();
    // Gradients no hook saw (none, unless a backend skips tensor hooks).
    for (size_t i = 0; i < n; ++i) {
      if (!ready[n - 1 - i].defined()) produced(i, grads[i]);
    }
    wait_all(works, g->timeout);
    for (size_t b = 0; b < plan.size(); ++b) {
      int64_t offset = 0;
      for (size_t j : plan[b]) {
        const at::Tensor& p = *reversed[j];
        out[n - 1 - j] = new at::Tensor(flats[b].narrow(0, offset, p.numel()).view(p.sizes()));
        offset += p.numel();
      }
    }
    return 0;
  } catch (const std::exception& e) {
    remove_hooks();
    remember(e);
    return -1;
  }
}

// Every tensor set to `root`'s, one flat buffer per dtype. Returns 0 or -1.
int byol_dist_broadcast(void* group, const at::Tensor* const* ts, size_t n, int root) {
  auto* g = static_cast<Group*>(group);
  try {
    at::NoGradGuard no_grad;
    auto plan = buckets(ts, n, INT64_MAX);
    for (const auto& index : plan) {
      at::Tensor flat = flatten(ts, index);
      std::vector<at::Tensor> one{flat};
      c10d::BroadcastOptions options;
      options.rootRank = root;
      options.timeout = g->timeout;
      auto work = backend_for(g, flat).broadcast(one, options);
      work->wait(g->timeout);
      if (g->rank != root) {
        unflatten(flat, ts, index);
      }
    }
    return 0;
  } catch (const std::exception& e) {
    remember(e);
    return -1;
  }
}

// Waits until every rank arrives, for at most `timeout_ms` (the group's
// timeout when negative). Returns 0 or -1.
int byol_dist_barrier(void* group, int64_t timeout_ms) {
  auto* g = static_cast<Group*>(group);
  try {
    c10d::BarrierOptions options;
    options.timeout = timeout_ms < 0 ? g->timeout : std::chrono::milliseconds(timeout_ms);
    auto work = g->gloo->barrier(options);
    work->wait(options.timeout);
    return 0;
  } catch (const std::exception& e) {
    remember(e);
    return -1;
  }
}

}  // extern "C"
