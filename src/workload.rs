//! Built-in workloads: known-bad and known-good targets for the demo, the tests and users who
//! want to see the tool work. `leaky` retains memory and leaks TCP connections to a local
//! listener at set rates; `clean` churns allocations and connections but keeps nothing.

use anyhow::{Context, Result};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(200);

/// Runs a workload until `seconds` (or forever), then exits with `exit_code` (default 0).
pub fn run(
    kind: &str,
    seconds: Option<f64>,
    mib_per_min: f64,
    fds_per_min: f64,
    exit_code: Option<i32>,
) -> Result<i32> {
    let start = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback listener")?;
    let addr = listener.local_addr()?;
    // A warm working set, as a service has after start-up.
    let mut cache: Vec<Vec<u8>> = (0..16).map(|i| vec![i as u8 + 1; 1 << 20]).collect();
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
                "unknown workload '{other}'; use leaky, clean or noisy"
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
