// helico's libtorch shim: the ATen entry points tch 0.24 does not bind (rust_ecosystem.md §1.3,
// §1.10). Compiled by build.rs with `cc` against libtorch's headers only: no CUDA headers, so
// the same object builds on a CPU machine, where the CUDA-only ops report an error instead.
//
// Conventions: every function returns 0 on success and -1 on a C++ exception, whose message
// `hs_last_error` returns (thread-local, valid until the next failing call). Tensors cross as
// `at::Tensor*` (torch-sys's `C_tensor`); results are heap-allocated `at::Tensor`s that the
// Rust side owns (tch's `Tensor::from_ptr`, whose Drop deletes them). A null input pointer
// means "absent" where the ATen argument is optional.

#include <ATen/DeviceAccelerator.h>
#include <ATen/core/Tensor.h>
#include <ATen/autocast_mode.h>
#include <ATen/ops/_efficient_attention_backward.h>
#include <ATen/ops/_efficient_attention_forward.h>
#include <ATen/ops/_flash_attention_backward.h>
#include <ATen/ops/_flash_attention_forward.h>
#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_norm.h>
#include <ATen/ops/_fused_adamw.h>
#include <ATen/ops/_scaled_dot_product_attention_math.h>
#include <ATen/ops/_scaled_dot_product_cudnn_attention.h>
#include <ATen/ops/_scaled_dot_product_efficient_attention.h>
#include <ATen/ops/_scaled_dot_product_flash_attention.h>
#include <ATen/ops/clamp_max.h>
#include <ATen/ops/linalg_vector_norm.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros_like.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mul.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <dirent.h>
#include <dlfcn.h>
#include <link.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

static thread_local std::string g_err;

#define GUARD(...)                           \
  try {                                      \
    __VA_ARGS__                              \
  } catch (const std::exception& e) {        \
    g_err = e.what();                        \
    return -1;                               \
  }                                          \
  return 0;

static std::optional<at::Tensor> opt(at::Tensor* t) {
  return t ? std::optional<at::Tensor>(*t) : std::nullopt;
}

static at::Tensor* own(at::Tensor t) { return new at::Tensor(std::move(t)); }

static std::vector<at::Tensor> list(at::Tensor** ts, int64_t n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int64_t i = 0; i < n; i++) v.push_back(*ts[i]);
  return v;
}

// A mask as the fused kernels take it: additive (a boolean one, true = attend, becomes 0 where
// attended and -inf elsewhere) in q's dtype, expanded to [B, H, L_q, L_k] with stride-0
// broadcast dimensions (the kernels index the bias by its strides and do not broadcast).
static std::optional<at::Tensor> additive(at::Tensor* mask, const at::Tensor& q, const at::Tensor& k) {
  if (!mask) return std::nullopt;
  at::Tensor bias = *mask;
  if (bias.scalar_type() == at::kBool) {
    bias = at::zeros_like(*mask, q.options()).masked_fill(mask->logical_not(), -std::numeric_limits<double>::infinity());
  }
  return bias.expand({q.size(0), q.size(1), q.size(2), k.size(2)});
}

// ---------------------------------------------------------------------------------------------
// Fused kernels compiled at run time with NVRTC and launched through the CUDA driver API on
// libtorch's current stream. No CUDA header is needed: NVRTC and the driver are the libraries
// libtorch itself loads (its NVRTC stub, `libcaffe2_nvrtc.so`, pulls in `libnvrtc`), found in
// the process and called through the few prototypes declared here. Where any of this fails (no
// GPU, an NVRTC that cannot target the device), the callers use ATen ops instead.

namespace jit {

using CUresult = int;
using CUdevice = int;
using CUcontext = void*;
using CUmodule = void*;
using CUfunction = void*;
using nvrtcProgram = void*;

struct Api {
  int (*nvrtcCreateProgram)(nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*);
  int (*nvrtcCompileProgram)(nvrtcProgram, int, const char* const*);
  int (*nvrtcGetProgramLogSize)(nvrtcProgram, size_t*);
  int (*nvrtcGetProgramLog)(nvrtcProgram, char*);
  int (*nvrtcGetCUBINSize)(nvrtcProgram, size_t*);
  int (*nvrtcGetCUBIN)(nvrtcProgram, char*);
  int (*nvrtcDestroyProgram)(nvrtcProgram*);
  CUresult (*cuDeviceGet)(CUdevice*, int);
  CUresult (*cuDeviceGetAttribute)(int*, int, CUdevice);
  CUresult (*cuCtxGetCurrent)(CUcontext*);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice);
  CUresult (*cuModuleLoadData)(CUmodule*, const void*);
  CUresult (*cuModuleGetFunction)(CUfunction*, CUmodule, const char*);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*,
                             void**, void**);
};

// CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR (cuda.h).
constexpr int kCcMajor = 75, kCcMinor = 76;

// The path of the first loaded library whose file name contains `what`, or "".
static std::string loaded(const char* what) {
  struct Search {
    const char* what;
    std::string path;
  } search{what, ""};
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        auto* s = static_cast<Search*>(data);
        if (info->dlpi_name && std::strstr(info->dlpi_name, s->what)) {
          s->path = info->dlpi_name;
          return 1;
        }
        return 0;
      },
      &search);
  return search.path;
}

static std::string dir_of(const std::string& path) { return path.substr(0, path.rfind('/')); }

static void preload_builtins(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("libnvrtc-builtins.so", 0) == 0) {
      dlopen((dir + "/" + name).c_str(), RTLD_NOW | RTLD_GLOBAL);
      break;
    }
  }
  closedir(d);
}

// The NVRTC and driver functions, resolved once; throws with the reason if they are not there.
static const Api& api() {
  static std::once_flag once;
  static Api a{};
  static std::string failed;
  std::call_once(once, [] {
    try {
      // libtorch's NVRTC stub sits beside libtorch_cuda and finds libnvrtc (and the driver)
      // through its own rpath; libtorch loads it lazily, so it may not be in yet.
      std::string torch_cuda = loaded("libtorch_cuda.so");
      if (torch_cuda.empty()) throw std::runtime_error("libtorch_cuda is not loaded");
      std::string stub = dir_of(torch_cuda) + "/libcaffe2_nvrtc.so";
      if (!dlopen(stub.c_str(), RTLD_NOW | RTLD_LOCAL)) throw std::runtime_error(std::string(dlerror()));
      std::string path = loaded("libnvrtc.so");
      void* nvrtc = path.empty() ? nullptr : dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
      // NVRTC opens its builtins library by bare name when it compiles; from a wheel that is
      // not on the search path, so it is loaded here, by full path, from NVRTC's directory.
      if (nvrtc) preload_builtins(dir_of(path));
      void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
      if (!nvrtc || !cuda) throw std::runtime_error(nvrtc ? "libcuda.so.1 is not loaded" : "libnvrtc is not loaded");
      auto get = [](void* lib, const char* name) {
        void* f = dlsym(lib, name);
        if (!f) throw std::runtime_error(std::string(name) + " not found");
        return f;
      };
#define HS_NVRTC(name) a.name = reinterpret_cast<decltype(a.name)>(get(nvrtc, #name))
#define HS_CU(name, symbol) a.name = reinterpret_cast<decltype(a.name)>(get(cuda, symbol))
      HS_NVRTC(nvrtcCreateProgram);
      HS_NVRTC(nvrtcCompileProgram);
      HS_NVRTC(nvrtcGetProgramLogSize);
      HS_NVRTC(nvrtcGetProgramLog);
      HS_NVRTC(nvrtcGetCUBINSize);
      HS_NVRTC(nvrtcGetCUBIN);
      HS_NVRTC(nvrtcDestroyProgram);
      HS_CU(cuDeviceGet, "cuDeviceGet");
      HS_CU(cuDeviceGetAttribute, "cuDeviceGetAttribute");
      HS_CU(cuCtxGetCurrent, "cuCtxGetCurrent");
      HS_CU(cuCtxSetCurrent, "cuCtxSetCurrent");
      HS_CU(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
      HS_CU(cuModuleLoadData, "cuModuleLoadData");
      HS_CU(cuModuleGetFunction, "cuModuleGetFunction");
      HS_CU(cuLaunchKernel, "cuLaunchKernel");
#undef HS_NVRTC
#undef HS_CU
    } catch (const std::exception& e) {
      failed = e.what();
    }
  });
  if (!failed.empty()) throw std::runtime_error("NVRTC or the CUDA driver is unavailable: " + failed);
  return a;
}

static void cu_check(CUresult r, const char* what) {
  if (r != 0) throw std::runtime_error(std::string(what) + " failed with CUresult " + std::to_string(r));
}

// Makes the device's primary context current (libtorch's), as the driver calls need.
static void bind_context(int device) {
  const Api& a = api();
  CUcontext ctx = nullptr;
  cu_check(a.cuCtxGetCurrent(&ctx), "cuCtxGetCurrent");
  if (ctx) return;
  CUdevice dev;
  cu_check(a.cuDeviceGet(&dev, device), "cuDeviceGet");
  cu_check(a.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
  cu_check(a.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
}

// `name` from `source`, compiled for `device`'s architecture once per process and device.
static CUfunction function(const char* source, const char* name, int device) {
  static std::mutex mutex;
  static std::map<std::pair<std::string, int>, CUfunction> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_pair(std::string(name), device);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const Api& a = api();
  bind_context(device);
  CUdevice dev;
  int major = 0, minor = 0;
  cu_check(a.cuDeviceGet(&dev, device), "cuDeviceGet");
  cu_check(a.cuDeviceGetAttribute(&major, kCcMajor, dev), "cuDeviceGetAttribute");
  cu_check(a.cuDeviceGetAttribute(&minor, kCcMinor, dev), "cuDeviceGetAttribute");
  std::string arch = "--gpu-architecture=sm_" + std::to_string(major) + std::to_string(minor);
  const char* options[] = {arch.c_str(), "--std=c++17", "-default-device"};
  nvrtcProgram prog;
  if (a.nvrtcCreateProgram(&prog, source, name, 0, nullptr, nullptr) != 0)
    throw std::runtime_error("nvrtcCreateProgram failed");
  int status = a.nvrtcCompileProgram(prog, 3, options);
  if (status != 0) {
    size_t size = 0;
    a.nvrtcGetProgramLogSize(prog, &size);
    std::string log(size, '\0');
    a.nvrtcGetProgramLog(prog, log.data());
    a.nvrtcDestroyProgram(&prog);
    throw std::runtime_error("NVRTC cannot compile " + std::string(name) + " for " + arch + ": " + log);
  }
  size_t size = 0;
  a.nvrtcGetCUBINSize(prog, &size);
  std::string cubin(size, '\0');
  a.nvrtcGetCUBIN(prog, cubin.data());
  a.nvrtcDestroyProgram(&prog);
  CUmodule module;
  CUfunction f;
  cu_check(a.cuModuleLoadData(&module, cubin.data()), "cuModuleLoadData");
  cu_check(a.cuModuleGetFunction(&f, module, name), "cuModuleGetFunction");
  cache[key] = f;
  return f;
}

static void launch(CUfunction f, unsigned grid, unsigned block, int device, void** args) {
  void* stream = at::accelerator::getCurrentStream(static_cast<c10::DeviceIndex>(device)).native_handle();
  cu_check(api().cuLaunchKernel(f, grid, 1, 1, block, 1, 1, 0, stream, args, nullptr), "cuLaunchKernel");
}

}  // namespace jit

// Rotary embedding of bf16 rows, one thread per 8 pairs: 16-byte loads of x1, x2, cos and
// sin, fp32 arithmetic, one rounding to bf16 (round to nearest even, as c10::BFloat16).
// x row r = (token t, head row g) starts at x + t·token_stride + g·row_stride; out and the
// [N, half] tables are contiguous. sign = −1 rotates back (the backward).
static const char* kRopeSource = R"(
typedef unsigned short bf16;
union Pack { uint4 v; bf16 h[8]; };
__device__ __forceinline__ float widen(bf16 u) { return __uint_as_float(((unsigned int)u) << 16); }
__device__ __forceinline__ bf16 narrow(float f) {
  unsigned int u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (bf16)(u >> 16);
}
extern "C" __global__ void helico_rope_bf16(const bf16* __restrict__ x, bf16* __restrict__ out,
    const bf16* __restrict__ cos, const bf16* __restrict__ sin, long long rows, int rows_per_token,
    long long token_stride, long long row_stride, int half, float sign) {
  const int chunks = half / 8;
  long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= rows * chunks) return;
  long long r = idx / chunks;
  int i = (int)(idx % chunks) * 8;
  long long t = r / rows_per_token;
  const bf16* xr = x + t * token_stride + (r % rows_per_token) * row_stride;
  Pack a, b, c, s, o1, o2;
  a.v = *reinterpret_cast<const uint4*>(xr + i);
  b.v = *reinterpret_cast<const uint4*>(xr + half + i);
  c.v = *reinterpret_cast<const uint4*>(cos + t * half + i);
  s.v = *reinterpret_cast<const uint4*>(sin + t * half + i);
#pragma unroll
  for (int k = 0; k < 8; k++) {
    float x1 = widen(a.h[k]), x2 = widen(b.h[k]), ck = widen(c.h[k]), sk = sign * widen(s.h[k]);
    o1.h[k] = narrow(x1 * ck - x2 * sk);
    o2.h[k] = narrow(x2 * ck + x1 * sk);
  }
  bf16* orow = out + r * 2 * half;
  *reinterpret_cast<uint4*>(orow + i) = o1.v;
  *reinterpret_cast<uint4*>(orow + half + i) = o2.v;
}
)";

// The fused kernel where it applies (bf16 on a GPU, halves in multiples of 8, rows 16-byte
// aligned, cos/sin per token and broadcast over the rows of a token); false otherwise.
static bool rope_fused(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, double s, at::Tensor& out) {
  if (!x.is_cuda() || x.scalar_type() != at::kBFloat16 || cos.scalar_type() != at::kBFloat16 ||
      sin.scalar_type() != at::kBFloat16 || cos.sizes() != sin.sizes() || cos.dim() != x.dim() || x.dim() < 2)
    return false;
  const int64_t dims = x.dim(), half = x.size(-1) / 2;
  if (x.size(-1) % 16 != 0 || cos.size(-1) != half || x.stride(-1) != 1) return false;
  // Token dims [0, k): the tables match x there. Row dims [k, dims − 1): the tables are 1.
  int64_t k = 0;
  while (k < dims - 1 && cos.size(k) == x.size(k) && x.size(k) != 1) k++;
  for (int64_t d = k; d < dims - 1; d++)
    if (cos.size(d) != 1) return false;
  // Each group must collapse to one stride (x a [tokens, rows per token, Dh] view).
  auto collapses = [&](int64_t from, int64_t to) {
    for (int64_t d = from; d + 1 < to; d++)
      if (x.stride(d) != x.stride(d + 1) * x.size(d + 1)) return false;
    return true;
  };
  if (!collapses(0, k) || !collapses(k, dims - 1)) return false;
  int64_t tokens = 1, per_token = 1;
  for (int64_t d = 0; d < k; d++) tokens *= x.size(d);
  for (int64_t d = k; d < dims - 1; d++) per_token *= x.size(d);
  long long token_stride = k > 0 ? x.stride(k - 1) : 0, row_stride = k < dims - 1 ? x.stride(dims - 2) : 0;
  at::Tensor c = cos.contiguous(), si = sin.contiguous();
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (token_stride % 8 != 0 || row_stride % 8 != 0 || !aligned(x.data_ptr()) || !aligned(c.data_ptr()) ||
      !aligned(si.data_ptr()))
    return false;
  out = at::empty(x.sizes(), x.options());
  if (out.numel() == 0) return true;
  const int device = x.get_device();
  jit::CUfunction f = jit::function(kRopeSource, "helico_rope_bf16", device);
  const void* xp = x.data_ptr();
  void* op = out.data_ptr();
  const void* cp = c.data_ptr();
  const void* sp = si.data_ptr();
  long long rows = tokens * per_token;
  int rows_per_token = static_cast<int>(per_token), h = static_cast<int>(half);
  float sign = static_cast<float>(s);
  void* args[] = {&xp, &op, &cp, &sp, &rows, &rows_per_token, &token_stride, &row_stride, &h, &sign};
  const unsigned block = 256;
  const long long threads = rows * (half / 8);
  jit::launch(f, static_cast<unsigned>((threads + block - 1) / block), block, device, args);
  return true;
}

// Rotary position embedding, rotate-half layout: (x1, x2) ↦ (x1·cos − s·x2·sin, x2·cos +
// s·x1·sin) over the two halves of the last axis, into one new tensor. On a GPU in bf16 one
// fused kernel reads x once and writes the result once; elsewhere four strided ATen kernels,
// with nothing materialised. Either beats the rotate-half formulation with a swapped copy,
// which costs a roll or a concatenation and, in its autograd backward, as many again. The
// backward is the same rotation with s = −1.
static at::Tensor rotate_half(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, double s) {
  at::Tensor out;
  // Once the kernel failed (no NVRTC, a compile error), it is not tried again.
  static std::atomic<bool> broken{false};
  if (x.is_cuda() && !broken.load()) {
    try {
      if (rope_fused(x, cos, sin, s, out)) return out;
    } catch (const std::exception& e) {
      if (!broken.exchange(true))
        std::fprintf(stderr, "note: helico's fused RoPE kernel cannot run (%s); using ATen kernels\n", e.what());
    }
  }
  const int64_t half = x.size(-1) / 2;
  out = at::empty(x.sizes(), x.options());
  at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  at::Tensor o1 = out.narrow(-1, 0, half), o2 = out.narrow(-1, half, half);
  at::mul_out(o1, x1, cos);
  at::mul_out(o2, x2, cos);
  o1.addcmul_(x2, sin, -s);
  o2.addcmul_(x1, sin, s);
  return out;
}

struct Rope : public torch::autograd::Function<Rope> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return rotate_half(x, cos, sin, 1.0);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    return {rotate_half(grads[0], saved[0], saved[1], -1.0), at::Tensor(), at::Tensor()};
  }
};

// Gradient buckets reduced while backward runs (what PyTorch DDP's Reducer does). A hook after
// each parameter's AccumulateGrad node counts the bucket's gradients down; when a bucket is
// complete it is copied into one fp32 buffer and handed to `reduce` (NCCL in helico) on the
// thread and stream the backward runs on, so the collective overlaps the rest of backward.
// Buckets are launched in index order whatever order they complete in, so every rank issues
// the same collectives in the same order. Only an armed backward reduces; `finish` then
// launches what is left (parameters that got no gradient), and writes the sums back.
typedef int (*hs_reduce_fn)(void* ctx, at::Tensor* flat, int64_t bucket);

struct GradReducer {
  std::mutex mu;
  std::vector<at::Tensor> params;
  std::vector<int64_t> bucket_of;
  std::vector<std::vector<int64_t>> buckets;
  std::vector<int64_t> missing;  // per bucket: gradients not yet accumulated in this backward
  std::vector<bool> seen;        // per parameter: accumulated in this backward
  std::vector<at::Tensor> flats;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> hooks;
  int64_t next = 0;  // the next bucket to launch
  int64_t launched_in_backward = 0;
  bool armed = false;
  hs_reduce_fn reduce = nullptr;
  void* ctx = nullptr;
  std::string error;

  void reset() {
    next = 0;
    launched_in_backward = 0;
    for (size_t b = 0; b < buckets.size(); b++) missing[b] = static_cast<int64_t>(buckets[b].size());
    std::fill(seen.begin(), seen.end(), false);
    error.clear();
  }

  void launch(int64_t b) {
    if (!error.empty()) return;
    try {
      at::NoGradGuard no_grad;
      if (!flats[b].defined()) {
        int64_t n = 0;
        for (auto i : buckets[b]) n += params[i].numel();
        flats[b] = at::empty({n}, params[buckets[b][0]].options().dtype(at::kFloat));
      }
      int64_t offset = 0;
      for (auto i : buckets[b]) {
        auto slice = flats[b].narrow(0, offset, params[i].numel());
        const auto& g = params[i].grad();
        if (g.defined()) {
          slice.copy_(g.reshape({-1}));
        } else {
          slice.zero_();
        }
        offset += params[i].numel();
      }
      if (reduce(ctx, own(flats[b]), b) != 0) error = "the reduction of bucket " + std::to_string(b) + " failed";
    } catch (const std::exception& e) {
      error = e.what();
    }
  }

  // Called by the hook of parameter i, on the backward's thread.
  void ready(int64_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed || seen[i]) return;
    seen[i] = true;
    missing[bucket_of[i]]--;
    while (next < static_cast<int64_t>(buckets.size()) && missing[next] == 0) {
      launch(next++);
      launched_in_backward++;
    }
  }

  // After the step's last backward: an unarmed backward launched nothing, so everything goes now.
  void finish() {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed) reset();
    while (next < static_cast<int64_t>(buckets.size())) launch(next++);
    armed = false;
    if (!error.empty()) return;
    at::NoGradGuard no_grad;
    for (size_t b = 0; b < buckets.size(); b++) {
      int64_t offset = 0;
      for (auto i : buckets[b]) {
        auto& p = params[i];
        auto sum = flats[b].narrow(0, offset, p.numel()).view(p.sizes());
        if (p.grad().defined()) {
          p.mutable_grad().copy_(sum);
        } else {
          p.mutable_grad() = sum.to(p.scalar_type(), /*non_blocking=*/false, /*copy=*/true);
        }
        offset += p.numel();
      }
    }
  }
};

struct ReadyHook : torch::autograd::FunctionPostHook {
  GradReducer* reducer;
  int64_t index;
  ReadyHook(GradReducer* r, int64_t i) : reducer(r), index(i) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    reducer->ready(index);
    return outputs;
  }
};


extern "C" {

const char* hs_last_error() { return g_err.c_str(); }

// Variable-length FlashAttention-2 forward (at::_flash_attention_forward). q: [T_q, H, Dh],
// k, v: [T_k, H, Dh] (fp16/bf16, CUDA, last dim contiguous), cu_q, cu_k: [S + 1] int32.
// Out: out [T_q, H, Dh], lse [H, T_q] fp32, and the two tensors the backward needs.
int hs_flash_varlen_fwd(at::Tensor* q, at::Tensor* k, at::Tensor* v, at::Tensor* cu_q, at::Tensor* cu_k,
                        int64_t max_q, int64_t max_k, double scale, bool causal, at::Tensor** out,
                        at::Tensor** lse, at::Tensor** rng_state, at::Tensor** unused) {
  GUARD(auto r = at::_flash_attention_forward(*q, *k, *v, *cu_q, *cu_k, max_q, max_k, 0.0, causal, false, scale);
        *out = own(std::get<0>(r)); *lse = own(std::get<1>(r)); *rng_state = own(std::get<2>(r));
        *unused = own(std::get<3>(r));)
}

// Its backward (at::_flash_attention_backward): dq, dk, dv in q/k/v's shapes.
int hs_flash_varlen_bwd(at::Tensor* grad_out, at::Tensor* q, at::Tensor* k, at::Tensor* v, at::Tensor* out,
                        at::Tensor* lse, at::Tensor* cu_q, at::Tensor* cu_k, int64_t max_q, int64_t max_k,
                        double scale, bool causal, at::Tensor* rng_state, at::Tensor* unused, at::Tensor** dq,
                        at::Tensor** dk, at::Tensor** dv) {
  GUARD(auto r = at::_flash_attention_backward(*grad_out, *q, *k, *v, *out, *lse, *cu_q, *cu_k, max_q, max_k, 0.0,
                                               causal, *rng_state, *unused, scale);
        *dq = own(std::get<0>(r)); *dk = own(std::get<1>(r)); *dv = own(std::get<2>(r));)
}

// Memory-efficient attention with an additive bias (at::_efficient_attention_forward).
// q: [B, S_q, H, Dh], k, v: [B, S_k, H, Dh], bias: null or [B, H, S_q, S_k] (broadcast
// strides allowed). cu_q/cu_k: null, or [S + 1] int32 with B = 1 for packed sequences.
int hs_efficient_attention_fwd(at::Tensor* q, at::Tensor* k, at::Tensor* v, at::Tensor* bias, at::Tensor* cu_q,
                               at::Tensor* cu_k, int64_t max_q, int64_t max_k, double scale, bool compute_lse,
                               at::Tensor** out, at::Tensor** lse, at::Tensor** seed, at::Tensor** offset) {
  GUARD(std::optional<int64_t> mq = cu_q ? std::optional<int64_t>(max_q) : std::nullopt;
        std::optional<int64_t> mk = cu_k ? std::optional<int64_t>(max_k) : std::nullopt;
        auto r = at::_efficient_attention_forward(*q, *k, *v, opt(bias), opt(cu_q), opt(cu_k), mq, mk, 0.0, 0,
                                                  compute_lse, scale);
        *out = own(std::get<0>(r)); *lse = own(std::get<1>(r)); *seed = own(std::get<2>(r));
        *offset = own(std::get<3>(r));)
}

// Its backward (at::_efficient_attention_backward): dq, dk, dv, and dbias (undefined unless
// bias_requires_grad).
int hs_efficient_attention_bwd(at::Tensor* grad_out, at::Tensor* q, at::Tensor* k, at::Tensor* v, at::Tensor* bias,
                               at::Tensor* out, at::Tensor* cu_q, at::Tensor* cu_k, int64_t max_q, int64_t max_k,
                               at::Tensor* lse, at::Tensor* seed, at::Tensor* offset, bool bias_requires_grad,
                               double scale, at::Tensor** dq, at::Tensor** dk, at::Tensor** dv, at::Tensor** dbias) {
  GUARD(auto r = at::_efficient_attention_backward(*grad_out, *q, *k, *v, opt(bias), *out, opt(cu_q), opt(cu_k), max_q,
                                                   max_k, *lse, 0.0, *seed, *offset, 0, bias_requires_grad, scale);
        *dq = own(std::get<0>(r)); *dk = own(std::get<1>(r)); *dv = own(std::get<2>(r));
        *dbias = own(std::get<3>(r));)
}

// Scaled dot-product attention through one named backend, for this call only (no global
// switch): 0 math, 1 flash, 2 memory-efficient, 3 cuDNN, as at::SDPBackend numbers them.
// q, k, v: [B, H, L, Dh]; mask: null, bool (true = attend) or additive, broadcastable to
// [B, H, L_q, L_k] (flash takes none). Differentiable through the chosen op's derivative.
int hs_sdpa(at::Tensor* q, at::Tensor* k, at::Tensor* v, at::Tensor* mask, double scale, int64_t backend,
            at::Tensor** out) {
  GUARD(at::Tensor o; switch (backend) {
    case 0: {
      o = std::get<0>(
          at::_scaled_dot_product_attention_math(*q, *k, *v, additive(mask, *q, *k), 0.0, false, std::nullopt, scale));
      break;
    }
    case 1: {
      if (mask) throw std::invalid_argument("the flash backend takes no attention mask");
      o = std::get<0>(at::_scaled_dot_product_flash_attention(*q, *k, *v, 0.0, false, false, scale));
      break;
    }
    case 2: {
      bool grad = q->requires_grad() || k->requires_grad() || v->requires_grad();
      o = std::get<0>(at::_scaled_dot_product_efficient_attention(*q, *k, *v, additive(mask, *q, *k), grad, 0.0, false,
                                                                  scale));
      break;
    }
    case 3: {
      bool grad = q->requires_grad() || k->requires_grad() || v->requires_grad();
      o = std::get<0>(
          at::_scaled_dot_product_cudnn_attention(*q, *k, *v, additive(mask, *q, *k), grad, 0.0, false, false, scale));
      break;
    }
    default:
      throw std::invalid_argument("unknown SDPA backend " + std::to_string(backend));
  } *out = own(o);)
}

// Autocast on `device_type` (c10::DeviceType: 0 CPU, 1 CUDA) with `dtype` (c10::ScalarType),
// for the calling thread. Entering returns the previous state so that leaving restores it;
// leaving the outermost region clears autocast's cache of cast weights, as Python's
// `torch.autocast.__exit__` does.
int hs_autocast_enter(int64_t device_type, int64_t dtype, bool* was_enabled, int64_t* was_dtype) {
  GUARD(auto d = static_cast<c10::DeviceType>(device_type);
        *was_enabled = at::autocast::is_autocast_enabled(d);
        *was_dtype = static_cast<int64_t>(at::autocast::get_autocast_dtype(d));
        at::autocast::set_autocast_enabled(d, true);
        at::autocast::set_autocast_dtype(d, static_cast<at::ScalarType>(dtype));
        at::autocast::increment_nesting();)
}

int hs_autocast_exit(int64_t device_type, bool was_enabled, int64_t was_dtype) {
  GUARD(auto d = static_cast<c10::DeviceType>(device_type);
        if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
        at::autocast::set_autocast_enabled(d, was_enabled);
        at::autocast::set_autocast_dtype(d, static_cast<at::ScalarType>(was_dtype));)
}

int hs_autocast_is_enabled(int64_t device_type, bool* enabled) {
  GUARD(*enabled = at::autocast::is_autocast_enabled(static_cast<c10::DeviceType>(device_type));)
}

// The caching allocator's statistics for one accelerator device, in bytes: allocated now,
// allocated at peak, reserved now, reserved at peak.
int hs_memory_stats(int64_t device, int64_t* out) {
  GUARD(auto s = at::accelerator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
        out[0] = s.allocated_bytes[0].current; out[1] = s.allocated_bytes[0].peak;
        out[2] = s.reserved_bytes[0].current; out[3] = s.reserved_bytes[0].peak;)
}

int hs_reset_peak_memory(int64_t device) {
  GUARD(at::accelerator::resetPeakStats(static_cast<c10::DeviceIndex>(device));)
}

// The native handle of libtorch's current stream on `device` (a cudaStream_t; null is the
// legacy default stream).
int hs_current_stream(int64_t device, void** stream) {
  GUARD(*stream = at::accelerator::getCurrentStream(static_cast<c10::DeviceIndex>(device)).native_handle();)
}

// Makes GPU `device` the calling thread's current device (what NCCL and the null stream
// refer to; libtorch's device guards restore it after each op).
int hs_set_device(int64_t device) { GUARD(at::accelerator::setDeviceIndex(static_cast<c10::DeviceIndex>(device));) }

// One fused AdamW update over n parameters (at::_fused_adamw_, one kernel launch per dtype
// and device group): decoupled decay p ← p·(1 − lr·λ), then the Adam step with bias
// corrections from `step` (a 0-d fp32 tensor holding the 1-based update count, shared by all
// parameters: the kernel only reads it).
int hs_fused_adamw(at::Tensor** params, at::Tensor** grads, at::Tensor** m, at::Tensor** v, at::Tensor* step,
                   int64_t n, double lr, double beta1, double beta2, double weight_decay, double eps) {
  GUARD(std::vector<at::Tensor> steps(n, *step);
        at::_fused_adamw_(list(params, n), list(grads, n), list(m, n), list(v, n), {}, steps, lr, beta1, beta2,
                          weight_decay, eps, false, false);)
}

// Global L2 norm of n gradients (fp32, as `torch.nn.utils.clip_grad_norm_` computes it with
// foreach kernels) and, when max_norm > 0, gradients scaled in place by min(1, max/(norm+1e-6)).
// No host synchronisation.
int hs_clip_grad_norm(at::Tensor** grads, int64_t n, double max_norm, at::Tensor** norm) {
  GUARD(auto gs = list(grads, n);
        auto norms = at::_foreach_norm(gs, 2, at::kFloat);
        auto total = at::linalg_vector_norm(at::stack(norms), 2);
        if (max_norm > 0) {
          auto coef = at::clamp_max(max_norm / (total + 1e-6), 1.0);
          at::_foreach_mul_(gs, coef);
        } *norm = own(total);)
}

// Rotary embedding of x ([..., Dh], Dh even) by cos and sin ([..., Dh/2], broadcast against
// x's halves, in x's dtype), differentiable in x.
int hs_rope(at::Tensor* x, at::Tensor* cos, at::Tensor* sin, at::Tensor** out) {
  GUARD(*out = own(Rope::apply(*x, *cos, *sin));)
}

// Compiles and loads the fused RoPE kernel for GPU `device` (what `hs_rope` does on first
// use), reporting why it cannot where it cannot.
int hs_rope_kernel(int64_t device) {
  GUARD(jit::function(kRopeSource, "helico_rope_bf16", static_cast<int>(device));)
}

// Kineto's profiler (CPU ops and CUDA kernels, as torch.profiler records them) from now on.
int hs_profiler_start() {
  GUARD(using namespace torch::profiler::impl;
        ProfilerConfig config(ProfilerState::KINETO);
        std::set<ActivityType> activities{ActivityType::CPU, ActivityType::CUDA};
        torch::autograd::profiler::prepareProfiler(config, activities);
        torch::autograd::profiler::enableProfiler(config, activities);)
}

// Stops the profiler and writes its Chrome trace (JSON) to `path`.
int hs_profiler_stop(const char* path) {
  GUARD(auto result = torch::autograd::profiler::disableProfiler(); result->save(path);)
}

// A gradient reducer over n leaf parameters; bucket_of[i] is parameter i's bucket (buckets
// numbered from 0 in the order they should complete: the reverse of the forward order).
int hs_reducer_new(at::Tensor** params, const int64_t* bucket_of, int64_t n, hs_reduce_fn reduce, void* ctx,
                   void** out) {
  GUARD(auto r = std::make_unique<GradReducer>(); r->reduce = reduce; r->ctx = ctx;
        int64_t n_buckets = 0;
        for (int64_t i = 0; i < n; i++) n_buckets = std::max(n_buckets, bucket_of[i] + 1);
        r->buckets.resize(n_buckets); r->flats.resize(n_buckets); r->missing.resize(n_buckets);
        r->seen.resize(n);
        for (int64_t i = 0; i < n; i++) {
          TORCH_CHECK(params[i]->requires_grad() && params[i]->is_leaf(), "parameter ", i,
                      " is not a leaf that requires a gradient");
          r->params.push_back(*params[i]);
          r->bucket_of.push_back(bucket_of[i]);
          r->buckets[bucket_of[i]].push_back(i);
        }
        for (int64_t b = 0; b < n_buckets; b++) TORCH_CHECK(!r->buckets[b].empty(), "bucket ", b, " is empty");
        for (int64_t i = 0; i < n; i++) {
          auto acc = torch::autograd::impl::grad_accumulator(r->params[i]);
          r->hooks.push_back(acc->add_post_hook(std::make_unique<ReadyHook>(r.get(), i)));
          r->accumulators.push_back(std::move(acc));
        }
        r->reset(); *out = r.release();)
}

// The next backward reduces buckets as they complete.
int hs_reducer_arm(void* reducer) {
  GUARD(auto r = static_cast<GradReducer*>(reducer); std::lock_guard<std::mutex> lock(r->mu); r->reset();
        r->armed = true;)
}

// After the armed backward (or instead of arming): reduces the buckets not yet reduced, in
// order, and writes every sum back into its gradient. `launched` is how many buckets the
// backward itself launched.
int hs_reducer_finish(void* reducer, int64_t* launched) {
  GUARD(auto r = static_cast<GradReducer*>(reducer); r->finish(); *launched = r->launched_in_backward;
        TORCH_CHECK(r->error.empty(), r->error);)
}

// Removes the hooks and frees the reducer.
int hs_reducer_free(void* reducer) {
  GUARD(auto r = static_cast<GradReducer*>(reducer);
        for (size_t i = 0; i < r->accumulators.size(); i++) r->accumulators[i]->del_post_hook(r->hooks[i]);
        delete r;)
}

}  // extern "C"
