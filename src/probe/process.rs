//! Reading one process. A [`ProcHandle`] keeps `/proc/PID` and `/proc/PID/stat` open, so a PID
//! reused by another process can never be read by mistake (the held handles fail with ESRCH
//! once the original process is gone), and the hot path is one `pread` plus one `fstatat`.

use procfs::process::Process;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Why a process could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The process no longer exists.
    #[error("process {0} is gone")]
    Gone(i32),
    /// Not allowed to read it (another user's process).
    #[error(
        "cannot read {0}: permission denied (the process belongs to another user; run leak-sentinel as that user or as root)"
    )]
    Denied(String),
    /// Anything else.
    #[error("reading {path}: {source}")]
    Other {
        /// What was read.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn classify(pid: i32, path: String, e: std::io::Error) -> ProbeError {
    match e.raw_os_error() {
        Some(libc::ESRCH) | Some(libc::ENOENT) => ProbeError::Gone(pid),
        Some(libc::EACCES) | Some(libc::EPERM) => ProbeError::Denied(path),
        _ => ProbeError::Other { path, source: e },
    }
}

fn from_proc(pid: i32, path: &str, e: procfs::ProcError) -> ProbeError {
    match e {
        procfs::ProcError::NotFound(_) => ProbeError::Gone(pid),
        procfs::ProcError::PermissionDenied(_) => ProbeError::Denied(format!("/proc/{pid}/{path}")),
        procfs::ProcError::Io(io, _) => classify(pid, format!("/proc/{pid}/{path}"), io),
        other => ProbeError::Other {
            path: format!("/proc/{pid}/{path}"),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// The cheap fields of one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatReading {
    /// Parent PID.
    pub ppid: i32,
    /// Process group.
    pub pgrp: i32,
    /// Start time in clock ticks after boot (identity of the process together with the PID).
    pub starttime: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Threads.
    pub threads: u64,
    /// Zombie (exited, not yet reaped).
    pub zombie: bool,
    /// Stopped by a signal or traced (state `T` or `t`): not running, so not observed.
    pub stopped: bool,
}

/// Expensive per-process fields (smaps_rollup), bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Detail {
    /// Proportional set size.
    pub pss: Option<u64>,
    /// Private clean + private dirty.
    pub uss: Option<u64>,
    /// Swap.
    pub swap: Option<u64>,
    /// Anonymous.
    pub anon: Option<u64>,
    /// Rss − Anonymous.
    pub file: Option<u64>,
}

/// An open handle on one process.
#[derive(Debug)]
pub struct ProcHandle {
    /// The PID.
    pub pid: i32,
    /// Its start time (ticks after boot), fixed at open.
    pub starttime: u64,
    /// Swapped-out bytes at the last detail reading (smaps_rollup), carried between them.
    pub swap: u64,
    /// Threads at the last stat reading (which task directories list children).
    pub threads: u64,
    process: Process,
    stat: File,
    statm: File,
    /// The thread group leader's `task/PID/children`, opened at the first walk and kept.
    children: Option<File>,
    buf: Vec<u8>,
}

/// At most this many bytes are read from one children file: ~9,000 PIDs of 7 digits.
pub const CHILDREN_MAX_BYTES: usize = 64 * 1024;

/// At most this many threads' children files are read per process and walk; the leader's always
/// is. A process with more threads is walked partly and left to the full /proc listing.
pub const CHILDREN_MAX_THREADS: usize = 64;

/// The PIDs listed in children files: bounded, and whether the list is known complete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChildList {
    /// Child PIDs, in the kernel's order.
    pub pids: Vec<i32>,
    /// False when something was cut (a file at its byte bound, more PIDs or threads than the
    /// bounds) or a thread's file could not be read: the caller should list /proc soon.
    pub complete: bool,
}

impl ProcHandle {
    /// Opens `/proc/PID` and its stat file.
    pub fn open(pid: i32) -> Result<Self, ProbeError> {
        Self::open_with_stat(pid).map(|(h, _)| h)
    }

    /// Opens `/proc/PID` and its stat file, and returns the stat reading taken at open (parent,
    /// zombie state: what tree discovery checks before keeping the handle).
    pub fn open_with_stat(pid: i32) -> Result<(Self, StatReading), ProbeError> {
        let process = Process::new(pid).map_err(|e| from_proc(pid, "", e))?;
        let stat = process
            .open_relative("stat")
            .map_err(|e| from_proc(pid, "stat", e))?;
        let statm = process
            .open_relative("statm")
            .map_err(|e| from_proc(pid, "statm", e))?;
        let mut h = ProcHandle {
            pid,
            starttime: 0,
            swap: 0,
            threads: 1,
            process,
            stat,
            statm,
            children: None,
            buf: Vec::with_capacity(1024),
        };
        let st = h.read_stat()?;
        h.starttime = st.starttime;
        Ok((h, st))
    }

    /// Reads `/proc/PID/stat` through the held handle (one pread).
    pub fn read_stat(&mut self) -> Result<StatReading, ProbeError> {
        self.buf.resize(1024, 0);
        let mut len = 0;
        loop {
            let n = self
                .stat
                .read_at(&mut self.buf[len..], len as u64)
                .map_err(|e| classify(self.pid, format!("/proc/{}/stat", self.pid), e))?;
            len += n;
            if n == 0 || len < self.buf.len() {
                break;
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        if len == 0 {
            return Err(ProbeError::Gone(self.pid));
        }
        let st = parse_stat(&self.buf[..len]).ok_or_else(|| ProbeError::Other {
            path: format!("/proc/{}/stat", self.pid),
            source: std::io::Error::other("unparsable stat line"),
        })?;
        self.threads = st.threads;
        Ok(st)
    }

    /// The children of this process: `task/TID/children` of its threads (Linux ≥ 3.5 with
    /// CONFIG_PROC_CHILDREN), opened relative to the held `/proc/PID` handle, so a reused PID
    /// is never read (the handle fails once the process is gone), with `O_NOFOLLOW`, each read
    /// bounded by [`CHILDREN_MAX_BYTES`]. The leader's file is kept open and re-read with one
    /// `pread`; other threads (read when the last stat reading counted more than one, at most
    /// [`CHILDREN_MAX_THREADS`]) are opened per call. Appends to `out`.
    ///
    /// The kernel builds the list while children come and go, so it may miss one (proc(5)):
    /// the periodic full /proc listing is the safety net.
    pub fn children(&mut self, out: &mut ChildList) -> Result<(), ProbeError> {
        let pid = self.pid;
        let path = move || format!("/proc/{pid}/task/{pid}/children");
        if self.children.is_none() || self.threads > 1 {
            let task = self
                .process
                .open_relative("task")
                .map_err(|e| from_proc(self.pid, "task", e))?;
            if self.children.is_none() {
                let f = openat_nofollow(&task, &format!("{pid}/children"))
                    .map_err(|e| classify(pid, path(), e))?;
                self.children = Some(f);
            }
            if self.threads > 1 {
                self.thread_children(&task, out)?;
            }
        }
        let Some(f) = &self.children else {
            return Ok(());
        };
        let (len, truncated) = read_bounded_at(f, &mut self.buf, CHILDREN_MAX_BYTES)
            .map_err(|e| classify(pid, path(), e))?;
        merge_children(&self.buf[..len], truncated, out, path)
    }

    /// The children files of the threads other than the leader (through `task`, the held
    /// `/proc/PID/task` directory).
    fn thread_children(&mut self, task: &File, out: &mut ChildList) -> Result<(), ProbeError> {
        let tasks = self
            .process
            .tasks()
            .map_err(|e| from_proc(self.pid, "task", e))?;
        let mut read = 1;
        for t in tasks {
            let Ok(t) = t else {
                continue; // a thread that ended while listed
            };
            if t.tid == self.pid {
                continue;
            }
            if read >= CHILDREN_MAX_THREADS {
                out.complete = false;
                break;
            }
            read += 1;
            let rel = format!("{}/children", t.tid);
            let f = match openat_nofollow(task, &rel) {
                Ok(f) => f,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue, // thread ended
                Err(_) => {
                    out.complete = false;
                    continue;
                }
            };
            match read_bounded_at(&f, &mut self.buf, CHILDREN_MAX_BYTES) {
                Ok((len, truncated)) => {
                    let whole = format!("/proc/{}/task/{rel}", self.pid);
                    merge_children(&self.buf[..len], truncated, out, || whole.clone())?;
                }
                Err(_) => out.complete = false,
            }
        }
        Ok(())
    }

    /// Anonymous resident bytes from `/proc/PID/statm` through the held handle (one pread):
    /// resident − shared, where the kernel's "shared" is RssFile + RssShmem, so the difference
    /// is RssAnon. Chosen over /proc/PID/status (RssAnon, VmSwap): statm is ~40 bytes to format
    /// and parse, status ~1.4 KB (benches/sampler.rs measures both); swap comes from the detail
    /// reading instead.
    pub fn read_anon(&mut self) -> Result<u64, ProbeError> {
        let mut buf = [0u8; 128];
        let n = self
            .statm
            .read_at(&mut buf, 0)
            .map_err(|e| classify(self.pid, format!("/proc/{}/statm", self.pid), e))?;
        if n == 0 {
            return Err(ProbeError::Gone(self.pid));
        }
        parse_statm_anon(&buf[..n]).ok_or_else(|| ProbeError::Other {
            path: format!("/proc/{}/statm", self.pid),
            source: std::io::Error::other("unparsable statm line"),
        })
    }

    /// Open FDs (fstat of /proc/PID/fd on Linux ≥ 6.2, a directory walk before).
    pub fn fd_count(&self) -> Result<u64, ProbeError> {
        self.process
            .fd_count()
            .map(|n| n as u64)
            .map_err(|e| from_proc(self.pid, "fd", e))
    }

    /// smaps_rollup; fields that cannot be read stay `None`.
    pub fn detail(&self) -> Detail {
        let mut d = Detail::default();
        if let Ok(r) = self.process.smaps_rollup() {
            if let Some(m) = r.memory_map_rollup.0.first() {
                let get = |k: &str| m.extension.map.get(k).copied();
                d.pss = get("Pss");
                d.uss = match (get("Private_Clean"), get("Private_Dirty")) {
                    (Some(a), Some(b)) => Some(a + b),
                    _ => None,
                };
                d.swap = get("Swap");
                d.anon = get("Anonymous");
                d.file = match (get("Rss"), d.anon) {
                    (Some(r), Some(a)) => Some(r.saturating_sub(a)),
                    _ => None,
                };
            }
        }
        d
    }

    /// Whether the expensive fields can be read (they need ptrace rights over the process,
    /// which the cheap ones do not).
    pub fn check_detail_access(&self) -> Result<(), ProbeError> {
        self.process
            .smaps_rollup()
            .map(|_| ())
            .map_err(|e| from_proc(self.pid, "smaps_rollup", e))?;
        self.process
            .fd()
            .map(|_| ())
            .map_err(|e| from_proc(self.pid, "fd", e))
    }

    /// Sends `sig` to this process and to no other: a pidfd is opened on the PID, then the held
    /// handle confirms the original process still exists (so the PID was not reused before the
    /// pidfd was opened), and the signal goes through the pidfd. False when the process is gone.
    pub fn signal(&mut self, sig: i32) -> bool {
        // SAFETY: plain syscalls with integer arguments; the returned fd is owned below.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid, 0) };
        if fd < 0 {
            return false;
        }
        // SAFETY: pidfd_open returned a new descriptor that nothing else owns.
        let pidfd =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        if !self.read_stat().is_ok_and(|st| !st.zombie) {
            return false;
        }
        use std::os::fd::AsRawFd;
        // SAFETY: as above; a null siginfo is allowed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        r == 0
    }

    /// The command line, for reports.
    pub fn cmdline(&self) -> Option<Vec<String>> {
        self.process.cmdline().ok()
    }
}

/// Parses the five fields the hot path needs from a `/proc/PID/stat` line.
///
/// Hand-written rather than procfs's `Stat::from_read` on purpose: that parses all 52 fields and
/// allocates the command name, which benches/sampler.rs measured at ~2× the cost of a raw reader
/// of the same file; this keeps the cheap path within ~1.5× of it. `tests::stat_parse_matches_procfs`
/// checks it against procfs. The command name may contain spaces and ')' — fields are counted
/// from the last ')'.
pub fn parse_stat(line: &[u8]) -> Option<StatReading> {
    let close = line.iter().rposition(|b| *b == b')')?;
    let rest = std::str::from_utf8(&line[close + 1..]).ok()?;
    let mut it = rest.split_ascii_whitespace();
    // Field numbers as in proc(5): 3 state, 4 ppid, 20 num_threads, 22 starttime, 24 rss.
    let state = it.next()?.chars().next()?;
    let ppid: i32 = it.next()?.parse().ok()?;
    let pgrp: i32 = it.next()?.parse().ok()?; // 5
    let mut it = it.skip(14); // fields 6..=19
    let threads: u64 = it.next()?.parse().ok()?; // 20
    let mut it = it.skip(1); // 21 itrealvalue
    let starttime: u64 = it.next()?.parse().ok()?; // 22
    let mut it = it.skip(1); // 23 vsize
    let rss_pages: u64 = it.next()?.parse().ok()?; // 24
    Some(StatReading {
        ppid,
        pgrp,
        starttime,
        rss_bytes: rss_pages.saturating_mul(page_size()),
        threads,
        zombie: state == 'Z',
        stopped: state == 'T' || state == 't',
    })
}

/// Anonymous resident bytes (resident − shared pages) from a `/proc/PID/statm` line
/// (`size resident shared text lib data dt`, in pages).
pub fn parse_statm_anon(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let mut it = text.split_ascii_whitespace();
    let _size: u64 = it.next()?.parse().ok()?;
    let resident: u64 = it.next()?.parse().ok()?;
    let shared: u64 = it.next()?.parse().ok()?;
    Some(resident.saturating_sub(shared).saturating_mul(page_size()))
}

/// Parses one children file (`task/TID/children`: decimal PIDs each followed by a space, e.g.
/// `"812 913 "`) and appends at most `max` PIDs to `out`. `truncated`: the read stopped at its
/// byte bound, so the last token may be cut — it is dropped and the list marked incomplete, as
/// it is past `max` PIDs. `None` when the text is not a PID list (a token that is not a
/// positive decimal `i32`): nothing is appended then.
pub fn parse_children(text: &[u8], truncated: bool, max: usize, out: &mut ChildList) -> Option<()> {
    let text = if truncated {
        out.complete = false;
        // The bytes after the last separator may be the start of a longer PID.
        let cut = text
            .iter()
            .rposition(u8::is_ascii_whitespace)
            .map_or(0, |i| i + 1);
        &text[..cut]
    } else {
        text
    };
    let mut pids = Vec::new();
    for token in text
        .split(u8::is_ascii_whitespace)
        .filter(|t| !t.is_empty())
    {
        // At most 10 digits: the parse below cannot be fed an endless token.
        if token.len() > 10 || !token.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let pid: i32 = std::str::from_utf8(token).ok()?.parse().ok()?;
        if pid <= 0 {
            return None;
        }
        if out.pids.len() + pids.len() >= max {
            out.complete = false;
            break;
        }
        pids.push(pid);
    }
    out.pids.extend(pids);
    Some(())
}

/// Most PIDs one walk of one process collects (all its threads' files together).
pub const CHILDREN_MAX_PIDS: usize = 16 * 1024;

fn merge_children(
    text: &[u8],
    truncated: bool,
    out: &mut ChildList,
    path: impl Fn() -> String,
) -> Result<(), ProbeError> {
    parse_children(text, truncated, CHILDREN_MAX_PIDS, out).ok_or_else(|| ProbeError::Other {
        path: path(),
        source: std::io::Error::other("not a list of PIDs"),
    })
}

/// Opens `rel` below the directory `dir` read-only, never through a symlink (`O_NOFOLLOW`).
fn openat_nofollow(dir: &File, rel: &str) -> std::io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let c = std::ffi::CString::new(rel).map_err(std::io::Error::other)?;
    // SAFETY: `dir` is an open descriptor and `c` a NUL-terminated path that outlive the call.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Reads `f` from offset 0 into `buf` (grown as needed, never past `max` bytes). Returns the
/// length and whether the bound cut the reading.
fn read_bounded_at(f: &File, buf: &mut Vec<u8>, max: usize) -> std::io::Result<(usize, bool)> {
    if buf.len() < 1024 {
        buf.resize(1024, 0);
    }
    let mut len = 0;
    loop {
        let cap = buf.len().min(max);
        let n = f.read_at(&mut buf[len..cap], len as u64)?;
        len += n;
        if n == 0 || len < cap {
            return Ok((len, false));
        }
        if cap >= max {
            return Ok((len, true));
        }
        buf.resize((buf.len() * 2).min(max), 0);
    }
}

/// The system page size in bytes.
pub fn page_size() -> u64 {
    procfs::page_size()
}

/// Reads parent PID and start time of any PID without keeping a handle (tree discovery).
pub fn peek_stat(pid: i32) -> Option<(i32, u64)> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text).map(|s| (s.ppid, s.starttime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs::FromRead;

    #[test]
    fn stat_parse_matches_procfs() {
        let text = std::fs::read("/proc/self/stat").expect("own stat");
        let ours = parse_stat(&text).expect("parses");
        let theirs = procfs::process::Stat::from_read(&text[..]).expect("procfs parses");
        assert_eq!(ours.ppid, theirs.ppid);
        assert_eq!(ours.pgrp, theirs.pgrp);
        assert_eq!(ours.starttime, theirs.starttime);
        assert_eq!(ours.threads, theirs.num_threads as u64);
        assert_eq!(ours.rss_bytes, theirs.rss * page_size());
        // A command name with spaces and parentheses.
        let odd = b"42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 777 1000 55 18446744073709551615";
        let s = parse_stat(odd).expect("parses");
        assert_eq!(
            (s.ppid, s.threads, s.starttime, s.zombie),
            (1, 3, 777, false)
        );
        assert_eq!(s.rss_bytes, 55 * page_size());
        assert!(parse_stat(b"garbage").is_none());
        let t = b"42 (sleep) T 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 1 3";
        assert!(parse_stat(t).is_some_and(|s| s.stopped));
    }

    #[test]
    fn children_file_parses_bounded_and_refuses_malformed_text() {
        let parse = |text: &[u8], truncated: bool, max: usize| {
            let mut out = ChildList {
                complete: true,
                ..ChildList::default()
            };
            parse_children(text, truncated, max, &mut out).map(|()| out)
        };
        // What the kernel writes: each PID followed by a space; an empty file has no children.
        let l = parse(b"812 913 ", false, 100).expect("parses");
        assert_eq!((l.pids, l.complete), (vec![812, 913], true));
        let l = parse(b"", false, 100).expect("empty");
        assert_eq!((l.pids.len(), l.complete), (0, true));
        let l = parse(b"7\n", false, 100).expect("a newline separates too");
        assert_eq!(l.pids, vec![7]);
        // Cut at the byte bound: the last token may be part of a longer PID — dropped.
        let l = parse(b"812 913 10", true, 100).expect("parses");
        assert_eq!((l.pids, l.complete), (vec![812, 913], false));
        let l = parse(b"81", true, 100).expect("one cut token");
        assert_eq!((l.pids.len(), l.complete), (0, false));
        // More PIDs than the bound: the first ones, marked incomplete.
        let l = parse(b"1 2 3 4 ", false, 2).expect("parses");
        assert_eq!((l.pids, l.complete), (vec![1, 2], false));
        // Not a PID list: nothing appended.
        for bad in [
            &b"12 x3 "[..],
            b"-5 ",
            b"0 ",
            b"+5",
            b"99999999999 ",
            b"2147483648 ",
            b"12\x0034",
            b"\xff\xfe",
            b"1.5",
        ] {
            assert!(parse(bad, false, 100).is_none(), "{bad:?}");
        }
        let mut out = ChildList {
            pids: vec![1],
            complete: true,
        };
        assert!(parse_children(b"2 bad ", false, 100, &mut out).is_none());
        assert_eq!(out.pids, vec![1], "a refused list appends nothing");
        // A long file of PIDs stays bounded by `max`.
        let long: Vec<u8> = (1..=20_000)
            .flat_map(|p| format!("{p} ").into_bytes())
            .collect();
        let l = parse(&long, false, CHILDREN_MAX_PIDS).expect("parses");
        assert_eq!((l.pids.len(), l.complete), (CHILDREN_MAX_PIDS, false));
    }

    #[test]
    fn bounded_read_stops_at_its_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        std::fs::write(&p, vec![b'1'; 5000]).expect("write");
        let f = File::open(&p).expect("open");
        let mut buf = Vec::new();
        assert_eq!(
            read_bounded_at(&f, &mut buf, 3000).expect("reads"),
            (3000, true)
        );
        assert_eq!(
            read_bounded_at(&f, &mut buf, 8192).expect("reads"),
            (5000, false)
        );
        assert!(buf.len() <= 8192);
    }

    #[test]
    fn own_children_are_listed_through_the_held_handle() {
        if std::fs::metadata("/proc/thread-self/children").is_err() {
            return; // a kernel without CONFIG_PROC_CHILDREN: the full listing does the work
        }
        let mut kid = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let kid_pid = kid.id() as i32;
        let mut me = ProcHandle::open(std::process::id() as i32).expect("own handle");
        me.read_stat().expect("stat"); // the test harness is multi-threaded: every thread's file
        let mut l = ChildList {
            complete: true,
            ..ChildList::default()
        };
        me.children(&mut l).expect("children");
        let _ = kid.kill();
        let _ = kid.wait();
        assert!(l.pids.contains(&kid_pid), "{kid_pid} not in {:?}", l.pids);
    }

    #[test]
    fn statm_anon_matches_status_rss_anon() {
        // Touch some anonymous memory so the figure is not tiny.
        let mut keep = vec![1u8; 8 << 20];
        keep.iter_mut().step_by(4096).for_each(|b| *b = 3);
        std::hint::black_box(&mut keep);
        let mut h = ProcHandle::open(std::process::id() as i32).expect("own handle");
        let ours = h.read_anon().expect("statm");
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("RssAnon line");
        // Both are read a moment apart by a multi-threaded test binary: allow 2 MiB of drift.
        let diff = (ours as i64 - (kib * 1024) as i64).abs();
        assert!(diff < 2 << 20, "statm {ours} vs status {}", kib * 1024);
        assert!(ours >= 8 << 20);
        assert_eq!(
            parse_statm_anon(b"100 50 20 1 0 40 0"),
            Some(30 * page_size())
        );
        assert_eq!(parse_statm_anon(b"garbage"), None);
        drop(keep);
    }
}
