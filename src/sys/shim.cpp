// helico's libtorch shim: the ATen entry points tch 0.24 does not bind (rust_ecosystem.md §1.3,
// §1.10). Compiled by build.rs with `cc` against libtorch's headers only: no CUDA headers, so
// the same object builds on a CPU machine, where the CUDA-only ops report an error instead.
//
// Conventions: every function returns 0 on success and -1 on a C++ exception, whose message
// `hs_last_error` returns (thread-local, valid until the next failing call). Tensors cross as
// `at::Tensor*` (torch-sys's `C_tensor`); results are heap-allocated `at::Tensor`s that the
// Rust side owns (tch's `Tensor::from_ptr`, whose Drop deletes them). A null input pointer
// means "absent" where the ATen argument is optional.

#include <ATen/core/Tensor.h>
#include <ATen/DeviceAccelerator.h>
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

#include <string>
#include <vector>

static thread_local std::string g_err;

#define GUARD(body)                          \
  try {                                      \
    body                                     \
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

}  // extern "C"
