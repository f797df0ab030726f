//! Data parallelism: one process per GPU, gradients summed over NCCL (`sys::nccl`).
//!
//! Every rank holds the whole model, initialised from the same seed, and applies the same
//! update, so the replicas stay equal. The global batch is the configured one:
//! `train.batch_size × train.grad_accum` windows per step whatever the number of GPUs, each
//! rank taking `grad_accum / world` of the micro-batches (the stream's micro-batch j of a step
//! goes to rank j mod world, with the seed of j), so the same experiment on 1 and 2 GPUs
//! computes the same step up to summation order: world size is not part of what a run means.
//!
//! Ranks find each other through the variables torchrun and SLURM set (RANK, WORLD_SIZE,
//! LOCAL_RANK, MASTER_ADDR, MASTER_PORT; SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID): rank 0
//! serves NCCL's unique id over TCP at MASTER_ADDR:MASTER_PORT (the next port under torchrun,
//! whose agent holds MASTER_PORT). `helico run --gpus N` sets them for N local ranks.
//!
//! Gradients are summed in buckets of up to `BUCKET_ELEMENTS` fp32 values while the step's
//! last backward runs: `sys::reducer` hooks each parameter's gradient accumulator and hands a
//! bucket to NCCL as soon as its gradients are complete, on the stream the backward runs on,
//! so communication overlaps the rest of the backward. Parameters are bucketed in reverse
//! creation order (the VarStore's), which for helico's models is close to the order backward
//! completes them. Earlier micro-batches of a step only accumulate. With
//! `runtime.overlap_grad_reduce = false` the same buckets are reduced after the backward.

use std::cell::{Cell, OnceCell};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tch::{Tensor, nn};

use crate::exit::BadInput;
use crate::sys::nccl::{Comm, UniqueId};
use crate::sys::reducer::GradReducer;

/// Gradients per all-reduce: 25M fp32 values (100 MB), PyTorch DDP's default bucket size.
const BUCKET_ELEMENTS: i64 = 25 << 20;
/// How long ranks wait for each other to join before giving up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a rank waits for a step to finish before concluding a peer died: longer than
/// rank 0's evaluation and checkpoint between two steps.
const STALL_TIMEOUT: Duration = Duration::from_secs(600);
/// The id rank 0 sends when there is nothing to train (the run already completed): NCCL never
/// makes an all-zero id.
const NOTHING_TO_DO: [u8; 128] = [0; 128];

/// Where this process sits among the ranks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    pub rank: usize,
    pub size: usize,
    /// The GPU index on this host.
    pub local_rank: usize,
    /// Rank 0's rendezvous address.
    pub master: String,
}

impl World {
    /// The world the environment describes (torchrun's variables, else SLURM's), or `None`
    /// for a single process. Missing or malformed variables are bad input, named.
    pub fn from_env() -> anyhow::Result<Option<World>> {
        World::from_vars(|k| std::env::var(k).ok())
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<World>> {
        let (rank_var, size_var, local_var) = if var("WORLD_SIZE").is_some() {
            ("RANK", "WORLD_SIZE", "LOCAL_RANK")
        } else if var("SLURM_NTASKS").is_some() && var("MASTER_ADDR").is_some() {
            ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID")
        } else {
            return Ok(None);
        };
        let number = |name: &str| -> anyhow::Result<usize> {
            let raw = var(name).ok_or_else(|| {
                BadInput(format!("{size_var} is set but {name} is not: set both, or neither for one process"))
            })?;
            raw.parse().map_err(|_| BadInput(format!("{name} = \"{raw}\" is not a rank number")).into())
        };
        let size = number(size_var)?;
        if size <= 1 {
            return Ok(None);
        }
        let (rank, local_rank) = (number(rank_var)?, number(local_var)?);
        if rank >= size {
            bail!(BadInput(format!("{rank_var} = {rank} is not below {size_var} = {size}")));
        }
        let addr = var("MASTER_ADDR")
            .ok_or_else(|| BadInput("MASTER_ADDR is not set: rank 0's host name or address".into()))?;
        let port: u16 = var("MASTER_PORT")
            .ok_or_else(|| BadInput("MASTER_PORT is not set: a free TCP port on rank 0's host".into()))?
            .parse()
            .map_err(|_| BadInput("MASTER_PORT is not a port number".into()))?;
        // torchrun's agent serves its own store on MASTER_PORT.
        let port = if var("TORCHELASTIC_RUN_ID").is_some() { port.wrapping_add(1) } else { port };
        Ok(Some(World { rank, size, local_rank, master: format!("{addr}:{port}") }))
    }
}

/// Tells the other ranks, waiting to join, that rank 0 will not train (the run already
/// completed, or cannot start), so they exit instead of timing out.
pub fn dismiss(world: &World) -> anyhow::Result<()> {
    serve(world, &UniqueId(NOTHING_TO_DO))
}

/// Rank 0 hands NCCL's unique id to every other rank over TCP.
fn rendezvous(world: &World) -> anyhow::Result<UniqueId> {
    if world.rank == 0 {
        let id = UniqueId::new()?;
        serve(world, &id)?;
        return Ok(id);
    }
    let deadline = Instant::now() + JOIN_TIMEOUT;
    loop {
        let addrs =
            world.master.to_socket_addrs().with_context(|| format!("cannot resolve MASTER_ADDR {}", world.master))?;
        for addr in addrs {
            if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                stream.set_read_timeout(Some(JOIN_TIMEOUT))?;
                let mut id = [0u8; 128];
                stream.read_exact(&mut id).with_context(|| format!("rank {}: rank 0 sent no id", world.rank))?;
                return Ok(UniqueId(id));
            }
        }
        if Instant::now() > deadline {
            bail!("rank {}: rank 0 did not answer at {} within {JOIN_TIMEOUT:?}", world.rank, world.master);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Rank 0: sends `id` to each of the other ranks as they connect.
fn serve(world: &World, id: &UniqueId) -> anyhow::Result<()> {
    let deadline = Instant::now() + JOIN_TIMEOUT;
    {
        let listener =
            TcpListener::bind(&world.master).with_context(|| format!("rank 0 cannot listen on {}", world.master))?;
        listener.set_nonblocking(true)?;
        let mut joined = 0;
        while joined < world.size - 1 {
            match listener.accept() {
                Ok((mut peer, _)) => {
                    peer.set_nonblocking(false)?;
                    peer.write_all(&id.0)?;
                    joined += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => {
                    bail!("rank 0: {joined} of {} other ranks joined within {JOIN_TIMEOUT:?} ({e})", world.size - 1)
                }
            }
        }
    }
    Ok(())
}

/// One rank's link to the others.
pub struct Ddp {
    pub world: World,
    /// Shared with the reducer's hooks, which run on libtorch's backward thread while the
    /// trainer's thread waits in `backward()`: never two users at once, but two threads.
    comm: Arc<Mutex<Comm>>,
    /// Seconds since the epoch of the last completed step, for the watchdog.
    progress: Arc<AtomicU64>,
    /// Hooked on the first step, when the parameters exist.
    reducer: OnceCell<GradReducer>,
    overlap: bool,
    /// Whether rank 0 said how the gradients are bucketed (after the first step).
    announced: Cell<bool>,
}

impl Ddp {
    /// Makes this rank's GPU current, joins the others and starts the watchdog: if no step
    /// completes for `STALL_TIMEOUT` (a peer died mid-collective and NCCL waits forever), the
    /// process says so and exits, so no rank hangs. `None` when rank 0 dismissed the ranks.
    pub fn connect(world: World, overlap: bool) -> anyhow::Result<Option<Ddp>> {
        crate::sys::set_device(world.local_rank)?;
        let id = rendezvous(&world)?;
        if id.0 == NOTHING_TO_DO {
            return Ok(None);
        }
        let comm =
            Comm::init(&id, world.rank, world.size).with_context(|| format!("rank {} cannot join NCCL", world.rank))?;
        let progress = Arc::new(AtomicU64::new(now_secs()));
        let watched = Arc::clone(&progress);
        let rank = world.rank;
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let idle = now_secs().saturating_sub(watched.load(Ordering::Relaxed));
                if idle > STALL_TIMEOUT.as_secs() {
                    eprintln!(
                        "helico: rank {rank}: no step finished for {idle} s; a peer rank probably died. Exiting."
                    );
                    std::process::exit(1);
                }
            }
        });
        let comm = Arc::new(Mutex::new(comm));
        Ok(Some(Ddp { world, comm, progress, reducer: OnceCell::new(), overlap, announced: Cell::new(false) }))
    }

    /// Marks a step as done (the watchdog's heartbeat).
    pub fn step_done(&self) {
        self.progress.store(now_secs(), Ordering::Relaxed);
    }

    /// Call before the step's last backward: with overlap on, that backward sums each
    /// bucket of `vs`'s gradients as soon as it is complete.
    pub fn before_last_backward(&self, vs: &nn::VarStore) -> anyhow::Result<()> {
        if self.overlap {
            self.reducer(vs)?.arm()?;
        }
        Ok(())
    }

    /// Call after the step's last backward: sums what that backward did not, and writes the
    /// sums into the gradients. Returns how many buckets were summed during the backward.
    pub fn reduce_grads(&self, vs: &nn::VarStore) -> anyhow::Result<usize> {
        let reducer = self.reducer(vs)?;
        let during = reducer.finish()?;
        if !self.announced.replace(true) && self.world.rank == 0 {
            eprintln!(
                "note: gradients are summed in {} buckets of at most {} MB; {during} of them while backward runs",
                reducer.buckets().len(),
                (BUCKET_ELEMENTS * 4) >> 20
            );
        }
        Ok(during)
    }

    fn reducer(&self, vs: &nn::VarStore) -> anyhow::Result<&GradReducer> {
        if let Some(r) = self.reducer.get() {
            return Ok(r);
        }
        // Creation order: the same on every rank, and close to forward order.
        let params = vs.trainable_variables();
        let comm = Arc::clone(&self.comm);
        let reducer = GradReducer::new(&params.iter().collect::<Vec<_>>(), BUCKET_ELEMENTS, move |flat: &Tensor| {
            comm.lock()
                .map_err(|_| "the communicator lock is poisoned".to_owned())?
                .all_reduce_sum(flat)
                .map_err(|e| e.to_string())
        })?;
        Ok(self.reducer.get_or_init(|| reducer))
    }

    /// Sums a small fp64 tensor (step statistics) over the ranks, in place.
    pub fn all_reduce_stats(&self, t: &Tensor) -> anyhow::Result<()> {
        let comm = self.comm.lock().map_err(|_| anyhow::anyhow!("the communicator lock is poisoned"))?;
        Ok(comm.all_reduce_sum(t)?)
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn world(vars: &[(&str, &str)]) -> anyhow::Result<Option<World>> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        World::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn torchrun_and_slurm_variables() {
        assert_eq!(world(&[]).unwrap(), None);
        assert_eq!(world(&[("WORLD_SIZE", "1"), ("RANK", "0"), ("LOCAL_RANK", "0")]).unwrap(), None);
        let torchrun = [
            ("WORLD_SIZE", "4"),
            ("RANK", "3"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node0"),
            ("MASTER_PORT", "29500"),
            ("TORCHELASTIC_RUN_ID", "x"),
        ];
        assert_eq!(
            world(&torchrun).unwrap(),
            Some(World { rank: 3, size: 4, local_rank: 1, master: "node0:29501".into() })
        );
        let slurm = [
            ("SLURM_NTASKS", "2"),
            ("SLURM_PROCID", "1"),
            ("SLURM_LOCALID", "0"),
            ("MASTER_ADDR", "10.0.0.1"),
            ("MASTER_PORT", "1234"),
        ];
        assert_eq!(
            world(&slurm).unwrap(),
            Some(World { rank: 1, size: 2, local_rank: 0, master: "10.0.0.1:1234".into() })
        );
        // SLURM without a rendezvous address is one process per task, not a world.
        assert_eq!(world(&slurm[..3]).unwrap(), None);
    }

    #[test]
    fn malformed_variables_are_named() {
        let err = world(&[("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")]).unwrap_err().to_string();
        assert!(err.contains("RANK is not"), "{err}");
        let err = world(&[("WORLD_SIZE", "2"), ("RANK", "2"), ("LOCAL_RANK", "0")]).unwrap_err().to_string();
        assert!(err.contains("RANK = 2 is not below WORLD_SIZE = 2"), "{err}");
        let err = world(&[("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0")]).unwrap_err().to_string();
        assert!(err.contains("MASTER_ADDR"), "{err}");
    }
}
