//! NCCL: the copy libtorch loaded, called on libtorch's current stream.
//!
//! `libtorch_cuda.so` (linked with `--no-as-needed`, see `build.rs`) needs `libnccl.so.2`,
//! so that library is in the process's global scope from the start; its functions are found
//! with `dlsym(RTLD_DEFAULT, …)`. This is how helico guarantees one NCCL per process: a loader
//! that opens NCCL by file name (cudarc's asks for `libnccl.so`, which the PyPI wheel does not
//! ship) can find a second, different copy on the system, and two copies in one process fail
//! at `ncclCommInitRank` (rust_ecosystem.md §2, seen on an H200).
//!
//! Tensors are passed by their device pointers; collectives run on the stream libtorch uses,
//! so they are ordered with the kernels before and after them and nothing synchronises.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

use tch::{Kind, Tensor};

use super::Error;

/// `ncclUniqueId`: the 128 bytes rank 0 creates and every rank needs to join.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UniqueId(pub [u8; 128]);

type NcclComm = *mut c_void;

type GetUniqueId = unsafe extern "C" fn(*mut UniqueId) -> c_int;
type CommInitRank = unsafe extern "C" fn(*mut NcclComm, c_int, UniqueId, c_int) -> c_int;
type AllReduce = unsafe extern "C" fn(*const c_void, *mut c_void, usize, c_int, c_int, NcclComm, *mut c_void) -> c_int;
type CommFn = unsafe extern "C" fn(NcclComm) -> c_int;
type GetErrorString = unsafe extern "C" fn(c_int) -> *const c_char;
type GetVersion = unsafe extern "C" fn(*mut c_int) -> c_int;

/// The NCCL functions helico uses, from the already-loaded library.
struct Api {
    get_unique_id: GetUniqueId,
    comm_init_rank: CommInitRank,
    all_reduce: AllReduce,
    comm_destroy: CommFn,
    comm_abort: CommFn,
    get_error_string: GetErrorString,
    get_version: GetVersion,
}

/// `ncclDataType_t` and `ncclRedOp_t` values (nccl.h).
const NCCL_FLOAT32: c_int = 7;
const NCCL_FLOAT64: c_int = 8;
const NCCL_BFLOAT16: c_int = 9;
const NCCL_SUM: c_int = 0;

fn api() -> Result<&'static Api, Error> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| {
        let find = |name: &CStr| {
            // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the global scope.
            let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
            if p.is_null() {
                Err(format!("{} is not in this process (libtorch loaded no NCCL)", name.to_string_lossy()))
            } else {
                Ok(p)
            }
        };
        // SAFETY: each symbol is the NCCL 2.x function of that name, with this signature.
        unsafe {
            Ok(Api {
                get_unique_id: std::mem::transmute::<*mut c_void, GetUniqueId>(find(c"ncclGetUniqueId")?),
                comm_init_rank: std::mem::transmute::<*mut c_void, CommInitRank>(find(c"ncclCommInitRank")?),
                all_reduce: std::mem::transmute::<*mut c_void, AllReduce>(find(c"ncclAllReduce")?),
                comm_destroy: std::mem::transmute::<*mut c_void, CommFn>(find(c"ncclCommDestroy")?),
                comm_abort: std::mem::transmute::<*mut c_void, CommFn>(find(c"ncclCommAbort")?),
                get_error_string: std::mem::transmute::<*mut c_void, GetErrorString>(find(c"ncclGetErrorString")?),
                get_version: std::mem::transmute::<*mut c_void, GetVersion>(find(c"ncclGetVersion")?),
            })
        }
    })
    .as_ref()
    .map_err(|message| Error { op: "nccl", message: message.clone() })
}

fn check(op: &'static str, api: &Api, status: c_int) -> Result<(), Error> {
    if status == 0 {
        return Ok(());
    }
    // SAFETY: NCCL returns a static string for any result code.
    let text = unsafe { CStr::from_ptr((api.get_error_string)(status)) }.to_string_lossy().into_owned();
    Err(Error { op, message: format!("NCCL error {status}: {text}") })
}

/// The loaded NCCL's version code (e.g. 22809 for 2.28.9).
pub fn version() -> Result<i32, Error> {
    let api = api()?;
    let mut v = 0;
    // SAFETY: writes one int.
    check("nccl_version", api, unsafe { (api.get_version)(&mut v) })?;
    Ok(v)
}

impl UniqueId {
    /// A fresh id (rank 0 makes it and hands it to the others).
    pub fn new() -> Result<UniqueId, Error> {
        let api = api()?;
        let mut id = UniqueId([0; 128]);
        // SAFETY: writes 128 bytes.
        check("nccl_unique_id", api, unsafe { (api.get_unique_id)(&mut id) })?;
        Ok(id)
    }
}

/// One rank's NCCL communicator, on the CUDA device current when it was made.
pub struct Comm {
    raw: NcclComm,
    pub rank: usize,
    pub world: usize,
}

// SAFETY: an NCCL communicator may be used from any thread, one call at a time (&mut-free
// calls here are serialised by the trainer, which owns the Comm).
unsafe impl Send for Comm {}

impl Comm {
    /// Joins the communicator `id` as `rank` of `world`; blocks until every rank has joined.
    /// The current CUDA device (`super::set_device`) must be this rank's GPU.
    pub fn init(id: &UniqueId, rank: usize, world: usize) -> Result<Comm, Error> {
        let api = api()?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: writes the communicator handle.
        check("nccl_init", api, unsafe { (api.comm_init_rank)(&mut raw, world as c_int, *id, rank as c_int) })?;
        Ok(Comm { raw, rank, world })
    }

    /// Sums `t` over all ranks, in place, on libtorch's current stream (no synchronisation).
    /// `t`: contiguous, on this rank's GPU, fp32, fp64 or bf16.
    pub fn all_reduce_sum(&self, t: &Tensor) -> Result<(), Error> {
        let api = api()?;
        let dtype = match t.kind() {
            Kind::Float => NCCL_FLOAT32,
            Kind::Double => NCCL_FLOAT64,
            Kind::BFloat16 => NCCL_BFLOAT16,
            k => return Err(Error { op: "nccl_all_reduce", message: format!("{k:?} tensors are not reduced") }),
        };
        let tch::Device::Cuda(device) = t.device() else {
            return Err(Error { op: "nccl_all_reduce", message: "the tensor is not on a GPU".into() });
        };
        if !t.is_contiguous() {
            return Err(Error { op: "nccl_all_reduce", message: "the tensor is not contiguous".into() });
        }
        let stream = super::current_stream(device)?;
        let p = t.data_ptr();
        // SAFETY: p addresses numel elements of this dtype on the communicator's device; the
        // tensor outlives the call's enqueue, and libtorch's allocator orders reuse of its
        // memory on this same stream.
        check("nccl_all_reduce", api, unsafe { (api.all_reduce)(p, p, t.numel(), dtype, NCCL_SUM, self.raw, stream) })
    }

    /// Tears the communicator down without waiting for peers (after a peer died).
    pub fn abort(mut self) {
        if let Ok(api) = api() {
            // SAFETY: the handle is live; abort frees it.
            let _ = unsafe { (api.comm_abort)(self.raw) };
        }
        self.raw = std::ptr::null_mut();
    }
}

impl Drop for Comm {
    fn drop(&mut self) {
        if self.raw.is_null() {
            return;
        }
        if let Ok(api) = api() {
            // SAFETY: the handle is live and dropped once.
            let _ = unsafe { (api.comm_destroy)(self.raw) };
        }
    }
}
