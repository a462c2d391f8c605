//! Cost of reading a JVM's hsperfdata counters per sample, against the floor: a bare `pread` of
//! the same file, of the same size.
//!
//! Starts a real JVM (`java -XX:+UseG1GC -Xmx256m Retain busy`: a thread allocating all the time,
//! so collections run and the counters move), opens its counters with `JvmPerf::open` and times,
//! interleaved so that both see the same cache and CPU conditions:
//!
//! * one sample: `JvmPerf::sample()` — one `pread` of the used bytes, the header check, the
//!   values re-read at the offsets of the first parse, and the `JvmGc` summary;
//! * the floor: one `pread` of `last_read_bytes()` bytes at offset 0 through a second handle on
//!   the same file into a reused buffer.
//!
//! It prints the medians and 90th percentiles (wall time, CLOCK_THREAD_CPUTIME_ID) and the
//! ratio of the medians, plus, for scale, the one-time costs (finding and opening the file,
//! a full parse). The bar is "no more than one more small pread per JVM per sample".
//! No timing assertions. Without `java` on PATH it says so and exits.
//!
//! The JVM exits by itself when its stdin closes: at the end, or when this process dies.
//!
//! `cargo bench --bench hsperf`

use leak_sentinel::probe::hsperf::{self, JvmPerf};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/hsperf");
const WARMUP: usize = 500;
const ROUNDS: usize = 20_000;

struct Jvm(Child);

impl Drop for Jvm {
    fn drop(&mut self) {
        // Closing stdin ends Retain's loop: the JVM exits and deletes its hsperfdata file,
        // which a SIGKILL would leave behind. SIGKILL only if it does not within 5 s.
        drop(self.0.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Times `f` once: (wall ns, thread CPU ns).
fn time<T>(f: impl FnOnce() -> T) -> (u64, u64, T) {
    let (w, c) = (Instant::now(), thread_cpu_ns());
    let out = f();
    let cpu = thread_cpu_ns().saturating_sub(c);
    (w.elapsed().as_nanos() as u64, cpu, out)
}

fn quantile(v: &mut [u64], q: f64) -> f64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * q).round() as usize] as f64
}

fn main() {
    let started = Instant::now();
    let java_ok = Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !java_ok {
        println!("hsperf bench: `java` is not installed; nothing measured");
        return;
    }
    let mut child = Command::new("java")
        .args(["-XX:+UseG1GC", "-Xmx256m", "-cp", DATA, "Retain", "busy"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start java");
    let out = child.stdout.take().expect("stdout");
    let jvm = Jvm(child);
    let pid = jvm.0.id() as i32;
    let mut ready = String::new();
    BufReader::new(out)
        .read_line(&mut ready)
        .expect("read from the JVM");
    assert_eq!(ready.trim(), "ready");

    let deadline = Instant::now() + Duration::from_secs(20);
    let (open_ns, mut perf) = loop {
        let (wall, _, r) = time(|| JvmPerf::open(pid));
        match r {
            Ok(p) => break (wall, p),
            // Not created or not initialised yet: the JVM is starting.
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("JVM {pid}: {e}"),
        }
    };
    // Let the JVM run a few collections so the figures are those of a working JVM.
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..WARMUP {
        perf.sample().expect("sample");
    }
    let len = perf.last_read_bytes();
    let floor = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(perf.path())
        .expect("second handle");
    let mut buf = vec![0u8; len];
    let file_len = floor.metadata().expect("fstat").len();

    let (mut s_wall, mut s_cpu, mut p_wall, mut p_cpu) = (
        Vec::with_capacity(ROUNDS),
        Vec::with_capacity(ROUNDS),
        Vec::with_capacity(ROUNDS),
        Vec::with_capacity(ROUNDS),
    );
    let mut reparsed = 0;
    let mut entries = perf.data().header.num_entries;
    let mut last = None;
    for _ in 0..ROUNDS {
        let (w, c, r) = time(|| perf.sample());
        last = Some(r.expect("sample"));
        s_wall.push(w);
        s_cpu.push(c);
        if perf.data().header.num_entries != entries {
            entries = perf.data().header.num_entries;
            reparsed += 1;
        }
        let (w, c, r) = time(|| floor.read_at(&mut buf, 0));
        assert_eq!(r.expect("pread"), len);
        p_wall.push(w);
        p_cpu.push(c);
    }
    let (_, _, full) = time(|| hsperf::parse(&buf));
    let parsed = full.expect("the file parses");
    let mut parse_wall: Vec<u64> = (0..200).map(|_| time(|| hsperf::parse(&buf)).0).collect();

    let us = |ns: f64| ns / 1000.0;
    let (sw50, sw90) = (quantile(&mut s_wall, 0.5), quantile(&mut s_wall, 0.9));
    let (sc50, pc50) = (quantile(&mut s_cpu, 0.5), quantile(&mut p_cpu, 0.5));
    let (pw50, pw90) = (quantile(&mut p_wall, 0.5), quantile(&mut p_wall, 0.9));
    let gc = last.expect("sampled");
    println!(
        "JVM {pid} (G1, -Xmx256m, allocating): file {} ({file_len} bytes, {} entries, {len} bytes used and read per sample)",
        perf.path().display(),
        parsed.header.num_entries
    );
    println!(
        "  at the end: heap used {:.1} MiB of {:.1} MiB committed, {} collections, {} entry-table changes seen",
        gc.heap_used_bytes.unwrap_or(0) as f64 / 1048576.0,
        gc.heap_committed_bytes.unwrap_or(0) as f64 / 1048576.0,
        gc.total_invocations().unwrap_or(0),
        reparsed
    );
    println!("{ROUNDS} rounds, interleaved; medians (90th percentile):");
    println!(
        "  one sample, JvmPerf::sample()      wall {:7.2} µs ({:.2}), thread CPU {:7.2} µs",
        us(sw50),
        us(sw90),
        us(sc50)
    );
    println!(
        "  bare pread of the same {len} bytes  wall {:7.2} µs ({:.2}), thread CPU {:7.2} µs",
        us(pw50),
        us(pw90),
        us(pc50)
    );
    println!(
        "  ratio sample / bare pread: {:.2} (wall), {:.2} (CPU); extra per sample {:.2} µs",
        sw50 / pw50,
        sc50 / pc50,
        us(sw50 - pw50)
    );
    println!(
        "one-time: find + open + first parse {:.1} µs; a full parse of the used bytes {:.1} µs (median of 200)",
        us(open_ns as f64),
        us(quantile(&mut parse_wall, 0.5))
    );
    drop(jvm);
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
}
