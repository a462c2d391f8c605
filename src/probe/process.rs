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
    /// Start time in clock ticks after boot (identity of the process together with the PID).
    pub starttime: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Threads.
    pub threads: u64,
    /// Zombie (exited, not yet reaped).
    pub zombie: bool,
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
    process: Process,
    stat: File,
    buf: Vec<u8>,
}

impl ProcHandle {
    /// Opens `/proc/PID` and its stat file.
    pub fn open(pid: i32) -> Result<Self, ProbeError> {
        let process = Process::new(pid).map_err(|e| from_proc(pid, "", e))?;
        let stat = process
            .open_relative("stat")
            .map_err(|e| from_proc(pid, "stat", e))?;
        let mut h = ProcHandle {
            pid,
            starttime: 0,
            process,
            stat,
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
    let mut it = it.skip(15); // fields 5..=19
    let threads: u64 = it.next()?.parse().ok()?; // 20
    let mut it = it.skip(1); // 21 itrealvalue
    let starttime: u64 = it.next()?.parse().ok()?; // 22
    let mut it = it.skip(1); // 23 vsize
    let rss_pages: u64 = it.next()?.parse().ok()?; // 24
    Some(StatReading {
        ppid,
        starttime,
        rss_bytes: rss_pages.saturating_mul(page_size()),
        threads,
        zombie: state == 'Z',
    })
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
    }
}
