//! Built-in workloads: known-bad and known-good targets for the demo, the tests and users who
//! want to see the tool work. `leaky` retains memory and leaks TCP connections to a local
//! listener at set rates; `clean` churns allocations and connections but keeps nothing.

use anyhow::{Context, Result};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(200);

/// One kind of resource a `single` workload leaks, for diagnosis tests and demos.
enum Leak {
    Tcp(String),
    Files(std::path::PathBuf),
    Pipes,
    Eventfd,
    Threads,
    Anon,
}

fn parse_leak(s: &str) -> Result<Leak> {
    Ok(match s.split_once(':') {
        Some(("tcp", addr)) => Leak::Tcp(addr.to_string()),
        Some(("files", dir)) => Leak::Files(dir.into()),
        _ => match s {
            "pipes" => Leak::Pipes,
            "eventfd" => Leak::Eventfd,
            "threads" => Leak::Threads,
            "anon" => Leak::Anon,
            other => {
                return Err(crate::exit::usage(format!(
                    "--leak: '{other}' is not one of tcp:HOST:PORT, files:DIR, pipes, eventfd, threads, anon"
                )));
            }
        },
    })
}

/// Leaks one `what` every `60 / per_min` seconds until killed (or `seconds`).
fn single(what: &str, per_min: f64, seconds: Option<f64>) -> Result<i32> {
    use std::os::fd::OwnedFd;
    let leak = parse_leak(what)?;
    let start = Instant::now();
    let every = Duration::from_secs_f64(60.0 / per_min.max(0.001));
    let mut kept_fds: Vec<OwnedFd> = Vec::new();
    let mut kept_streams: Vec<TcpStream> = Vec::new();
    let mut kept_files: Vec<std::fs::File> = Vec::new();
    let mut kept_mem: Vec<Vec<u8>> = Vec::new();
    let mut n = 0u64;
    loop {
        if seconds.is_some_and(|s| start.elapsed().as_secs_f64() >= s) {
            return Ok(0);
        }
        n += 1;
        match &leak {
            Leak::Tcp(addr) => kept_streams.push(
                TcpStream::connect(addr.as_str())
                    .with_context(|| format!("connecting to {addr}"))?,
            ),
            Leak::Files(dir) => {
                let p = dir.join(format!("leak-{}-{n}.log", std::process::id()));
                kept_files.push(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&p)
                        .with_context(|| format!("opening {}", p.display()))?,
                );
            }
            Leak::Pipes => {
                let (r, w) = nix::unistd::pipe().context("pipe")?;
                kept_fds.push(r);
                kept_fds.push(w);
            }
            Leak::Eventfd => {
                kept_fds.push(nix::sys::eventfd::EventFd::new().context("eventfd")?.into())
            }
            Leak::Threads => {
                std::thread::spawn(|| {
                    loop {
                        std::thread::park();
                    }
                });
            }
            // 1 MiB per tick, touched: anonymous memory (large allocations are their own mmaps).
            Leak::Anon => kept_mem.push(vec![0x3C; 1 << 20]),
        }
        std::thread::sleep(every);
    }
}

/// Runs a workload until `seconds` (or forever), then exits with `exit_code` (default 0).
#[allow(clippy::too_many_arguments)]
pub fn run(
    kind: &str,
    seconds: Option<f64>,
    mib_per_min: f64,
    fds_per_min: f64,
    exit_code: Option<i32>,
    leak: Option<&str>,
    per_min: f64,
    cache_mib: usize,
) -> Result<i32> {
    if kind == "single" {
        let what = leak.ok_or_else(|| crate::exit::usage("workload single needs --leak"))?;
        return single(what, per_min, seconds);
    }
    let start = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback listener")?;
    let addr = listener.local_addr()?;
    // A warm working set, as a service has after start-up.
    let mut cache: Vec<Vec<u8>> = (0..cache_mib.max(1))
        .map(|i| vec![i as u8 + 1; 1 << 20])
        .collect();
    let mut leaked_mem: Vec<Vec<u8>> = Vec::new();
    let mut leaked_conns: Vec<(TcpStream, TcpStream)> = Vec::new();
    let mut fd_debt = 0.0;
    let mut tick: u64 = 0;
    let (leaky, noisy) = match kind {
        "leaky" => (true, false),
        "clean" => (false, false),
        // Bounded but jumpy: 16 MiB held for 2 s, released for 2 s. A short run cannot
        // prove it clean (the detector must say inconclusive), a long one can.
        "noisy" => (false, true),
        other => {
            return Err(crate::exit::usage(format!(
                "unknown workload '{other}'; use leaky, clean, noisy or single"
            )));
        }
    };
    let mut swing: Option<Vec<u8>> = None;
    let ticks_per_min = 60.0 / TICK.as_secs_f64();
    loop {
        if let Some(s) = seconds {
            if start.elapsed().as_secs_f64() >= s {
                return Ok(exit_code.unwrap_or(0));
            }
        }
        tick += 1;
        // Churn: short-lived buffers and a connection opened and closed each tick.
        let size = 4096 * (1 + (tick * 7919 % 48) as usize);
        let mut buf = vec![0u8; size];
        buf.iter_mut().step_by(4096).for_each(|b| *b = tick as u8);
        let slot = (tick % cache.len() as u64) as usize;
        cache[slot][(tick as usize * 4096) % (1 << 20)] ^= buf[0];
        drop(buf);
        if let Ok(mut c) = TcpStream::connect(addr) {
            let _ = c.write_all(b"ping");
            if let Ok((s, _)) = listener.accept() {
                drop(s);
            }
        }
        if noisy {
            let on = (start.elapsed().as_secs() / 2) % 2 == 1;
            match (&swing, on) {
                (None, true) => swing = Some(vec![0x5A; 16 << 20]),
                (Some(_), false) => swing = None,
                _ => {}
            }
        }
        if leaky {
            let bytes = (mib_per_min * 1_048_576.0 / ticks_per_min) as usize;
            leaked_mem.push(vec![0xA5; bytes.max(1)]);
            fd_debt += fds_per_min / ticks_per_min;
            while fd_debt >= 2.0 {
                // Each leaked connection holds two FDs: the client and the accepted side.
                let client =
                    TcpStream::connect(addr).context("connecting to the local listener")?;
                let (server, _) = listener.accept().context("accepting")?;
                leaked_conns.push((client, server));
                fd_debt -= 2.0;
            }
        }
        std::thread::sleep(TICK);
    }
}
