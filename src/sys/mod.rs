//! Safe wrappers over helico's libtorch shim (`shim.cpp`, compiled by `build.rs`): the ATen
//! entry points tch 0.24 does not bind (rust_ecosystem.md §1.3, §1.10). Varlen
//! FlashAttention-2 and memory-efficient attention with an additive bias (forward and
//! backward), SDPA through one named backend per call, bf16 autocast, the CUDA caching
//! allocator's statistics, the current stream, fused AdamW and a foreach gradient-norm clip;
//! rotary embedding with a hand-written backward, and the Kineto profiler.
//!
//! Every wrapper returns [`Error`] where libtorch throws, so a kernel that does not support a
//! device or dtype (the CUDA-only attention kernels on a CPU) is an error the caller can fall
//! back from, never a crash. The forward kernels record their derivatives in libtorch's
//! autograd like any tch op: `backward()` through them works, and the explicit backward entry
//! points exist for tests and for callers that manage their own graph.

pub mod nccl;
pub mod reducer;

use std::ffi::{CStr, c_void};
use std::ptr;

use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

/// A libtorch call through the shim failed.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {message}")]
pub struct Error {
    /// The shim entry point, e.g. `flash_varlen_fwd`.
    pub op: &'static str,
    /// libtorch's exception text.
    pub message: String,
}

mod ffi {
    use super::*;

    unsafe extern "C" {
        pub fn hs_last_error() -> *const libc::c_char;
        pub fn hs_flash_varlen_fwd(
            q: *mut C_tensor,
            k: *mut C_tensor,
            v: *mut C_tensor,
            cu_q: *mut C_tensor,
            cu_k: *mut C_tensor,
            max_q: i64,
            max_k: i64,
            scale: f64,
            causal: bool,
            out: *mut *mut C_tensor,
            lse: *mut *mut C_tensor,
            rng_state: *mut *mut C_tensor,
            unused: *mut *mut C_tensor,
        ) -> i32;
        pub fn hs_flash_varlen_bwd(
            grad_out: *mut C_tensor,
            q: *mut C_tensor,
            k: *mut C_tensor,
            v: *mut C_tensor,
            out: *mut C_tensor,
            lse: *mut C_tensor,
            cu_q: *mut C_tensor,
            cu_k: *mut C_tensor,
            max_q: i64,
            max_k: i64,
            scale: f64,
            causal: bool,
            rng_state: *mut C_tensor,
            unused: *mut C_tensor,
            dq: *mut *mut C_tensor,
            dk: *mut *mut C_tensor,
            dv: *mut *mut C_tensor,
        ) -> i32;
        pub fn hs_efficient_attention_fwd(
            q: *mut C_tensor,
            k: *mut C_tensor,
            v: *mut C_tensor,
            bias: *mut C_tensor,
            cu_q: *mut C_tensor,
            cu_k: *mut C_tensor,
            max_q: i64,
            max_k: i64,
            scale: f64,
            compute_lse: bool,
            out: *mut *mut C_tensor,
            lse: *mut *mut C_tensor,
            seed: *mut *mut C_tensor,
            offset: *mut *mut C_tensor,
        ) -> i32;
        pub fn hs_efficient_attention_bwd(
            grad_out: *mut C_tensor,
            q: *mut C_tensor,
            k: *mut C_tensor,
            v: *mut C_tensor,
            bias: *mut C_tensor,
            out: *mut C_tensor,
            cu_q: *mut C_tensor,
            cu_k: *mut C_tensor,
            max_q: i64,
            max_k: i64,
            lse: *mut C_tensor,
            seed: *mut C_tensor,
            offset: *mut C_tensor,
            bias_requires_grad: bool,
            scale: f64,
            dq: *mut *mut C_tensor,
            dk: *mut *mut C_tensor,
            dv: *mut *mut C_tensor,
            dbias: *mut *mut C_tensor,
        ) -> i32;
        pub fn hs_sdpa(
            q: *mut C_tensor,
            k: *mut C_tensor,
            v: *mut C_tensor,
            mask: *mut C_tensor,
            scale: f64,
            backend: i64,
            out: *mut *mut C_tensor,
        ) -> i32;
        pub fn hs_autocast_enter(device_type: i64, dtype: i64, was_enabled: *mut bool, was_dtype: *mut i64) -> i32;
        pub fn hs_autocast_exit(device_type: i64, was_enabled: bool, was_dtype: i64) -> i32;
        pub fn hs_autocast_is_enabled(device_type: i64, enabled: *mut bool) -> i32;
        pub fn hs_memory_stats(device: i64, out: *mut i64) -> i32;
        pub fn hs_reset_peak_memory(device: i64) -> i32;
        pub fn hs_current_stream(device: i64, stream: *mut *mut c_void) -> i32;
        pub fn hs_set_device(device: i64) -> i32;
        pub fn hs_rope(x: *mut C_tensor, cos: *mut C_tensor, sin: *mut C_tensor, out: *mut *mut C_tensor) -> i32;
        pub fn hs_rope_kernel(device: i64) -> i32;
        pub fn hs_profiler_start() -> i32;
        pub fn hs_profiler_stop(path: *const libc::c_char) -> i32;
        pub fn hs_fused_adamw(
            params: *const *mut C_tensor,
            grads: *const *mut C_tensor,
            m: *const *mut C_tensor,
            v: *const *mut C_tensor,
            step: *mut C_tensor,
            n: i64,
            lr: f64,
            beta1: f64,
            beta2: f64,
            weight_decay: f64,
            eps: f64,
        ) -> i32;
        pub fn hs_clip_grad_norm(grads: *const *mut C_tensor, n: i64, max_norm: f64, norm: *mut *mut C_tensor) -> i32;
    }
}

/// Turns a shim status into a Result, reading the thread's last error on failure.
fn check(op: &'static str, status: i32) -> Result<(), Error> {
    if status == 0 {
        return Ok(());
    }
    // SAFETY: the shim returns a pointer to its thread-local, NUL-terminated message.
    let message = unsafe { CStr::from_ptr(ffi::hs_last_error()) }.to_string_lossy().into_owned();
    // libtorch appends a C++ backtrace after the first line; the first line says what failed.
    let message = message.lines().next().unwrap_or_default().to_owned();
    Err(Error { op, message })
}

/// The pointer the shim takes for a borrowed tensor. The shim only reads through it (ATen
/// tensors are reference-counted handles; kernels that write do so to the shared storage, as
/// tch's own in-place ops do through `&self`).
fn ptr(t: &Tensor) -> *mut C_tensor {
    t.as_ptr() as *mut C_tensor
}

fn opt_ptr(t: Option<&Tensor>) -> *mut C_tensor {
    t.map_or(ptr::null_mut(), ptr)
}

/// Takes ownership of a tensor the shim allocated.
fn owned(p: *mut C_tensor) -> Tensor {
    // SAFETY: the shim returned a fresh `new at::Tensor`, which nothing else owns.
    unsafe { Tensor::from_ptr(p) }
}

/// Varlen FlashAttention-2 forward and what its backward needs.
#[derive(Debug)]
pub struct FlashVarlen {
    /// [T_q, H, Dh] in q's dtype.
    pub out: Tensor,
    /// Log-sum-exp of each query's scores: [H, T_q] fp32.
    pub lse: Tensor,
    rng_state: Tensor,
    unused: Tensor,
}

/// Sequences packed end to end for varlen kernels: boundaries and the longest length.
#[derive(Debug, Clone, Copy)]
pub struct Varlen<'a> {
    /// Cumulative sequence lengths from 0: [S + 1] i32 on the kernel's device.
    pub cu_seqlens: &'a Tensor,
    /// Longest sequence (host value).
    pub max_seqlen: i64,
}

/// softmax(q kᵀ · scale) v within each packed sequence (`at::_flash_attention_forward`).
/// q, k, v: [T, H, Dh], fp16 or bf16, CUDA (sm80+), Dh ≤ 256 and a multiple of 8, last
/// dimension contiguous; the same packing for queries and keys. Differentiable.
pub fn flash_varlen_fwd(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    seqs: Varlen<'_>,
    scale: f64,
    causal: bool,
) -> Result<FlashVarlen, Error> {
    let mut o = [ptr::null_mut(); 4];
    let [a, b, c, d] = &mut o;
    let (cu, max) = (ptr(seqs.cu_seqlens), seqs.max_seqlen);
    // SAFETY: the inputs are live tensors; the shim writes four owned results on success.
    check("flash_varlen_fwd", unsafe {
        ffi::hs_flash_varlen_fwd(ptr(q), ptr(k), ptr(v), cu, cu, max, max, scale, causal, a, b, c, d)
    })?;
    Ok(FlashVarlen { out: owned(o[0]), lse: owned(o[1]), rng_state: owned(o[2]), unused: owned(o[3]) })
}

/// The gradients (dq, dk, dv) of `flash_varlen_fwd` for an output gradient `grad_out`
/// ([T, H, Dh]), from the forward's saved log-sum-exp (`at::_flash_attention_backward`).
#[allow(clippy::too_many_arguments)]
pub fn flash_varlen_bwd(
    grad_out: &Tensor,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    fwd: &FlashVarlen,
    seqs: Varlen<'_>,
    scale: f64,
    causal: bool,
) -> Result<(Tensor, Tensor, Tensor), Error> {
    let mut o = [ptr::null_mut(); 3];
    let [a, b, c] = &mut o;
    let (cu, max) = (ptr(seqs.cu_seqlens), seqs.max_seqlen);
    // SAFETY: as in `flash_varlen_fwd`.
    check("flash_varlen_bwd", unsafe {
        ffi::hs_flash_varlen_bwd(
            ptr(grad_out),
            ptr(q),
            ptr(k),
            ptr(v),
            ptr(&fwd.out),
            ptr(&fwd.lse),
            cu,
            cu,
            max,
            max,
            scale,
            causal,
            ptr(&fwd.rng_state),
            ptr(&fwd.unused),
            a,
            b,
            c,
        )
    })?;
    Ok((owned(o[0]), owned(o[1]), owned(o[2])))
}

/// Memory-efficient attention forward and what its backward needs.
#[derive(Debug)]
pub struct Efficient {
    /// [B, S_q, H, Dh] in q's dtype.
    pub out: Tensor,
    /// Log-sum-exp per query (fp32); empty unless requested.
    pub lse: Tensor,
    seed: Tensor,
    offset: Tensor,
}

/// softmax(q kᵀ · scale + bias) v with the xformers-style memory-efficient kernel
/// (`at::_efficient_attention_forward`). q: [B, S_q, H, Dh], k, v: [B, S_k, H, Dh]
/// (fp32/fp16/bf16, CUDA); bias: additive, [B, H, S_q, S_k] or broadcast (stride-0) views of
/// it, in q's dtype; with `varlen`, B = 1 and the sequences are packed along S. Differentiable
/// in q, k, v and bias; `compute_lse` must be true when a backward will follow.
pub fn efficient_attention_fwd(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    varlen: Option<Varlen<'_>>,
    scale: f64,
    compute_lse: bool,
) -> Result<Efficient, Error> {
    let mut o = [ptr::null_mut(); 4];
    let [a, b, c, d] = &mut o;
    let (cu, max) = varlen.map_or((ptr::null_mut(), 0), |s| (ptr(s.cu_seqlens), s.max_seqlen));
    // SAFETY: as in `flash_varlen_fwd`; null means an absent optional argument.
    check("efficient_attention_fwd", unsafe {
        ffi::hs_efficient_attention_fwd(
            ptr(q),
            ptr(k),
            ptr(v),
            opt_ptr(bias),
            cu,
            cu,
            max,
            max,
            scale,
            compute_lse,
            a,
            b,
            c,
            d,
        )
    })?;
    Ok(Efficient { out: owned(o[0]), lse: owned(o[1]), seed: owned(o[2]), offset: owned(o[3]) })
}

/// The gradients (dq, dk, dv, dbias) of `efficient_attention_fwd`; dbias is undefined
/// unless `bias_requires_grad` (`at::_efficient_attention_backward`).
#[allow(clippy::too_many_arguments)]
pub fn efficient_attention_bwd(
    grad_out: &Tensor,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    fwd: &Efficient,
    varlen: Option<Varlen<'_>>,
    scale: f64,
    bias_requires_grad: bool,
) -> Result<(Tensor, Tensor, Tensor, Tensor), Error> {
    let (_, s_q, _, _) = q.size4().expect("q: [B, S_q, H, Dh]");
    let (_, s_k, _, _) = k.size4().expect("k: [B, S_k, H, Dh]");
    let (cu, max_q, max_k) =
        varlen.map_or((ptr::null_mut(), s_q, s_k), |s| (ptr(s.cu_seqlens), s.max_seqlen, s.max_seqlen));
    let mut o = [ptr::null_mut(); 4];
    let [a, b, c, d] = &mut o;
    // SAFETY: as in `flash_varlen_fwd`.
    check("efficient_attention_bwd", unsafe {
        ffi::hs_efficient_attention_bwd(
            ptr(grad_out),
            ptr(q),
            ptr(k),
            ptr(v),
            opt_ptr(bias),
            ptr(&fwd.out),
            cu,
            cu,
            max_q,
            max_k,
            ptr(&fwd.lse),
            ptr(&fwd.seed),
            ptr(&fwd.offset),
            bias_requires_grad,
            scale,
            a,
            b,
            c,
            d,
        )
    })?;
    Ok((owned(o[0]), owned(o[1]), owned(o[2]), owned(o[3])))
}

/// An SDPA backend, numbered as `at::SDPBackend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpaBackend {
    Math = 0,
    Flash = 1,
    Efficient = 2,
    Cudnn = 3,
}

/// Scaled dot-product attention through `backend` for this call only (libtorch's own choice
/// is a process-wide switch). q, k, v: [B, H, L, Dh]; mask: boolean (true = attend) or
/// additive, broadcastable to [B, H, L_q, L_k]; the flash backend takes none. Differentiable.
pub fn sdpa(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    scale: f64,
    backend: SdpaBackend,
) -> Result<Tensor, Error> {
    let mut out = ptr::null_mut();
    // SAFETY: as in `flash_varlen_fwd`.
    check("sdpa", unsafe { ffi::hs_sdpa(ptr(q), ptr(k), ptr(v), opt_ptr(mask), scale, backend as i64, &mut out) })?;
    Ok(owned(out))
}

/// c10::DeviceType of a device.
fn device_type(device: Device) -> i64 {
    match device {
        Device::Cpu => 0,
        _ => 1,
    }
}

/// c10::ScalarType of the floating kinds autocast takes.
fn scalar_type(kind: Kind) -> Option<i64> {
    match kind {
        Kind::Half => Some(5),
        Kind::Float => Some(6),
        Kind::BFloat16 => Some(15),
        _ => None,
    }
}

/// Autocast for the calling thread while alive: libtorch casts the inputs of matmul-like ops
/// to `kind` and keeps precision-sensitive ops (softmax, norms, losses) in fp32, as
/// `torch.autocast(device_type, dtype)` does. Dropping it restores the previous state.
#[derive(Debug)]
pub struct Autocast {
    device_type: i64,
    was_enabled: bool,
    was_dtype: i64,
}

impl Autocast {
    /// Enters autocast on `device`'s type with `kind` (`Half`, `BFloat16`, or `Float`).
    pub fn enter(device: Device, kind: Kind) -> Result<Autocast, Error> {
        let dtype = scalar_type(kind).ok_or_else(|| Error {
            op: "autocast",
            message: format!("{kind:?} is not a floating dtype autocast takes"),
        })?;
        let (mut was_enabled, mut was_dtype) = (false, 0);
        let device_type = device_type(device);
        // SAFETY: plain values in and out.
        check("autocast", unsafe { ffi::hs_autocast_enter(device_type, dtype, &mut was_enabled, &mut was_dtype) })?;
        Ok(Autocast { device_type, was_enabled, was_dtype })
    }

    /// Whether autocast is on for `device`'s type in this thread.
    pub fn is_enabled(device: Device) -> Result<bool, Error> {
        let mut on = false;
        // SAFETY: a plain value out.
        check("autocast", unsafe { ffi::hs_autocast_is_enabled(device_type(device), &mut on) })?;
        Ok(on)
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        // SAFETY: plain values; restoring a state read from libtorch cannot fail.
        let status = unsafe { ffi::hs_autocast_exit(self.device_type, self.was_enabled, self.was_dtype) };
        debug_assert_eq!(status, 0, "restoring autocast state");
    }
}

/// The CUDA caching allocator's statistics for one device, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MemoryStats {
    pub allocated: i64,
    pub peak_allocated: i64,
    pub reserved: i64,
    pub peak_reserved: i64,
}

/// Allocator statistics of GPU `device` (an error on a machine without one).
pub fn memory_stats(device: usize) -> Result<MemoryStats, Error> {
    let mut s = [0i64; 4];
    // SAFETY: the shim writes four values.
    check("memory_stats", unsafe { ffi::hs_memory_stats(device as i64, s.as_mut_ptr()) })?;
    Ok(MemoryStats { allocated: s[0], peak_allocated: s[1], reserved: s[2], peak_reserved: s[3] })
}

/// Starts the peak statistics of GPU `device` afresh.
pub fn reset_peak_memory(device: usize) -> Result<(), Error> {
    // SAFETY: a plain value in.
    check("reset_peak_memory", unsafe { ffi::hs_reset_peak_memory(device as i64) })
}

/// libtorch's current CUDA stream on `device` (`cudaStream_t`; null is the legacy default
/// stream), for launching foreign work (NCCL, NVRTC kernels) in order with libtorch's.
pub fn current_stream(device: usize) -> Result<*mut c_void, Error> {
    let mut stream = ptr::null_mut();
    // SAFETY: a plain value out.
    check("current_stream", unsafe { ffi::hs_current_stream(device as i64, &mut stream) })?;
    Ok(stream)
}

/// Makes GPU `device` the calling thread's current CUDA device: what NCCL communicators
/// and the legacy default stream refer to (libtorch's own ops set their device per call).
pub fn set_device(device: usize) -> Result<(), Error> {
    // SAFETY: a plain value in.
    check("set_device", unsafe { ffi::hs_set_device(device as i64) })
}

/// Rotary position embedding in the rotate-half layout (GPT-NeoX): each pair (x_i, x_{i+Dh/2})
/// rotated by its angle, (x1, x2) ↦ (x1·cos − x2·sin, x2·cos + x1·sin). x: [..., Dh] with Dh
/// even; cos, sin: [..., Dh/2] in x's dtype, broadcastable against either half of x. Returns a
/// new contiguous tensor, differentiable in x through a hand-written backward (the inverse
/// rotation). Any device: bf16 on a GPU takes one fused kernel each way ([`rope_kernel`]),
/// anything else four strided ATen kernels.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor, Error> {
    let mut out = ptr::null_mut();
    // SAFETY: as in `flash_varlen_fwd`.
    check("rope", unsafe { ffi::hs_rope(ptr(x), ptr(cos), ptr(sin), &mut out) })?;
    Ok(owned(out))
}

/// Whether [`rope`]'s fused bf16 kernel (compiled with NVRTC on first use) runs on GPU
/// `device`; where it does not, `rope` uses ATen kernels (the same result, slower) and says so
/// once.
pub fn rope_kernel(device: usize) -> Result<(), Error> {
    // SAFETY: a plain value in.
    check("rope_kernel", unsafe { ffi::hs_rope_kernel(device as i64) })
}

/// Starts libtorch's Kineto profiler (CPU ops and CUDA kernels, as `torch.profiler` records
/// them); [`profiler_stop`] writes the trace.
pub fn profiler_start() -> Result<(), Error> {
    // SAFETY: no arguments.
    check("profiler_start", unsafe { ffi::hs_profiler_start() })
}

/// Stops the profiler and writes its Chrome trace (JSON) to `path`.
pub fn profiler_stop(path: &std::path::Path) -> Result<(), Error> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error { op: "profiler_stop", message: format!("{} holds a NUL byte", path.display()) })?;
    // SAFETY: a NUL-terminated path.
    check("profiler_stop", unsafe { ffi::hs_profiler_stop(c.as_ptr()) })
}

/// One fused AdamW update (`at::_fused_adamw_`) over parameters with their gradients and
/// fp32 moments (all four slices the same length, same device, one dtype per slot): decoupled
/// decay p ← p·(1 − lr·λ), then the Adam step with bias corrections for update number
/// `step` (a 0-d fp32 tensor on the parameters' device, 1-based).
#[allow(clippy::too_many_arguments)]
pub fn fused_adamw(
    params: &[&Tensor],
    grads: &[&Tensor],
    m: &[&Tensor],
    v: &[&Tensor],
    step: &Tensor,
    lr: f64,
    [beta1, beta2]: [f64; 2],
    weight_decay: f64,
    eps: f64,
) -> Result<(), Error> {
    let n = params.len();
    assert!(
        grads.len() == n && m.len() == n && v.len() == n,
        "fused_adamw: one gradient and two moments per parameter"
    );
    let ptrs = |ts: &[&Tensor]| ts.iter().map(|t| ptr(t)).collect::<Vec<_>>();
    let (p, g, m, v) = (ptrs(params), ptrs(grads), ptrs(m), ptrs(v));
    // SAFETY: four arrays of n live tensors; the kernel updates params and moments in place.
    check("fused_adamw", unsafe {
        ffi::hs_fused_adamw(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            ptr(step),
            n as i64,
            lr,
            beta1,
            beta2,
            weight_decay,
            eps,
        )
    })
}

/// The global L2 norm of `grads` as a 0-d fp32 tensor and, when `max_norm > 0`, the
/// gradients scaled in place by min(1, max_norm / (norm + 1e-6)), with foreach kernels and no
/// host synchronisation (`torch.nn.utils.clip_grad_norm_`).
pub fn clip_grad_norm(grads: &[&Tensor], max_norm: f64) -> Result<Tensor, Error> {
    let g: Vec<_> = grads.iter().map(|t| ptr(t)).collect();
    let mut norm = ptr::null_mut();
    // SAFETY: an array of live tensors; the shim scales them in place and returns the norm.
    check("clip_grad_norm", unsafe { ffi::hs_clip_grad_norm(g.as_ptr(), g.len() as i64, max_norm, &mut norm) })?;
    Ok(owned(norm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_only_kernels_report_an_error_on_the_cpu() {
        let q = Tensor::randn([8, 2, 16], (Kind::BFloat16, Device::Cpu));
        let cu = Tensor::from_slice(&[0i32, 3, 8]);
        let err = flash_varlen_fwd(&q, &q, &q, Varlen { cu_seqlens: &cu, max_seqlen: 5 }, 0.25, false).unwrap_err();
        assert_eq!(err.op, "flash_varlen_fwd");
        assert!(!err.message.is_empty() && !err.message.contains('\n'), "{err}");
    }

    #[test]
    fn sdpa_math_backend_on_the_cpu_matches_tch() {
        let opts = (Kind::Float, Device::Cpu);
        let (q, k, v) =
            (Tensor::randn([2, 3, 5, 8], opts), Tensor::randn([2, 3, 5, 8], opts), Tensor::randn([2, 3, 5, 8], opts));
        let mask = Tensor::rand([2, 1, 5, 5], opts).gt(0.3).logical_or(&Tensor::eye(5, (Kind::Bool, Device::Cpu)));
        let ours = sdpa(&q, &k, &v, Some(&mask), 0.3, SdpaBackend::Math).unwrap();
        let theirs = Tensor::scaled_dot_product_attention(&q, &k, &v, Some(&mask), 0.0, false, 0.3, false);
        assert!(ours.allclose(&theirs, 1e-5, 1e-6, false));
        let err = sdpa(&q, &k, &v, Some(&mask), 0.3, SdpaBackend::Flash).unwrap_err();
        assert!(err.message.contains("no attention mask"), "{err}");
    }

    #[test]
    fn autocast_state_is_restored() {
        assert!(!Autocast::is_enabled(Device::Cpu).unwrap());
        {
            let _outer = Autocast::enter(Device::Cpu, Kind::BFloat16).unwrap();
            let a = Tensor::randn([4, 4], (Kind::Float, Device::Cpu));
            assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
            {
                let _inner = Autocast::enter(Device::Cpu, Kind::BFloat16).unwrap();
                assert!(Autocast::is_enabled(Device::Cpu).unwrap());
            }
            assert!(Autocast::is_enabled(Device::Cpu).unwrap());
        }
        assert!(!Autocast::is_enabled(Device::Cpu).unwrap());
        assert!(Autocast::enter(Device::Cpu, Kind::Int64).is_err());
    }

    /// The rotation against its definition, and its backward against autograd through the
    /// definition (both in fp64).
    #[test]
    fn rope_matches_the_rotate_half_definition_with_gradients() {
        let opts = (Kind::Double, Device::Cpu);
        let x0 = Tensor::randn([5, 2, 3, 8], opts);
        let angles = Tensor::randn([5, 1, 1, 4], opts);
        let (cos, sin) = (angles.cos(), angles.sin());
        let w = Tensor::randn([5, 2, 3, 8], opts);
        let x = x0.copy().set_requires_grad(true);
        let ours = rope(&x, &cos, &sin).unwrap();
        (&ours * &w).sum(Kind::Double).backward();
        let r = x0.copy().set_requires_grad(true);
        let (r1, r2) = (r.narrow(-1, 0, 4), r.narrow(-1, 4, 4));
        let reference = Tensor::cat(&[&r1 * &cos - &r2 * &sin, &r2 * &cos + &r1 * &sin], -1);
        (&reference * &w).sum(Kind::Double).backward();
        assert!(ours.is_contiguous());
        assert!(ours.allclose(&reference, 1e-12, 1e-12, false));
        assert!(x.grad().allclose(&r.grad(), 1e-12, 1e-12, false));
        // A strided input (a view of a wider projection) is read in place.
        let wide = Tensor::randn([5, 2, 3, 16], opts);
        let view = wide.narrow(-1, 4, 8);
        let expected = rope(&view.contiguous(), &cos, &sin).unwrap();
        assert!(rope(&view, &cos, &sin).unwrap().allclose(&expected, 0.0, 0.0, false));
    }

    #[test]
    fn memory_statistics_need_a_gpu() {
        if !tch::Cuda::is_available() {
            assert_eq!(memory_stats(0).unwrap_err().op, "memory_stats");
        }
    }

    /// The foreach clip equals the per-tensor definition: norm of the norms, then scaling.
    #[test]
    fn clip_grad_norm_matches_its_definition() {
        let opts = (Kind::Float, Device::Cpu);
        let grads = [Tensor::randn([3, 4], opts), Tensor::randn([7], opts), Tensor::randn([2, 2, 2], opts)];
        let expected: f64 = grads.iter().map(|g| g.square().sum(Kind::Float).double_value(&[])).sum::<f64>().sqrt();
        let before: Vec<Tensor> = grads.iter().map(Tensor::copy).collect();
        let refs: Vec<&Tensor> = grads.iter().collect();
        let norm = clip_grad_norm(&refs, 1.0).unwrap().double_value(&[]);
        assert!((norm - expected).abs() < 1e-5 * expected, "{norm} vs {expected}");
        let coef = 1.0 / (expected + 1e-6);
        for (g, b) in grads.iter().zip(&before) {
            assert!(g.allclose(&(b * coef), 1e-5, 1e-7, false));
        }
    }
}
