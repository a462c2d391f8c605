//! The live session holds no Rust heap per sample: a run on the fake clock is measured by a
//! counting allocator after 1,000 samples and again after 20,000 — past the 8,192 points of the
//! thinned series the checks judge, which has been halved twice by then — at the same point of
//! the loop's cycle (two samples after a check), and the growth in between must be nothing per
//! sample. The checks judge that series in memory and read nothing back; SQLite's own cache and
//! glibc's retention go through libc's malloc and are not seen here, on purpose: this test is
//! about what the sentinel's Rust code keeps (docs/cost.md has the whole-process figures).

use clap::Parser;
use leak_sentinel::cli::{Cli, Command};
use leak_sentinel::clock::{FakeClock, FakeEvent, Wake};
use leak_sentinel::exit::Exit;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Counts the bytes the Rust code of this test binary holds (live) and the most it held (peak).
/// Written by hand rather than taken from a crate: it is thirty lines, and the one thing it must
/// do (count exactly what goes through `System`, allocate nothing itself) is easiest to see here.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is passed on unchanged to `System`; only the counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; on failure the old block stays and so does its count.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size);
            LIVE.fetch_sub(layout.size(), Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Warm-up of the run, seconds (also the first check's offset: checks come at warm-up end plus
/// whole multiples of [`CHECK_EVERY`]).
const WARMUP: u64 = 5;
/// Seconds between checks. Rare, so that the few bytes each check leaves in the test harness's
/// captured output (its log line) stay far below the threshold; a multiple of the detail
/// interval, the tree scan (30 s) and the status refresh (10 s), so that the measured points
/// are at the same phase of every cadence of the loop.
const CHECK_EVERY: u64 = 1000;

/// A run attached to nothing but its own `sleep`, sampled every (fake) second, that neither
/// passes nor fails before the test stops it.
fn settings() -> leak_sentinel::settings::RunSettings {
    let warmup = format!("{WARMUP}s");
    let check = format!("{CHECK_EVERY}s");
    let argv = [
        "leak-sentinel",
        "run",
        "--name",
        "memory",
        "--duration",
        "100h",
        "--warmup",
        &warmup,
        "--check-every",
        &check,
        "--sample-every",
        "1s",
        "--detail-every",
        "100s",
        "--plain",
        "--",
        "sleep",
        "100000",
    ];
    let cli = Cli::try_parse_from(argv).expect("valid flags");
    let Command::Run(args) = cli.command else {
        panic!("a run command");
    };
    leak_sentinel::config::resolve(&args).expect("settings")
}

/// Plans a reading of the live bytes at `at` (fake monotonic time) into the returned cell.
fn read_live_at(clock: &FakeClock, at: Duration) -> Arc<AtomicUsize> {
    let cell = Arc::new(AtomicUsize::new(0));
    let c = cell.clone();
    // Runs inside the session's wait for the next sample: nothing of the loop is half done.
    clock.at(
        at,
        FakeEvent::Call(Arc::new(move || c.store(LIVE.load(Relaxed), Relaxed))),
    );
    cell
}

#[test]
fn the_session_keeps_no_heap_per_sample() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = FakeClock::new(1_700_000_000.0);
    // Samples come at whole seconds from 0; both readings come 2.5 s after a check, after
    // 1,008 and 20,008 samples.
    let early_n = WARMUP + CHECK_EVERY + 3;
    let late_n = WARMUP + 20 * CHECK_EVERY + 3;
    let at = |n: u64| Duration::from_secs(n) - Duration::from_millis(500);
    let early = read_live_at(&clock, at(early_n));
    let late = read_live_at(&clock, at(late_n));
    clock.at(at(late_n + 10), FakeEvent::Wake(Wake::Signal(15)));
    let before = LIVE.load(Relaxed);
    let real = Instant::now();
    let (_tx, wake) = std::sync::mpsc::channel();
    let exit = leak_sentinel::session::run_with(dir.path(), settings(), true, clock, wake)
        .expect("the run ends");
    let took = real.elapsed();
    assert_eq!(exit, Exit::Interrupted, "stopped by the planned signal");
    let (early, late) = (early.load(Relaxed), late.load(Relaxed));
    let (peak, after) = (PEAK.load(Relaxed), LIVE.load(Relaxed));
    let per_sample = (late as f64 - early as f64) / (late_n - early_n) as f64;
    let figures = format!(
        "live bytes: {before} before the run, {early} after {early_n} samples, {late} after \
         {late_n} samples ({per_sample:+.2} per sample), {after} after the run, peak {peak}; \
         the run took {took:.1?}"
    );
    println!("{figures}");
    assert!(early > 0 && late > 0, "both readings were taken: {figures}");
    // A sample kept whole costs about 200 bytes (every metric, its time). Under half a byte per
    // sample leaves room for the few bytes each check's log line leaves in the harness's
    // captured output (19 checks in between), and for nothing else.
    assert!(
        per_sample < 0.5,
        "the session keeps heap per sample: {figures}"
    );
}
