//! Gradient buckets reduced while backward runs: hooks on the parameters' gradient
//! accumulators (`GradReducer` in `shim.cpp`), which tch cannot register.
//!
//! Parameters are grouped into buckets in reverse order (backward produces the last layer's
//! gradients first); the first bucket is small so communication starts early, the others hold
//! up to `bucket_elements` values (PyTorch DDP's 1 MB first bucket and 25 MB after it, here
//! counted in fp32 values). When the last gradient of a bucket is accumulated, the bucket is
//! copied into one fp32 buffer and passed to the reduce function on the thread that runs the
//! backward (libtorch's device thread for CUDA), whose current stream orders it after the
//! kernels that made the gradients. Buckets launch in index order on every rank, so the
//! collectives match across ranks even when gradients complete in a different order.

use std::ffi::c_void;
use std::sync::Mutex;

use tch::Tensor;
use torch_sys::C_tensor;

use super::{Error, check, ptr};

/// Values in the first bucket: small, so the first collective starts early in backward.
const FIRST_BUCKET_ELEMENTS: i64 = 1 << 18;

mod ffi {
    use super::*;

    pub type ReduceFn = unsafe extern "C" fn(ctx: *mut c_void, flat: *mut C_tensor, bucket: i64) -> i32;

    unsafe extern "C" {
        pub fn hs_reducer_new(
            params: *const *mut C_tensor,
            bucket_of: *const i64,
            n: i64,
            reduce: ReduceFn,
            ctx: *mut c_void,
            out: *mut *mut c_void,
        ) -> i32;
        pub fn hs_reducer_arm(reducer: *mut c_void) -> i32;
        pub fn hs_reducer_finish(reducer: *mut c_void, launched: *mut i64) -> i32;
        pub fn hs_reducer_free(reducer: *mut c_void) -> i32;
    }
}

/// Reduces a bucket in place (its fp32 values, flat).
type Reduce = dyn FnMut(&Tensor) -> Result<(), String> + Send;

/// What the hooks call back into: the reduce function and its first failure.
struct Callback {
    reduce: Mutex<Box<Reduce>>,
    error: Mutex<Option<String>>,
}

/// Sums (or otherwise reduces) gradients bucket by bucket, overlapped with backward when armed.
pub struct GradReducer {
    raw: *mut c_void,
    /// Boxed so its address, which the shim holds, stays put.
    callback: Box<Callback>,
    /// Parameter indices per bucket, in launch order.
    buckets: Vec<Vec<usize>>,
}

impl GradReducer {
    /// Hooks `params` (leaf tensors that require gradients, in forward order) and groups them
    /// into buckets of at most `bucket_elements` values (a parameter larger than that is a
    /// bucket of its own). `reduce` is called once per bucket per step.
    pub fn new(
        params: &[&Tensor],
        bucket_elements: i64,
        reduce: impl FnMut(&Tensor) -> Result<(), String> + Send + 'static,
    ) -> Result<GradReducer, Error> {
        let buckets = buckets(&params.iter().map(|p| p.numel() as i64).collect::<Vec<_>>(), bucket_elements);
        let mut bucket_of = vec![0i64; params.len()];
        for (b, members) in buckets.iter().enumerate() {
            for &i in members {
                bucket_of[i] = b as i64;
            }
        }
        let callback = Box::new(Callback { reduce: Mutex::new(Box::new(reduce)), error: Mutex::new(None) });
        let ptrs: Vec<_> = params.iter().map(|p| ptr(p)).collect();
        let mut raw = std::ptr::null_mut();
        let ctx = &*callback as *const Callback as *mut c_void;
        // SAFETY: n live tensors and n bucket indices; `ctx` outlives the reducer (both are
        // dropped together, the reducer first).
        check("reducer_new", unsafe {
            ffi::hs_reducer_new(ptrs.as_ptr(), bucket_of.as_ptr(), ptrs.len() as i64, trampoline, ctx, &mut raw)
        })?;
        Ok(GradReducer { raw, callback, buckets })
    }

    /// Parameter indices of each bucket, in the order the buckets are reduced.
    pub fn buckets(&self) -> &[Vec<usize>] {
        &self.buckets
    }

    /// The next backward reduces each bucket as soon as its gradients are complete. Arm
    /// before the last backward of a step only: earlier micro-batches just accumulate.
    pub fn arm(&self) -> Result<(), Error> {
        // SAFETY: a live reducer.
        check("reducer_arm", unsafe { ffi::hs_reducer_arm(self.raw) })
    }

    /// After the step's last backward: reduces the buckets the backward did not (all of them
    /// when it was not armed), in order, and writes the results into the gradients. Returns
    /// how many buckets the backward itself launched.
    pub fn finish(&self) -> Result<usize, Error> {
        let mut launched = 0;
        // SAFETY: a live reducer; no backward is running (the caller's thread ran it).
        let status = check("reducer_finish", unsafe { ffi::hs_reducer_finish(self.raw, &mut launched) });
        if let Some(message) = self.callback.error.lock().expect("not poisoned").take() {
            return Err(Error { op: "reducer_finish", message });
        }
        status.map(|()| launched as usize)
    }
}

impl Drop for GradReducer {
    fn drop(&mut self) {
        // SAFETY: a live reducer, freed once; its hooks are removed before `callback` goes.
        let _ = unsafe { ffi::hs_reducer_free(self.raw) };
    }
}

/// The shim's call into `Callback::reduce`, with panics and errors kept for `finish`.
unsafe extern "C" fn trampoline(ctx: *mut c_void, flat: *mut C_tensor, _bucket: i64) -> i32 {
    // SAFETY: `ctx` is the reducer's `Callback`, alive while the reducer is; `flat` is a
    // fresh `at::Tensor` the shim made for this call.
    let (callback, flat) = unsafe { (&*(ctx as *const Callback), Tensor::from_ptr(flat)) };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut reduce = callback.reduce.lock().expect("not poisoned");
        reduce(&flat)
    }));
    let error = match result {
        Ok(Ok(())) => return 0,
        Ok(Err(message)) => message,
        Err(_) => "the reduce function panicked".to_owned(),
    };
    callback.error.lock().expect("not poisoned").get_or_insert(error);
    -1
}

/// Parameter indices per bucket: parameters in reverse order, the first bucket up to
/// `FIRST_BUCKET_ELEMENTS` values, the others up to `bucket_elements`.
fn buckets(sizes: &[i64], bucket_elements: i64) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut filled = 0;
    for i in (0..sizes.len()).rev() {
        // The bucket being filled is the first while there is one.
        let cap = if out.len() == 1 { FIRST_BUCKET_ELEMENTS.min(bucket_elements) } else { bucket_elements };
        if out.is_empty() || (filled > 0 && filled + sizes[i] > cap) {
            out.push(Vec::new());
            filled = 0;
        }
        out.last_mut().expect("pushed").push(i);
        filled += sizes[i];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn buckets_run_backwards_with_a_small_first_one() {
        let first = FIRST_BUCKET_ELEMENTS;
        assert_eq!(buckets(&[10, 10, first, 5], 100 + first), vec![vec![3], vec![2, 1, 0]]);
        assert_eq!(buckets(&[4, 4, 4, 4], 8), vec![vec![3, 2], vec![1, 0]]);
        // A parameter larger than a bucket is a bucket of its own.
        assert_eq!(buckets(&[3, 20, 3], 8), vec![vec![2], vec![1], vec![0]]);
    }

    /// Two linear layers' gradients, with a reduce that doubles (two identical ranks summed):
    /// armed, every bucket is launched during backward, in order, and the gradients come back
    /// doubled; unarmed, `finish` does it all. Gradients of earlier micro-batches accumulate.
    #[test]
    fn an_armed_backward_reduces_buckets_as_they_complete() {
        tch::manual_seed(7);
        let opts = (Kind::Float, Device::Cpu);
        let params: Vec<Tensor> =
            [[6, 4], [6, 1], [3, 6], [3, 1]].iter().map(|s| Tensor::randn(*s, opts).set_requires_grad(true)).collect();
        let x = Tensor::randn([5, 4], opts);
        let loss = |p: &[Tensor]| {
            (x.matmul(&p[0].tr()) + p[1].tr()).tanh().matmul(&p[2].tr()).g_add(&p[3].tr()).square().sum(Kind::Float)
        };
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        let refs: Vec<&Tensor> = params.iter().collect();
        let reducer = GradReducer::new(&refs, 25, move |flat: &Tensor| {
            log.lock().unwrap().push(flat.numel());
            let _ = flat.shallow_clone().g_mul_scalar_(2.0);
            Ok(())
        })
        .unwrap();
        assert_eq!(reducer.buckets(), &[vec![3, 2], vec![1], vec![0]]);

        loss(&params).backward();
        let once: Vec<Tensor> = params.iter().map(|p| p.grad().copy()).collect();
        loss(&params).backward(); // a second micro-batch, armed: the step's last backward
        for p in &params {
            let mut g = p.grad();
            let _ = g.zero_();
        }
        reducer.arm().unwrap();
        loss(&params).backward();
        assert_eq!(*seen.lock().unwrap(), vec![21, 6, 24], "all three buckets launched during backward, in order");
        assert_eq!(reducer.finish().unwrap(), 3);
        for (p, g) in params.iter().zip(&once) {
            assert!(p.grad().allclose(&(g * 2.0), 1e-6, 1e-6, false));
        }

        // Unarmed, with two micro-batches accumulated: finish reduces the sum.
        for p in &params {
            let mut g = p.grad();
            let _ = g.zero_();
        }
        seen.lock().unwrap().clear();
        loss(&params).backward();
        loss(&params).backward();
        assert!(seen.lock().unwrap().is_empty());
        assert_eq!(reducer.finish().unwrap(), 0);
        assert_eq!(seen.lock().unwrap().len(), 3);
        for (p, g) in params.iter().zip(&once) {
            assert!(p.grad().allclose(&(g * 4.0), 1e-5, 1e-5, false));
        }
    }

    #[test]
    fn a_failing_reduce_is_reported_by_finish() {
        let p = Tensor::randn([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let reducer = GradReducer::new(&[&p], 8, |_: &Tensor| Err("NCCL error 6: peer vanished".to_owned())).unwrap();
        reducer.arm().unwrap();
        p.square().sum(Kind::Float).backward();
        let err = reducer.finish().unwrap_err();
        assert!(err.message.contains("peer vanished"), "{err}");
        // The next step starts clean.
        let ok = GradReducer::new(&[&p], 8, |_: &Tensor| Ok(())).unwrap();
        drop(reducer);
        p.square().sum(Kind::Float).backward();
        assert_eq!(ok.finish().unwrap(), 0);
    }
}
