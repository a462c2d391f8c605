//! The hsperfdata reader (`probe::hsperf`) against real JVMs and against a captured file.
//!
//! * Without a JVM: `tests/data/hsperf/jdk17_g1.hsperfdata` (captured from OpenJDK 17 with G1
//!   running `Retain`; expected values decoded independently) parses to known values; every
//!   truncation of it, targeted corruptions of its header and entries, and 20,000 seeded random
//!   mutations give a value or a one-line error, never a panic; the reader refuses links, FIFOs,
//!   directories and oversized files, and survives a file rewritten or truncated under its
//!   handle; the file is found through the process's own PID and mount namespace (fake /proc).
//! * With a JVM (`java` on PATH; the tests say so and pass without one, unless
//!   `LEAK_SENTINEL_REQUIRE_JAVA` is set): for G1, Serial and Parallel, real counters, a
//!   collection after `System.gc()`, the old generation growing by the ~20 MiB the program
//!   retains, the live-set tracker's points; `-XX:-UsePerfData` and `-XX:+PerfDisableSharedMem`
//!   named in the not-found error; a JVM in its own PID namespace with a private /tmp (when
//!   `unshare` is allowed).
//!
//! The JVM runs `tests/data/hsperf/Retain.class` (source next to it), steered over stdin.

use leak_sentinel::probe::hsperf::{
    self, CollectorKind, HsperfError, JvmGc, JvmPerf, LiveCause, LiveSetTracker, MAX_FILE_BYTES,
};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/hsperf");
const MIB: u64 = 1 << 20;

fn fixture() -> Vec<u8> {
    std::fs::read(Path::new(DATA).join("jdk17_g1.hsperfdata")).expect("read the captured file")
}

fn assert_one_line(e: &HsperfError) {
    let s = e.to_string();
    assert!(!s.is_empty() && !s.contains('\n'), "not one line: {s:?}");
}

fn le32(d: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(d[off..off + 4].try_into().expect("4 bytes"))
}

fn put32(d: &mut [u8], off: usize, v: u32) {
    d[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Offsets of the fixture's entries (it is little-endian and well-formed).
fn entry_offsets(d: &[u8]) -> Vec<usize> {
    let mut off = le32(d, 24) as usize;
    (0..le32(d, 28))
        .map(|_| {
            let o = off;
            off += le32(d, o) as usize;
            o
        })
        .collect()
}

/// Offset of the fixture's entry named `name`.
fn entry_named(d: &[u8], name: &str) -> usize {
    entry_offsets(d)
        .into_iter()
        .find(|&o| {
            let n = o + le32(d, o + 4) as usize;
            d[n..].starts_with(name.as_bytes()) && d[n + name.len()] == 0
        })
        .expect("entry in the fixture")
}

#[test]
fn captured_file_parses_to_known_values() {
    let d = hsperf::parse(&fixture()).expect("the captured file parses");
    let h = d.header;
    assert!(!h.big_endian);
    assert_eq!((h.major_version, h.minor_version), (2, 0));
    assert!(h.accessible);
    assert_eq!((h.used, h.overflow, h.entry_offset), (12360, 0, 32));
    assert_eq!((h.num_entries, h.mod_time_stamp), (187, 76_729_842));
    assert_eq!((d.skipped, d.unsupported), (0, 0));
    assert_eq!(d.longs().len() + d.strings().len(), 187);
    assert_eq!(d.string("sun.rt.javaCommand"), Some("Retain"));
    assert_eq!(
        d.string("java.property.java.vm.name"),
        Some("OpenJDK 64-Bit Server VM")
    );
    assert_eq!(d.string("sun.gc.policy.name"), Some("GarbageFirst"));
    assert_eq!(d.long("sun.os.hrt.frequency"), Some(1_000_000_000));

    let gc = d.gc();
    assert_eq!(gc.hrt_ticks, Some(3_950_100_919));
    assert!((gc.uptime_s.expect("uptime") - 3.950_100_919).abs() < 1e-9);
    let gens: Vec<_> = gc
        .generations
        .iter()
        .map(|g| (g.index, g.name.as_str(), g.used_bytes, g.committed_bytes))
        .collect();
    assert_eq!(
        gens,
        vec![
            (0, "young", Some(5_242_880 + 67_616), Some(14_680_088)),
            (1, "old", Some(5_429_136), Some(10_485_768)),
        ]
    );
    assert_eq!(gc.generations[1].max_bytes, Some(134_217_736));
    assert_eq!(gc.heap_used_bytes, Some(5_310_496 + 5_429_136));
    assert_eq!(gc.heap_committed_bytes, Some(14_680_088 + 10_485_768));
    assert_eq!(gc.old_used_bytes, Some(5_429_136));
    assert_eq!(gc.old_committed_bytes, Some(10_485_768));
    assert_eq!(gc.metaspace_used_bytes, Some(258_656));
    assert_eq!(gc.metaspace_committed_bytes, Some(458_752));
    assert_eq!(gc.class_space_used_bytes, Some(13_744));
    assert_eq!(gc.threads_live, Some(6));
    assert_eq!(gc.classes_loaded, Some(18 + 516));
    assert_eq!(gc.last_gc_cause.as_deref(), Some("G1 Evacuation Pause"));
    let collectors: Vec<_> = gc
        .collectors
        .iter()
        .map(|c| (c.name.as_str(), c.kind, c.invocations))
        .collect();
    assert_eq!(
        collectors,
        vec![
            ("G1 young collection pauses", CollectorKind::Young, Some(5)),
            ("G1 full collection pauses", CollectorKind::Full, Some(1)),
            (
                "G1 concurrent cycle pauses",
                CollectorKind::Concurrent,
                Some(0)
            ),
        ]
    );
    assert!((gc.collectors[0].time_s.expect("time") - 0.004_339_743).abs() < 1e-12);
    assert!((gc.collectors[1].time_s.expect("time") - 0.005_342_588).abs() < 1e-12);
    assert_eq!(gc.full_invocations(), Some(1));
    assert_eq!(gc.total_invocations(), Some(6));
}

#[test]
fn captured_file_truncated_at_every_length() {
    let data = fixture();
    let used = le32(&data, 8) as usize;
    for len in 0..=data.len() {
        match hsperf::parse(&data[..len]) {
            Ok(d) => {
                assert!(
                    len >= used,
                    "parsed {len} bytes, fewer than the {used} used"
                );
                assert_eq!(d.header.num_entries, 187);
            }
            Err(e) => {
                assert!(len < used, "{len} bytes: {e}");
                assert_one_line(&e);
                assert!(e.is_transient(), "a short read is worth retrying: {e}");
            }
        }
    }
}

#[test]
fn corrupted_headers_and_entries_give_one_line_errors_or_skips() {
    let base = fixture();
    let offs = entry_offsets(&base);
    let used = le32(&base, 8);
    let cmd = entry_named(&base, "sun.rt.javaCommand");
    let freq = entry_named(&base, "sun.os.hrt.frequency");
    type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
    // (what, mutation, Err(substring) or Ok(skipped entries))
    let cases: Vec<(&str, Mutation, Result<usize, &str>)> = vec![
        (
            "wrong magic",
            Box::new(|d| d[0] = 0xde),
            Err("magic 0xdefec0c0"),
        ),
        ("zeroed file", Box::new(|d| d.fill(0)), Err("not ready")),
        ("empty file", Box::new(|d| d.clear()), Err("truncated")),
        ("byte order 2", Box::new(|d| d[4] = 2), Err("byte order 2")),
        ("version 1", Box::new(|d| d[5] = 1), Err("version 1.0")),
        ("not accessible", Box::new(|d| d[7] = 0), Err("not ready")),
        (
            "used huge",
            Box::new(|d| put32(d, 8, u32::MAX)),
            Err("truncated"),
        ),
        ("used zero", Box::new(|d| put32(d, 8, 0)), Err("less than")),
        (
            "table offset huge",
            Box::new(|d| put32(d, 24, u32::MAX)),
            Err("outside"),
        ),
        (
            "table offset at the end",
            Box::new(move |d| put32(d, 24, used)),
            Err("entry 0"),
        ),
        (
            "entries huge",
            Box::new(|d| put32(d, 28, u32::MAX)),
            Err("over the bound"),
        ),
        (
            "entries past the end",
            Box::new(|d| put32(d, 28, 188)),
            Err("entry 187"),
        ),
        ("no entries", Box::new(|d| put32(d, 28, 0)), Ok(0)),
        (
            "entry length zero",
            Box::new(|d| put32(d, 32, 0)),
            Err("entry 0 at byte 32 is corrupt: its length is shorter"),
        ),
        (
            "entry length huge",
            Box::new({
                let o = offs[5];
                move |d| put32(d, o, u32::MAX)
            }),
            Err("entry 5"),
        ),
        (
            "name offset huge",
            Box::new({
                let o = offs[10];
                move |d| put32(d, o + 4, u32::MAX)
            }),
            Ok(1),
        ),
        (
            "name offset inside the entry header",
            Box::new({
                let o = offs[11];
                move |d| put32(d, o + 4, 3)
            }),
            Ok(1),
        ),
        (
            "data offset huge",
            Box::new(move |d| put32(d, freq + 16, 0x7fff_ffff)),
            Ok(1),
        ),
        (
            "long data past the entry end",
            Box::new(move |d| {
                let len = le32(d, freq);
                put32(d, freq + 16, len - 4)
            }),
            Ok(1),
        ),
        (
            "string vector length huge",
            Box::new(move |d| put32(d, cmd + 8, u32::MAX)),
            Ok(1),
        ),
        (
            "name without NUL",
            Box::new(move |d| {
                let start = cmd + le32(d, cmd + 4) as usize;
                let end = cmd + le32(d, cmd + 16) as usize;
                d[start..end].fill(b'A');
                let len = le32(d, cmd) as usize;
                d[end..cmd + len].fill(b'A');
            }),
            Ok(1),
        ),
        (
            "unprintable name",
            Box::new(move |d| {
                let start = cmd + le32(d, cmd + 4) as usize;
                d[start] = 0x07;
            }),
            Ok(1),
        ),
        (
            "unknown type",
            Box::new(move |d| d[freq + 12] = b'Q'),
            Ok(0), // well-formed but unsupported: counted apart
        ),
    ];
    for (what, mutate, expected) in cases {
        let mut d = base.clone();
        mutate(&mut d);
        match (hsperf::parse(&d), expected) {
            (Err(e), Err(want)) => {
                assert_one_line(&e);
                assert!(e.to_string().contains(want), "{what}: {e}");
            }
            (Ok(p), Ok(skipped)) => {
                assert_eq!(p.skipped, skipped, "{what}");
                let _ = p.gc();
            }
            (got, want) => panic!(
                "{what}: got {:?}, expected {want:?}",
                got.map(|p| p.skipped)
            ),
        }
    }
    // A skipped counter costs that counter only.
    let mut d = base.clone();
    put32(&mut d, freq + 16, 0x7fff_ffff);
    let gc = hsperf::parse(&d).expect("still parses").gc();
    assert_eq!(gc.uptime_s, None, "no frequency, no seconds");
    assert_eq!(gc.old_used_bytes, Some(5_429_136));
    // Read as big-endian, the lengths are garbage: an error, not a panic.
    let mut d = base.clone();
    d[4] = 0;
    let e = hsperf::parse(&d).expect_err("byte-swapped fields");
    assert_one_line(&e);
}

/// xorshift64 (Marsaglia 2003): a seeded, dependency-free source of mutations.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutations_of_the_captured_file_never_panic() {
    let base = fixture();
    let parsed = hsperf::parse(&base).expect("the captured file parses");
    let offs = entry_offsets(&base);
    let used = le32(&base, 8) as usize;
    let interesting = [
        0u32,
        1,
        19,
        20,
        21,
        used as u32,
        used as u32 - 1,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX,
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut err, mut refreshed) = (0, 0, 0);
    for _ in 0..20_000 {
        let mut d = base.clone();
        for _ in 0..=rng.below(3) {
            match rng.below(5) {
                // Bit flips anywhere in the used area and a little beyond.
                0 => {
                    for _ in 0..=rng.below(16) {
                        let at = rng.below(used + 64);
                        if let Some(b) = d.get_mut(at) {
                            *b ^= 1 << rng.below(8);
                        }
                    }
                }
                // An interesting or random value in a header field or an entry header field.
                1 => {
                    let at = if rng.below(4) == 0 {
                        4 * rng.below(8)
                    } else {
                        offs[rng.below(offs.len())] + [0, 4, 8, 16][rng.below(4)]
                    };
                    let v = if rng.below(3) == 0 {
                        rng.next() as u32
                    } else {
                        interesting[rng.below(interesting.len())]
                    };
                    if at + 4 <= d.len() {
                        put32(&mut d, at, v);
                    }
                }
                // Type, flags, units, variability bytes.
                2 => {
                    let at = offs[rng.below(offs.len())] + 12 + rng.below(4);
                    if let Some(b) = d.get_mut(at) {
                        *b = rng.next() as u8;
                    }
                }
                // Truncation.
                3 => {
                    let len = rng.below(d.len() + 1);
                    d.truncate(len);
                }
                // A chunk copied over another place (a torn, half-rewritten file).
                _ => {
                    if !d.is_empty() {
                        let from = rng.below(d.len());
                        let to = rng.below(d.len());
                        let n = rng.below(256).min(d.len() - from).min(d.len() - to);
                        d.copy_within(from..from + n, to);
                    }
                }
            }
        }
        match hsperf::parse(&d) {
            Ok(p) => {
                ok += 1;
                let _ = p.gc();
            }
            Err(e) => {
                err += 1;
                assert_one_line(&e);
            }
        }
        // The sampling path: values re-read at the offsets of a good parse.
        let mut p = parsed.clone();
        if p.refresh(&d).is_ok() {
            refreshed += 1;
            let _ = p.gc();
        }
    }
    eprintln!("20000 mutations: {ok} parsed, {err} one-line errors, {refreshed} refreshed");
    assert!(ok > 1000 && err > 1000, "the mutations reach both outcomes");
}

#[test]
fn reader_refuses_links_fifos_directories_and_big_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let real = dir.path().join("123");
    std::fs::write(&real, fixture()).expect("write");
    assert!(JvmPerf::open_path(&real).is_ok());

    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let big = dir.path().join("big");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(MAX_FILE_BYTES as u64 + 1))
        .expect("sparse file");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").expect("write");
    for (path, want) in [
        (&link, "is not a regular file"),
        (&fifo, "is not a regular file"), // and the open must not block on it
        (&dir.path().to_path_buf(), "is not a regular file"),
        (&big, "over the 1048576-byte bound"),
        (&empty, "truncated"),
        (&dir.path().join("missing"), "No such file"),
    ] {
        let e = JvmPerf::open_path(path).expect_err("refused");
        assert_one_line(&e);
        assert!(e.to_string().contains(want), "{}: {e}", path.display());
    }
}

#[test]
fn reader_survives_a_file_rewritten_or_truncated_under_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("4242");
    let data = fixture();
    std::fs::write(&path, &data).expect("write");
    let mut perf = JvmPerf::open_path(&path).expect("open");
    assert_eq!(
        perf.last_read_bytes(),
        data.len(),
        "the first read takes the file"
    );
    let s = perf.sample().expect("sample");
    assert_eq!(s.old_used_bytes, Some(5_429_136));
    assert_eq!(
        perf.last_read_bytes(),
        12360,
        "later reads take the used bytes only"
    );

    // The JVM updates a value in place.
    let old_used = entry_named(&data, "sun.gc.generation.1.space.0.used");
    let value_at = old_used + le32(&data, old_used + 16) as usize;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open for writing");
    file.write_all_at(&(64 * MIB as i64).to_le_bytes(), value_at as u64)
        .expect("pwrite");
    assert_eq!(
        perf.sample().expect("sample").old_used_bytes,
        Some(64 * MIB)
    );

    // Truncated under the handle (a JVM gone, a file rewritten): one line, worth a retry.
    file.set_len(100).expect("truncate");
    let e = perf.sample().expect_err("short read");
    assert_one_line(&e);
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");

    // Written back with one entry fewer and a new time stamp: parsed anew.
    let mut d = data.clone();
    put32(&mut d, 28, 186);
    d[16] ^= 1;
    file.set_len(data.len() as u64).expect("extend");
    file.write_all_at(&d, 0).expect("rewrite");
    let s = perf.sample().expect("sample after rewrite");
    assert_eq!(perf.data().header.num_entries, 186);
    assert_eq!(s.old_used_bytes, Some(5_429_136));

    assert!(!perf.is_unlinked().expect("fstat"));
    std::fs::remove_file(&path).expect("rm");
    assert!(perf.is_unlinked().expect("fstat"));
    assert!(
        perf.sample().is_ok(),
        "the handle still reads the last values"
    );
}

/// A fake /proc with one process: its status, its root, its command line.
fn fake_proc(root: &Path, pid: i32, nspid: i32, cmdline: &[&str], with_root: bool) -> PathBuf {
    let p = root.join("proc").join(pid.to_string());
    std::fs::create_dir_all(&p).expect("mkdir");
    std::fs::write(
        p.join("status"),
        format!("Name:\tjava\nUid:\t0\t0\t0\t0\nNSpid:\t{pid}\t{nspid}\n"),
    )
    .expect("status");
    let mut args = cmdline.join("\0");
    args.push('\0');
    std::fs::write(p.join("cmdline"), args).expect("cmdline");
    if with_root {
        std::fs::create_dir_all(p.join("root/tmp")).expect("root");
    }
    root.join("proc")
}

fn put_file(dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let f = dir.join(name);
    std::fs::write(&f, b"x").expect("write");
    f
}

#[test]
fn file_is_found_through_the_process_namespaces() {
    let t = tempfile::tempdir().expect("temp dir");
    let host_tmp = t.path().join("tmp");
    // In a container: PID 4242 is 7 inside; the host's /tmp has an unrelated 4242 and 7.
    let proc = fake_proc(t.path(), 4242, 7, &["java", "Main"], true);
    put_file(&host_tmp.join("hsperfdata_app"), "4242");
    put_file(&host_tmp.join("hsperfdata_app"), "7");
    let inside = put_file(&proc.join("4242/root/tmp/hsperfdata_app"), "7");
    assert_eq!(
        hsperf::find_file_in(&proc, &host_tmp, 4242).expect("found"),
        inside
    );

    // Its root cannot be read and it is in another PID namespace: nothing on the host is its.
    std::fs::remove_dir_all(proc.join("4242/root")).expect("rm");
    let e = hsperf::find_file_in(&proc, &host_tmp, 4242).expect_err("not found");
    assert!(e.is_not_found());
    assert_one_line(&e);
    let msg = e.to_string();
    assert!(msg.contains("/4242/root/tmp/hsperfdata_*/7'"), "{msg}");
    assert!(msg.contains("-XX:-UsePerfData"), "{msg}");

    // Same namespace, root unreadable: the host's /tmp by PID.
    let proc = fake_proc(t.path(), 555, 555, &["java", "Main"], false);
    let host = put_file(&host_tmp.join("hsperfdata_app"), "555");
    assert_eq!(
        hsperf::find_file_in(&proc, &host_tmp, 555).expect("found"),
        host
    );

    // A stale file of another user loses to the process's own user's (when we may chown).
    let proc = fake_proc(t.path(), 556, 556, &["java"], true);
    let own = put_file(&proc.join("556/root/tmp/hsperfdata_root"), "556");
    let stale = put_file(&proc.join("556/root/tmp/hsperfdata_zed"), "556");
    // Newer than the process's own: only the owner rule can prefer the right one.
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .and_then(|f| f.set_modified(std::time::SystemTime::now() + Duration::from_secs(100)))
        .expect("set mtime");
    if nix::unistd::chown(&stale, Some(nix::unistd::Uid::from_raw(12345)), None).is_ok() {
        assert_eq!(
            hsperf::find_file_in(&proc, &host_tmp, 556).expect("found"),
            own
        );
    }

    // The flags that turn the file off are named; the last mention wins.
    for (args, flag) in [
        (
            &["java", "-XX:-UsePerfData", "Main"][..],
            Some("-XX:-UsePerfData"),
        ),
        (&["java", "-XX:-UsePerfData", "-XX:+UsePerfData"][..], None),
        (
            &["java", "-XX:+PerfDisableSharedMem", "Main"][..],
            Some("-XX:+PerfDisableSharedMem"),
        ),
    ] {
        let proc = fake_proc(t.path(), 600, 600, args, true);
        let e = hsperf::find_file_in(&proc, &t.path().join("none"), 600).expect_err("none");
        match flag {
            Some(f) => assert!(
                matches!(e, HsperfError::Disabled { flag, .. } if flag == f),
                "{e}"
            ),
            None => assert!(matches!(e, HsperfError::NotFound { .. }), "{e}"),
        }
    }

    let e = hsperf::find_file_in(&proc, &host_tmp, 999_999).expect_err("no process");
    assert_eq!(e.to_string(), "process 999999 is gone");
}

// ---------------------------------------------------------------------------------------------
// Real JVMs.

/// Whether `java` runs; without it the live tests pass with a note, unless
/// `LEAK_SENTINEL_REQUIRE_JAVA` is set (CI images that install a JRE set it).
fn have_java(test: &str) -> bool {
    let ok = Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("LEAK_SENTINEL_REQUIRE_JAVA").is_none(),
            "{test}: `java` not found and LEAK_SENTINEL_REQUIRE_JAVA is set"
        );
        eprintln!(
            "{test}: SKIPPED, `java` is not installed (apt-get install openjdk-17-jre-headless)"
        );
    }
    ok
}

/// A running `Retain` JVM, killed when dropped.
struct Jvm {
    child: Child,
    /// The JVM's PID on the host (differs from the child's under `unshare`).
    pid: i32,
    /// Closed on drop: `Retain` then exits by itself and deletes its hsperfdata file.
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
}

impl Jvm {
    /// `PREFIX… java ARGS… -cp DATA Retain`, waiting for its "ready".
    fn start(prefix: &[&str], args: &[&str]) -> Jvm {
        let mut cmd = Command::new(prefix.first().copied().unwrap_or("java"));
        if !prefix.is_empty() {
            cmd.args(&prefix[1..]);
        }
        let mut child = cmd
            .args(args)
            .args(["-cp", DATA, "Retain"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start java");
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let pid = child.id() as i32;
        let mut jvm = Jvm {
            child,
            pid,
            stdin,
            out,
        };
        assert_eq!(jvm.line(), "ready");
        jvm
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        self.out.read_line(&mut s).expect("read from the JVM");
        assert!(!s.is_empty(), "the JVM exited");
        s.trim().to_owned()
    }

    /// Sends one command and waits for its "ok".
    fn cmd(&mut self, c: &str) {
        writeln!(self.stdin.as_mut().expect("stdin"), "{c}").expect("write to the JVM");
        let reply = self.line();
        assert!(reply.starts_with("ok"), "{c}: {reply}");
    }
}

impl Drop for Jvm {
    fn drop(&mut self) {
        // A JVM killed with SIGKILL leaves its hsperfdata file behind: let it exit first.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens the JVM's counters, waiting up to 20 s for its file (created while it starts).
fn open_when_ready(pid: i32) -> JvmPerf {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match JvmPerf::open(pid) {
            Ok(p) => return p,
            Err(e) if Instant::now() < deadline && (e.is_transient() || e.is_not_found()) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("JVM {pid}: {e}"),
        }
    }
}

fn check_live_jvm(gc_flag: &str, collector_prefix: &str) {
    let mut jvm = Jvm::start(&[], &[gc_flag, "-Xms64m", "-Xmx256m"]);
    let mut perf = open_when_ready(jvm.pid);
    let path = perf.path().to_string_lossy().into_owned();
    assert!(
        path.starts_with(&format!("/proc/{}/root/tmp/hsperfdata_", jvm.pid))
            && path.ends_with(&format!("/{}", jvm.pid)),
        "{path}"
    );
    let s0 = perf.sample().expect("sample");
    let d = perf.data();
    assert!(
        d.string("sun.rt.javaCommand")
            .is_some_and(|c| c.starts_with("Retain")),
        "{:?}",
        d.string("sun.rt.javaCommand")
    );
    assert!(
        d.string("java.property.java.vm.name")
            .is_some_and(|n| n.contains("VM"))
    );
    assert_eq!(d.skipped, 0);
    // A sample reads the used bytes, not the whole file.
    assert!(
        perf.last_read_bytes() < 32 * 1024,
        "{}",
        perf.last_read_bytes()
    );

    assert!(s0.heap_committed_bytes.expect("committed") > 0);
    assert!(s0.old_committed_bytes.expect("old committed") > 0);
    assert!(s0.generations.len() >= 2);
    // Published at collections only: none yet, or a real value.
    assert!(s0.metaspace_used_bytes.is_none_or(|m| m > 0), "{s0:?}");
    assert!(s0.threads_live.expect("threads") >= 1);
    assert!(s0.classes_loaded.expect("classes") > 100);
    assert!(s0.uptime_s.expect("uptime") > 0.0);
    assert!(!s0.collectors.is_empty());
    for c in &s0.collectors {
        assert!(c.name.starts_with(collector_prefix), "{}", c.name);
        assert!(c.invocations.is_some() && c.time_s.is_some(), "{c:?}");
    }
    assert!(s0.collectors.iter().any(|c| c.kind == CollectorKind::Young));
    let full0 = s0.full_invocations().expect("a full collector");

    // The pure parser on a capture of the live file sees the same counters.
    let raw = std::fs::read(perf.path()).expect("read the live file");
    let captured = hsperf::parse(&raw).expect("the live file parses");
    assert_eq!(captured.header.num_entries, perf.data().header.num_entries);
    assert_eq!(captured.gc().collectors.len(), s0.collectors.len());

    // System.gc() is a full collection.
    jvm.cmd("gc");
    // hrt.ticks moves every 50 ms (the JVM's StatSampler), not at every read.
    std::thread::sleep(Duration::from_millis(120));
    let s1 = perf.sample().expect("sample");
    assert!(s1.full_invocations().expect("full") > full0, "{s1:?}");
    assert!(s1.total_gc_time_s() >= s0.total_gc_time_s());
    assert!(s1.uptime_s > s0.uptime_s);
    assert!(s1.metaspace_used_bytes.expect("metaspace after a GC") > 0);
    assert!(s1.metaspace_committed_bytes >= s1.metaspace_used_bytes);

    // 20 MiB kept reachable end up in the old generation after the next full collection.
    jvm.cmd("retain 20");
    let s2 = perf.sample().expect("sample");
    let (old1, old2) = (
        s1.old_used_bytes.expect("old used"),
        s2.old_used_bytes.expect("old used"),
    );
    assert!(old2 >= old1 + 18 * MIB, "old gen {old1} → {old2}");
    assert!(s2.heap_used_bytes.expect("heap used") >= 20 * MIB);

    // Allocation alone runs young collections.
    let young = |s: &JvmGc| {
        s.collectors
            .iter()
            .filter(|c| c.kind == CollectorKind::Young)
            .filter_map(|c| c.invocations)
            .sum::<u64>()
    };
    jvm.cmd("churn 300");
    let s3 = perf.sample().expect("sample");
    assert!(young(&s3) > young(&s2), "{} → {}", young(&s2), young(&s3));

    // The tracker's points: the floor after the first System.gc(), then after the retain.
    let mut tracker = LiveSetTracker::new();
    let mut points = Vec::new();
    for (t, s) in [&s0, &s1, &s2, &s3].into_iter().enumerate() {
        points.extend(tracker.observe(t as f64, s));
    }
    points.extend(tracker.flush());
    assert!(points.len() >= 2, "{points:?}");
    assert_eq!((points[0].t_s, points[0].cause), (1.0, LiveCause::FullGc));
    assert_eq!((points[1].t_s, points[1].cause), (2.0, LiveCause::FullGc));
    assert!(points[1].old_used_bytes >= points[0].old_used_bytes + 18 * MIB);

    // At exit the JVM deletes its file; the open handle still reads the last values.
    writeln!(jvm.stdin.as_mut().expect("stdin"), "exit").expect("write");
    let _ = jvm.child.wait();
    assert!(perf.is_unlinked().expect("fstat"));
    assert!(perf.sample().is_ok());
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn live_jvm_g1() {
    if have_java("live_jvm_g1") {
        check_live_jvm("-XX:+UseG1GC", "G1 ");
    }
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn live_jvm_serial() {
    if have_java("live_jvm_serial") {
        check_live_jvm("-XX:+UseSerialGC", "Serial ");
    }
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn live_jvm_parallel() {
    if have_java("live_jvm_parallel") {
        check_live_jvm("-XX:+UseParallelGC", "Parallel ");
    }
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn live_jvm_without_perf_data_is_named_in_the_error() {
    if !have_java("live_jvm_without_perf_data_is_named_in_the_error") {
        return;
    }
    for flag in ["-XX:-UsePerfData", "-XX:+PerfDisableSharedMem"] {
        let jvm = Jvm::start(&[], &[flag]);
        let e = JvmPerf::open(jvm.pid).expect_err("no file");
        assert!(e.is_not_found() && !e.is_transient(), "{e}");
        assert_one_line(&e);
        assert_eq!(
            e.to_string(),
            format!(
                "no hsperfdata file for JVM {}: it runs with {flag}, so it publishes no counters",
                jvm.pid
            )
        );
    }
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn live_jvm_in_its_own_pid_and_mount_namespace() {
    let test = "live_jvm_in_its_own_pid_and_mount_namespace";
    if !have_java(test) {
        return;
    }
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "--mount", "--kill-child", "true"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("{test}: SKIPPED, `unshare --pid --mount` is not allowed here");
        return;
    }
    // PID 1 of a new PID namespace, with a private tmpfs on /tmp: the host sees neither its
    // PID nor its file, only /proc/PID/root does. The class is copied out of the checkout first:
    // a checkout under /tmp would vanish under the new tmpfs.
    let classes = tempfile::tempdir_in("/var/tmp").expect("a directory outside /tmp");
    std::fs::copy(
        Path::new(DATA).join("Retain.class"),
        classes.path().join("Retain.class"),
    )
    .expect("copy the class");
    let script = format!(
        "mount -t tmpfs tmpfs /tmp && exec \"$0\" -XX:+UseSerialGC -cp '{}' Retain",
        classes.path().display()
    );
    let mut jvm = Jvm::start(
        &[
            "unshare",
            "--pid",
            "--fork",
            "--mount",
            "--kill-child",
            "sh",
            "-c",
            &script,
            "java",
        ],
        &[],
    );
    let unshare = jvm.pid;
    let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
        .expect("children of unshare");
    jvm.pid = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the JVM's host PID");
    let status = std::fs::read_to_string(format!("/proc/{}/status", jvm.pid)).expect("status");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("NSpid:") && l.ends_with("\t1")),
        "{status}"
    );
    let mut perf = open_when_ready(jvm.pid);
    assert_eq!(
        perf.path(),
        Path::new(&format!("/proc/{}/root/tmp/hsperfdata_root/1", jvm.pid))
    );
    assert!(!Path::new(&format!("/tmp/hsperfdata_root/{}", jvm.pid)).exists());
    let before = perf.sample().expect("sample").full_invocations();
    jvm.cmd("gc");
    assert!(perf.sample().expect("sample").full_invocations() > before);
}
