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
    process: Process,
    stat: File,
    statm: File,
    buf: Vec<u8>,
}

impl ProcHandle {
    /// Opens `/proc/PID` and its stat file.
    pub fn open(pid: i32) -> Result<Self, ProbeError> {
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
            process,
            stat,
            statm,
            buf: Vec::with_capacity(1024),
        };
        h.starttime = h.read_stat()?.starttime;
        Ok(h)
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
        parse_stat(&self.buf[..len]).ok_or_else(|| ProbeError::Other {
            path: format!("/proc/{}/stat", self.pid),
            source: std::io::Error::other("unparsable stat line"),
        })
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
