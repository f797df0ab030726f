//! `helico run … --gpus N`: starts N ranks of the same command on this host, one per GPU, with
//! the variables torchrun would set (`train::ddp::World::from_env` reads them), and watches
//! them: when one fails, the others are stopped (SIGTERM, then SIGKILL after
//! `GRACE`), so no rank waits forever on a collective with a dead peer.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::exit::BadInput;

/// How long stopped ranks get to exit before they are killed.
const GRACE: Duration = Duration::from_secs(10);

/// Runs `args` (the command line after the program name, without `--gpus`) as `n` local
/// ranks and returns the exit code: rank 0's, or the first failing rank's.
pub fn ranks(n: usize, args: &[String]) -> anyhow::Result<i32> {
    let visible = if tch::Cuda::is_available() { tch::Cuda::device_count() as usize } else { 0 };
    if n > visible {
        bail!(BadInput(format!("--gpus {n} asks for more GPUs than the {visible} this machine has usable")));
    }
    // A free port for rank 0's rendezvous: bound, read, released (a race with another process
    // taking it in between is possible but harmless: rank 0 then fails and says so).
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).context("no free TCP port")?.port();
    let exe = std::env::current_exe().context("cannot find the helico executable")?;
    let mut children: Vec<Child> = Vec::new();
    for rank in 0..n {
        let child = Command::new(&exe)
            .args(args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", n.to_string())
            .env("LOCAL_WORLD_SIZE", n.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            // Only rank 0 reports (its stdout may be JSON); every rank's stderr shows.
            .stdout(if rank == 0 { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .with_context(|| format!("cannot start rank {rank}"));
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                stop(&mut children);
                return Err(e);
            }
        }
    }
    let mut codes: Vec<Option<i32>> = vec![None; n];
    loop {
        for (rank, child) in children.iter_mut().enumerate() {
            if codes[rank].is_none()
                && let Some(status) = child.try_wait().context("cannot watch a rank")?
            {
                let code = status.code().unwrap_or(1);
                codes[rank] = Some(code);
                if code != 0 && code != i32::from(crate::exit::INTERRUPTED) {
                    eprintln!("helico: rank {rank} exited with {status}; stopping the other ranks");
                    stop(&mut children);
                    return Ok(code);
                }
            }
        }
        if codes.iter().all(Option::is_some) {
            return Ok(codes[0].unwrap_or(1));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM to every rank still running, then SIGKILL to those left after `GRACE`.
fn stop(children: &mut [Child]) {
    for c in children.iter() {
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    }
    let deadline = Instant::now() + GRACE;
    for c in children.iter_mut() {
        while matches!(c.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
