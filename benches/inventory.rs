//! Cost of the expensive diagnostics on large targets: the FD inventory
//! (`probe::fds::inventory`) of a process holding 10,000 descriptors and the memory-map
//! snapshot (`probe::maps::snapshot`) of a process holding 5,000 mappings.
//!
//! The bench re-executes itself twice as the targets (env `INVENTORY_CHILD=fds` / `maps`):
//!
//! * `fds`: raises RLIMIT_NOFILE to the hard limit, then holds 300 pipes (600 FDs), 300 loopback
//!   TCP connections with both ends (600 FDs) and their listener, 100 eventfds, 50 /dev/null and
//!   regular files of a temp dir (300 files in 3 subdirectories, opened repeatedly) up to exactly
//!   10,000 open descriptors;
//! * `maps`: 5,000 anonymous mappings of 2 pages separated by unmapped one-page gaps, alternating
//!   PROT_READ and PROT_READ|PROT_WRITE (the writable ones touched, so RSS is nonzero).
//!
//! Both report readiness on stdout and then sleep until killed. The counts are checked against
//! /proc/PID/fd and /proc/PID/maps, then each call is timed (wall and CLOCK_THREAD_CPUTIME_ID)
//! once to warm up and `REPS` times measured; median and min are printed with the per-item cost
//! and what they mean for the runner's pacing (never more often than 100 × the measured cost; CPU
//! share at the default 30 s detail cadence). No timing assertions.
//!
//! Children are killed by a guard's Drop (also on panic) and, should this process die without
//! unwinding (SIGINT, SIGKILL), by PR_SET_PDEATHSIG.
//!
//! `cargo bench --bench inventory`

use leak_sentinel::diagnose::fds::FdKind;
use leak_sentinel::probe::fds;
use leak_sentinel::probe::maps;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "INVENTORY_CHILD";
const PARENT_ENV: &str = "INVENTORY_PARENT";
const DIR_ENV: &str = "INVENTORY_DIR";

const TARGET_FDS: usize = 10_000;
const PIPES: usize = 300;
const TCP_CONNS: usize = 300;
const EVENTFDS: usize = 100;
const DEV_NULLS: usize = 50;
const SUBDIRS: [&str; 3] = ["logs", "data", "cache"];
const FILES_PER_DIR: usize = 100;

const MAPPINGS: usize = 5_000;
const MAPPING_PAGES: usize = 2;

const REPS: usize = 11;
/// The runner never takes an inventory more often than this many times its measured cost.
const PACING_FACTOR: f64 = 100.0;
/// Default cadence of detail samples.
const DETAIL_CADENCE_S: f64 = 30.0;

// ---------------------------------------------------------------- children

/// Dies with the parent, and checks the parent did not die before the prctl.
fn die_with_parent() {
    // SAFETY: plain syscall with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    assert_eq!(r, 0, "prctl(PR_SET_PDEATHSIG)");
    let parent: i32 = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("INVENTORY_PARENT set to the parent pid");
    // SAFETY: plain syscall.
    if unsafe { libc::getppid() } != parent {
        std::process::exit(1);
    }
}

fn report_ready_and_sleep(msg: &str) -> ! {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{msg}").expect("write readiness");
    out.flush().expect("flush readiness");
    loop {
        // SAFETY: plain syscall; we only wait to be killed.
        unsafe {
            libc::pause();
        }
    }
}

fn open_fd_count() -> usize {
    // read_dir holds one extra descriptor of its own while listing.
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
        - 1
}

fn fds_child() -> ! {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid out-pointer.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(r, 0, "getrlimit(RLIMIT_NOFILE)");
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: lim is a valid pointer.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(r, 0, "setrlimit(RLIMIT_NOFILE)");
    assert!(
        lim.rlim_cur as usize > TARGET_FDS + 16,
        "hard RLIMIT_NOFILE {} is too low for {TARGET_FDS} descriptors",
        lim.rlim_max
    );

    let mut owned: Vec<OwnedFd> = Vec::with_capacity(2 * PIPES + EVENTFDS);
    for _ in 0..PIPES {
        let mut p = [0i32; 2];
        // SAFETY: p is a valid array of two ints.
        let r = unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(r, 0, "pipe2");
        for fd in p {
            // SAFETY: fd was just returned by pipe2 and is owned by nobody else.
            owned.push(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback listener");
    let addr = listener.local_addr().expect("listener address");
    let mut conns: Vec<TcpStream> = Vec::with_capacity(2 * TCP_CONNS);
    for _ in 0..TCP_CONNS {
        let client = TcpStream::connect(addr).expect("connect to loopback listener");
        let (server, _) = listener.accept().expect("accept loopback connection");
        conns.push(client);
        conns.push(server);
    }
    for _ in 0..EVENTFDS {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(fd >= 0, "eventfd");
        // SAFETY: fd was just returned by eventfd and is owned by nobody else.
        owned.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let mut files: Vec<File> = Vec::with_capacity(TARGET_FDS);
    for _ in 0..DEV_NULLS {
        files.push(File::open("/dev/null").expect("open /dev/null"));
    }
    let dir = PathBuf::from(std::env::var_os(DIR_ENV).expect("INVENTORY_DIR set"));
    let dir = &dir;
    let paths: Vec<PathBuf> = SUBDIRS
        .iter()
        .flat_map(|s| (0..FILES_PER_DIR).map(move |i| dir.join(s).join(format!("f{i:03}.dat"))))
        .collect();
    let have = open_fd_count();
    assert!(have < TARGET_FDS, "{have} descriptors before the files");
    for i in 0..TARGET_FDS - have {
        let p = &paths[i % paths.len()];
        files.push(File::open(p).expect("open temp file"));
    }
    let n = open_fd_count();
    let held = (&owned, &conns, &files, &listener);
    std::hint::black_box(&held);
    report_ready_and_sleep(&format!("ready {n}"));
}

fn maps_child() -> ! {
    let page = procfs::page_size() as usize;
    let stride = (MAPPING_PAGES + 1) * page;
    let total = MAPPINGS * stride;
    // Reserve the whole range so nothing else lands in it, then replace each slot with its own
    // mapping and unmap the one-page gap after it.
    // SAFETY: a fresh anonymous reservation; no existing memory is affected.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            total,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert!(base != libc::MAP_FAILED, "mmap reservation");
    let base = base as usize;
    for i in 0..MAPPINGS {
        let at = base + i * stride;
        let writable = i % 2 == 1;
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: `at` lies inside our own PROT_NONE reservation; MAP_FIXED replaces only it.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                MAPPING_PAGES * page,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        assert!(p as usize == at, "mmap MAP_FIXED slot {i}");
        // SAFETY: the gap page is inside our reservation and nothing else uses it.
        let r = unsafe { libc::munmap((at + MAPPING_PAGES * page) as *mut libc::c_void, page) };
        assert_eq!(r, 0, "munmap gap {i}");
        if writable {
            // SAFETY: the first page of a fresh PROT_READ|PROT_WRITE mapping of ours.
            unsafe { std::ptr::write_volatile(at as *mut u8, 1) };
        }
    }
    let lines = std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .count();
    report_ready_and_sleep(&format!("ready {lines}"));
}

// ---------------------------------------------------------------- parent

/// The two target processes (each in its own process group) and the temp dir; all removed on
/// drop, including during a panic.
struct Targets {
    children: Vec<Child>,
    dir: PathBuf,
}

impl Targets {
    fn spawn(&mut self, kind: &str) -> (i32, usize) {
        let exe = std::env::current_exe().expect("current exe");
        let mut child = Command::new(exe)
            .env(CHILD_ENV, kind)
            .env(PARENT_ENV, std::process::id().to_string())
            .env(DIR_ENV, &self.dir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn target child");
        let pid = i32::try_from(child.id()).expect("pid fits i32");
        let stdout = child.stdout.take().expect("child stdout");
        self.children.push(child);
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read child readiness");
        let n = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{kind} child did not get ready: {line:?}"));
        (pid, n)
    }
}

impl Drop for Targets {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SAFETY: plain syscall; each child leads its own process group.
            unsafe {
                libc::killpg(c.id() as i32, libc::SIGKILL);
            }
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn make_temp_tree(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    for s in SUBDIRS {
        let d = dir.join(s);
        std::fs::create_dir_all(&d).expect("create temp subdir");
        for i in 0..FILES_PER_DIR {
            std::fs::write(d.join(format!("f{i:03}.dat")), b"leak-sentinel bench\n")
                .expect("write temp file");
        }
    }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Median and min wall and thread-CPU time of `REPS` calls of `f` (after one warm-up call).
struct Timing {
    wall_med: Duration,
    wall_min: Duration,
    cpu_med: Duration,
    cpu_min: Duration,
}

fn time_it<T>(mut f: impl FnMut() -> T) -> (Timing, T) {
    let mut last = f();
    let mut wall = Vec::with_capacity(REPS);
    let mut cpu = Vec::with_capacity(REPS);
    for _ in 0..REPS {
        let c0 = thread_cpu();
        let w0 = Instant::now();
        last = std::hint::black_box(f());
        wall.push(w0.elapsed());
        cpu.push(thread_cpu().saturating_sub(c0));
    }
    wall.sort();
    cpu.sort();
    let t = Timing {
        wall_med: wall[REPS / 2],
        wall_min: wall[0],
        cpu_med: cpu[REPS / 2],
        cpu_min: cpu[0],
    };
    (t, last)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_timing(what: &str, t: &Timing, items: usize, unit: &str) {
    let per = |d: Duration| d.as_secs_f64() * 1e6 / items as f64;
    println!(
        "  {what}: wall median {:.2} ms (min {:.2}), thread CPU median {:.2} ms (min {:.2})",
        ms(t.wall_med),
        ms(t.wall_min),
        ms(t.cpu_med),
        ms(t.cpu_min)
    );
    println!(
        "  per {unit}: wall {:.2} µs, CPU {:.2} µs (medians over {items} {unit}s)",
        per(t.wall_med),
        per(t.cpu_med)
    );
}

fn print_pacing(what: &str, t: &Timing) {
    let min_interval = t.wall_med.as_secs_f64() * PACING_FACTOR;
    let share = t.cpu_med.as_secs_f64() / DETAIL_CADENCE_S * 100.0;
    println!(
        "  {what}: min interval ({PACING_FACTOR:.0} × median wall) {min_interval:.2} s; \
         CPU share at {DETAIL_CADENCE_S:.0} s detail cadence {share:.3} %"
    );
}

fn count_dir(p: &str) -> usize {
    std::fs::read_dir(p).expect("read fd dir").count()
}

fn count_lines(p: &str) -> usize {
    std::fs::read_to_string(p)
        .expect("read maps")
        .lines()
        .count()
}

fn main() {
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("fds") => {
            die_with_parent();
            fds_child();
        }
        Ok("maps") => {
            die_with_parent();
            maps_child();
        }
        _ => {}
    }
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("leak-sentinel-inventory-{}", std::process::id()));
    make_temp_tree(&dir);
    let mut targets = Targets {
        children: Vec::new(),
        dir,
    };

    eprintln!("starting the 10,000-FD and 5,000-mapping children…");
    let (fd_pid, fd_said) = targets.spawn("fds");
    let (map_pid, map_said) = targets.spawn("maps");
    let fd_seen = count_dir(&format!("/proc/{fd_pid}/fd"));
    let maps_seen = count_lines(&format!("/proc/{map_pid}/maps"));
    println!("targets:");
    println!(
        "  FD child pid {fd_pid}: {fd_seen} entries in /proc/{fd_pid}/fd (child counted {fd_said})"
    );
    println!(
        "  maps child pid {map_pid}: {maps_seen} lines in /proc/{map_pid}/maps \
         ({MAPPINGS} made by the bench; child counted {map_said})"
    );
    assert_eq!(
        fd_seen, TARGET_FDS,
        "FD child holds the planned descriptors"
    );
    assert!(
        maps_seen >= MAPPINGS,
        "maps child holds the planned mappings"
    );

    let (ti, inv) = time_it(|| fds::inventory(&[fd_pid]));
    let mut kinds: BTreeMap<FdKind, usize> = BTreeMap::new();
    for e in &inv.entries {
        *kinds.entry(e.kind).or_default() += 1;
    }
    println!(
        "fds::inventory (1 warm-up + {REPS} runs): {} entries, partial = {}, by kind {kinds:?}",
        inv.entries.len(),
        inv.partial
    );
    print_timing("inventory", &ti, inv.entries.len().max(1), "FD");

    let (ts, snap) = time_it(|| maps::snapshot(&[map_pid], 0.0));
    let anon = snap.classes.get("anonymous").copied().unwrap_or_default();
    println!(
        "maps::snapshot (1 warm-up + {REPS} runs): {} regions read, partial = {}, \
         anonymous: {} regions, {} KiB resident",
        snap.region_count,
        snap.partial,
        anon.regions,
        anon.rss / 1024
    );
    print_timing(
        "snapshot",
        &ts,
        snap.region_count.max(1) as usize,
        "mapping",
    );

    println!("pacing (runner: never more often than {PACING_FACTOR:.0} × measured cost):");
    print_pacing("FD inventory of 10,000 FDs", &ti);
    print_pacing("maps snapshot of 5,000 mappings", &ts);

    drop(targets);
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
}
