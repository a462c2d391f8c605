//! What is measured: a spawned command, an attached PID (with its descendants), or a cgroup v2
//! directory. A [`Target`] knows its process tree, samples it, notices when it ends, and stops
//! a spawned command (SIGTERM to its process group, SIGKILL after a grace period).

use crate::probe::cgroup::CgroupMemory;
use crate::probe::process::{ChildList, ProbeError, ProcHandle, peek_stat};
use crate::sample::{Metric, Sample};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How a target was given (stored with the run as `spawn`, `pid`, `pid_file` or `cgroup`; any
/// other word in a stored run is an error on reading it, not a guess).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A command the sentinel spawned (and stops at the end).
    Spawn,
    /// An attached PID.
    Pid,
    /// A PID read from a PID file.
    PidFile,
    /// A cgroup v2 directory.
    Cgroup,
}

impl TargetKind {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Spawn => "spawn",
            TargetKind::Pid => "pid",
            TargetKind::PidFile => "pid_file",
            TargetKind::Cgroup => "cgroup",
        }
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the target was given, and how to find it again on `resume` (stored with the run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// How it was given.
    pub kind: TargetKind,
    /// The command, for spawned targets.
    pub command: Vec<String>,
    /// Root PID (spawned or attached).
    pub pid: Option<i32>,
    /// Start time of the root process, clock ticks after boot (detects PID reuse).
    pub starttime: Option<u64>,
    /// The PID file, for pid_file targets.
    pub pid_file: Option<PathBuf>,
    /// The cgroup directory, for cgroup targets.
    pub cgroup: Option<PathBuf>,
    /// Whether descendants are measured.
    pub include_children: bool,
}

/// How the target ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetExit {
    /// Exit code, when it exited normally and we could see it.
    pub code: Option<i32>,
    /// Terminating signal, when it was killed.
    pub signal: Option<i32>,
    /// One sentence.
    pub description: String,
}

/// Processes the sentinel runs for itself on other threads (attribution summarisers, heaptrack
/// tools): [`Target::reap_orphans`] leaves them to the thread that waits for them. Registered
/// right after the spawn; a helper exits after milliseconds at the earliest.
static HELPERS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// A helper process was started (see [`HELPERS`]).
pub fn helper_started(pid: u32) {
    HELPERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(pid as i32);
}

/// A helper process was waited for.
pub fn helper_done(pid: u32) {
    HELPERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|p| *p != pid as i32);
}

/// A live target.
pub struct Target {
    /// What it is.
    pub info: TargetInfo,
    child: Option<Child>,
    procs: HashMap<i32, ProcHandle>,
    not_ours: HashMap<i32, u64>,
    me: i32,
    /// Process group this sentinel started (set on resume of a spawned target).
    owned_pgid: Option<i32>,
    /// Where a cgroup target's memory figures are read (v2 or v1 memory controller).
    cgroup_memory: Option<CgroupMemory>,
    /// The tree's JVMs, read through their hsperfdata counters.
    jvms: crate::probe::jvm::Jvms,
    /// Notes on JVMs whose counters cannot be read, for the session to show once.
    jvm_notes: Vec<String>,
    /// How the tree's new members are found at every sample (children files).
    walk: Walk,
    /// The time of the last sample (seconds; paces the looks for starting JVMs).
    last_t: f64,
}

/// Finding new members at every sample through `/proc/PID/task/TID/children` (see
/// [`Target::walk_children`]); the full /proc listing of [`Target::refresh_tree`] stays as the
/// slower fallback.
#[derive(Debug, Default)]
struct Walk {
    /// The kernel has children files (CONFIG_PROC_CHILDREN, Linux ≥ 3.5).
    supported: bool,
    /// A walk since the last full listing could not read everything: list /proc soon.
    incomplete: bool,
    /// Children seen as zombies since the last full listing (not measured; not reopened at
    /// every sample while their parent has not reaped them).
    zombies: HashSet<i32>,
    /// The sentinel itself, for a spawned target: orphans reparent to it (child subreaper).
    me: Option<ProcHandle>,
    /// Reused between walks.
    list: ChildList,
    queue: Vec<i32>,
}

/// At most this many new members are added by one walk (a fork storm cannot hold a sample; the
/// rest are found by the next walk).
const WALK_MAX_NEW: usize = 4096;

impl Walk {
    fn new(spawned: bool) -> Walk {
        let me = std::process::id() as i32;
        // The sentinel's own main thread (TID = PID) has the file exactly when the kernel does.
        let supported = std::fs::symlink_metadata(format!("/proc/{me}/task/{me}/children"))
            .is_ok_and(|m| m.is_file());
        Walk {
            supported,
            me: if spawned && supported {
                ProcHandle::open(me).ok()
            } else {
                None
            },
            ..Walk::default()
        }
    }
}

impl Target {
    /// Spawns `command` in its own process group with `env` added, and becomes its child
    /// subreaper so that orphaned grandchildren stay in the measured tree.
    /// `output`: a file for the target's stdout and stderr (appended, created 0600, never
    /// through a symlink).
    pub fn spawn(
        command: &[String],
        env: &[(String, String)],
        output: Option<&std::path::Path>,
    ) -> Result<Target> {
        let (prog, args) = command
            .split_first()
            .ok_or_else(|| crate::exit::usage("no command given after '--'"))?;
        // SAFETY-free: prctl through nix is a plain syscall wrapper.
        #[cfg(target_os = "linux")]
        let _ = nix::sys::prctl::set_child_subreaper(true);
        let mut cmd = Command::new(prog);
        cmd.args(args).process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(path) = output {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| {
                    crate::exit::usage(format!(
                        "--target-output: cannot open '{}': {e}",
                        path.display()
                    ))
                })?;
            let err = f.try_clone().context("duplicating the output file")?;
            cmd.stdout(f).stderr(err);
        }
        let child = cmd.spawn().map_err(|e| {
            let msg = format!("cannot start '{prog}': {e}");
            // Out of processes, memory or descriptors is the machine's failure; anything else
            // (no such file, not executable, exec format error) is the command the user typed.
            match e.raw_os_error() {
                Some(libc::EAGAIN | libc::ENOMEM | libc::EMFILE | libc::ENFILE) => {
                    anyhow::anyhow!(msg)
                }
                _ => crate::exit::usage(msg),
            }
        })?;
        let pid = i32::try_from(child.id()).context("child PID out of range")?;
        let root = ProcHandle::open(pid).map_err(anyhow::Error::from)?;
        let mut t = Target {
            info: TargetInfo {
                kind: TargetKind::Spawn,
                command: command.to_vec(),
                pid: Some(pid),
                starttime: Some(root.starttime),
                pid_file: None,
                cgroup: None,
                include_children: true,
            },
            child: Some(child),
            procs: HashMap::from([(pid, root)]),
            not_ours: HashMap::new(),
            me: std::process::id() as i32,
            owned_pgid: None,
            cgroup_memory: None,
            jvms: Default::default(),
            last_t: 0.0,
            jvm_notes: Vec::new(),
            walk: Walk::new(true),
        };
        t.refresh_tree();
        Ok(t)
    }

    /// Attaches to a running process. `expected_starttime` (on resume) must match, or the PID
    /// now belongs to another process.
    pub fn attach(
        pid: i32,
        include_children: bool,
        expected_starttime: Option<u64>,
    ) -> Result<Target> {
        let root = ProcHandle::open(pid).map_err(|e| match e {
            ProbeError::Gone(_) => crate::exit::usage(format!("no process with PID {pid}")),
            ProbeError::Denied(p) => crate::exit::usage(ProbeError::Denied(p).to_string()),
            other => anyhow::Error::from(other),
        })?;
        let mut root = root;
        if root.read_stat().map(|s| s.zombie).unwrap_or(true) {
            return Err(crate::exit::usage(format!("process {pid} has exited")));
        }
        if let Some(want) = expected_starttime {
            if root.starttime != want {
                anyhow::bail!(
                    "PID {pid} now belongs to another process (start time {} ≠ {want}): the target is gone",
                    root.starttime
                );
            }
        }
        // A kernel thread has no memory or descriptors of its own: a soak test of it would
        // pass on zeros.
        if is_kernel_thread(pid) {
            return Err(crate::exit::usage(format!(
                "PID {pid} is a kernel thread: it has no memory or descriptors of its own to measure"
            )));
        }
        // Reading the FD table needs ptrace rights: check now, not an hour in.
        root.fd_count()
            .map_err(|e| crate::exit::usage(e.to_string()))?;
        let cmdline = root.cmdline().unwrap_or_default();
        let mut t = Target {
            info: TargetInfo {
                kind: TargetKind::Pid,
                command: cmdline,
                pid: Some(pid),
                starttime: Some(root.starttime),
                pid_file: None,
                cgroup: None,
                include_children,
            },
            child: None,
            procs: HashMap::from([(pid, root)]),
            not_ours: HashMap::new(),
            me: std::process::id() as i32,
            owned_pgid: None,
            cgroup_memory: None,
            jvms: Default::default(),
            last_t: 0.0,
            jvm_notes: Vec::new(),
            walk: Walk::new(false),
        };
        t.refresh_tree();
        Ok(t)
    }

    /// Measures the processes of a cgroup v2 directory (and its memory.current when the memory
    /// controller is enabled there).
    pub fn cgroup(dir: PathBuf) -> Result<Target> {
        let procs = dir.join("cgroup.procs");
        std::fs::read_to_string(&procs).map_err(|e| {
            crate::exit::usage(format!(
                "'{}' is not a readable cgroup v2 directory ({e})",
                dir.display()
            ))
        })?;
        let mut t = Target {
            info: TargetInfo {
                kind: TargetKind::Cgroup,
                command: Vec::new(),
                pid: None,
                starttime: None,
                pid_file: None,
                cgroup: Some(dir),
                include_children: true,
            },
            child: None,
            procs: HashMap::new(),
            not_ours: HashMap::new(),
            me: std::process::id() as i32,
            owned_pgid: None,
            cgroup_memory: None,
            jvms: Default::default(),
            last_t: 0.0,
            jvm_notes: Vec::new(),
            walk: Walk::default(),
        };
        t.refresh_tree();
        Ok(t)
    }

    /// The processes measured now, with their start times, command lines and own figures
    /// (private memory, FDs, threads) — for the diagnosis's per-process attribution.
    pub fn processes(&mut self) -> Vec<crate::diagnose::ProcInfo> {
        let mut v: Vec<crate::diagnose::ProcInfo> = self
            .procs
            .values_mut()
            .map(|h| {
                let st = h.read_stat().ok();
                let private = h.read_anon().ok().map(|a| a.saturating_add(h.swap));
                crate::diagnose::ProcInfo {
                    pid: h.pid,
                    starttime: h.starttime,
                    command: h
                        .cmdline()
                        .filter(|c| !c.is_empty())
                        .map(|c| c.join(" "))
                        .unwrap_or_else(|| format!("[{}]", h.pid)),
                    private_bytes: private,
                    fds: h.fd_count().ok(),
                    threads: st.map(|s| s.threads),
                }
            })
            .collect();
        v.sort_by_key(|p| p.pid);
        v
    }

    /// PIDs measured now.
    pub fn pids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.procs.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Finds new members of the tree: new PIDs in /proc whose parent is in the tree (or is the
    /// sentinel itself, for orphans reparented to it). Only PIDs not seen before are read, so a
    /// refresh costs one directory listing plus one read per new process. The slower fallback
    /// of the walk every sample makes through the children files ([`Target::sample`]): for a
    /// kernel without them, and as the safety net for what a walk missed.
    pub fn refresh_tree(&mut self) {
        self.refresh_members();
        let procs: Vec<(i32, u64)> = self.procs.values().map(|h| (h.pid, h.starttime)).collect();
        let notes = self.jvms.discover(&procs, self.last_t, true);
        self.jvm_notes.extend(notes);
    }

    /// The PIDs of the tree's JVMs whose counters are read.
    pub fn jvm_pids(&self) -> Vec<i32> {
        self.jvms.pids()
    }

    /// The full collections asked of the JVMs have finished (see
    /// [`crate::probe::jvm::Jvms::full_gc_done`]).
    pub fn jvm_full_gc_done(&mut self) {
        self.jvms.full_gc_done();
    }

    /// Whether new members are found at every sample (children files readable, nothing missed
    /// since the last full listing): the full listing can then wait longer. False for cgroup
    /// targets (their member list is one file) and `--no-children`.
    pub fn walks_children(&self) -> bool {
        self.walk.supported
            && !self.walk.incomplete
            && self.info.include_children
            && self.info.cgroup.is_none()
    }

    /// Finds the children of every tracked process through its children files and adds the
    /// new ones, recursively, so a process that lives one sample interval is measured in that
    /// sample. A child is its PID and start time: the PID read from the parent's list is opened,
    /// and kept only if that process's parent is still the one that listed it and it started
    /// no earlier than its parent (not a PID reused in between). For a spawned target the
    /// sentinel's own children are walked too (orphans reparent to it, the child subreaper).
    /// Anything not read completely marks the walk incomplete: the full listing comes sooner.
    fn walk_children(&mut self) -> usize {
        if !self.walk.supported || !self.info.include_children || self.info.cgroup.is_some() {
            return 0;
        }
        let mut queue = std::mem::take(&mut self.walk.queue);
        let mut list = std::mem::take(&mut self.walk.list);
        queue.clear();
        queue.extend(self.procs.keys().copied());
        if self.walk.me.is_some() {
            queue.push(self.me);
        }
        let mut added = 0;
        let mut i = 0;
        while let Some(&parent) = queue.get(i) {
            i += 1;
            let h = if parent == self.me {
                self.walk.me.as_mut()
            } else {
                self.procs.get_mut(&parent)
            };
            let Some(h) = h else {
                continue;
            };
            if parent == self.me {
                // The sentinel's thread count changes (publishers, servers): keep it current.
                let _ = h.read_stat();
            }
            let parent_start = h.starttime;
            list.pids.clear();
            list.complete = true;
            match h.children(&mut list) {
                Ok(()) => self.walk.incomplete |= !list.complete,
                Err(ProbeError::Gone(_)) => continue,
                Err(_) => {
                    self.walk.incomplete = true;
                    continue;
                }
            }
            for &kid in &list.pids {
                if kid == self.me
                    || self.procs.contains_key(&kid)
                    || self.walk.zombies.contains(&kid)
                {
                    continue;
                }
                if added >= WALK_MAX_NEW {
                    self.walk.incomplete = true;
                    break;
                }
                let Ok((ch, st)) = ProcHandle::open_with_stat(kid) else {
                    continue; // gone already
                };
                if st.ppid != parent || ch.starttime < parent_start {
                    continue; // the PID now belongs to someone else's process
                }
                if st.zombie {
                    self.walk.zombies.insert(kid);
                    continue;
                }
                self.not_ours.remove(&kid);
                self.procs.insert(kid, ch);
                queue.push(kid);
                added += 1;
            }
        }
        self.walk.queue = queue;
        self.walk.list = list;
        added
    }

    /// Notes on JVMs whose counters cannot be read, once each.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.jvm_notes)
    }

    fn refresh_members(&mut self) {
        if let Some(dir) = &self.info.cgroup {
            let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
                return;
            };
            let members: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            self.procs.retain(|pid, _| members.contains(pid));
            for pid in &members {
                if let std::collections::hash_map::Entry::Vacant(e) = self.procs.entry(*pid) {
                    if let Ok(h) = ProcHandle::open(*pid) {
                        e.insert(h);
                    }
                }
            }
            if self.cgroup_memory.is_none() {
                self.cgroup_memory = CgroupMemory::find(dir, members.first().copied());
            }
            return;
        }
        if !self.info.include_children {
            return;
        }
        // A tracked process that ended frees its PID: forget it now, so that a new process
        // reusing the PID is examined as itself (the root stays: its end is poll_exit's).
        let root = self.info.pid;
        self.procs
            .retain(|pid, h| Some(*pid) == root || h.read_stat().is_ok_and(|st| !st.zombie));
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return;
        };
        // This listing catches what the walks could not read (or missed while the kernel
        // built a list): start afresh.
        self.walk.incomplete = false;
        self.walk.zombies.clear();
        let mut seen = Vec::new();
        let mut candidates: Vec<(i32, i32)> = Vec::new();
        for entry in rd.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            seen.push(pid);
            // Never measure the sentinel itself (it may be a descendant of an attached shell).
            if pid == self.me || self.procs.contains_key(&pid) {
                continue;
            }
            let Some((ppid, start)) = peek_stat(pid) else {
                continue;
            };
            // A process is its PID and start time: a PID that was someone else's before and now
            // belongs to a new process (reused between two refreshes) is examined afresh.
            if self.not_ours.get(&pid) == Some(&start) {
                continue;
            }
            candidates.push((pid, ppid));
            self.not_ours.insert(pid, start);
        }
        // Forget PIDs that vanished, so a reused PID is examined afresh.
        seen.sort_unstable();
        self.not_ours
            .retain(|pid, _| seen.binary_search(pid).is_ok());
        let spawned = self.child.is_some();
        loop {
            let mut added = false;
            for (pid, ppid) in &candidates {
                if self.procs.contains_key(pid) {
                    continue;
                }
                if self.procs.contains_key(ppid) || (spawned && *ppid == self.me) {
                    if let Ok(h) = ProcHandle::open(*pid) {
                        self.not_ours.remove(pid);
                        self.procs.insert(*pid, h);
                        added = true;
                    }
                }
            }
            if !added {
                break;
            }
        }
    }

    /// Has the target ended? Spawned: its exit status; attached: the root is gone or a zombie;
    /// cgroup: no processes left.
    pub fn poll_exit(&mut self) -> Option<TargetExit> {
        if let Some(child) = &mut self.child {
            let status = match child.try_wait() {
                Ok(Some(s)) => Some(s),
                Ok(None) => None,
                Err(e) => {
                    return Some(TargetExit {
                        code: None,
                        signal: None,
                        description: format!("lost track of the target: {e}"),
                    });
                }
            };
            // Reap orphans reparented to us (we are their subreaper), never the main child.
            self.reap_orphans();
            return status.map(|s| describe_status(s.code(), s.signal()));
        }
        if self.info.cgroup.is_some() {
            return if self.procs.is_empty() {
                Some(TargetExit {
                    code: None,
                    signal: None,
                    description: "the cgroup has no processes left".into(),
                })
            } else {
                None
            };
        }
        let pid = self.info.pid?;
        let gone = match self.procs.get_mut(&pid) {
            None => true,
            Some(h) => match h.read_stat() {
                Ok(s) => s.zombie,
                Err(_) => true,
            },
        };
        gone.then(|| TargetExit {
            code: None,
            signal: None,
            description: format!("process {pid} exited (exit status unknown: not our child)"),
        })
    }

    /// Reaps every exited process the sentinel is parent or subreaper of, except the main
    /// child and the sentinel's own helpers ([`helper_started`]: their threads wait for them) (whose status `try_wait` must get). Orphans that lived less than a tree refresh were
    /// never tracked, so this asks the kernel (`waitid(P_ALL, WNOWAIT)` to peek, then a reap by
    /// PID) rather than walking the tracked processes.
    fn reap_orphans(&mut self) {
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
        let main = self.child.as_ref().map(|c| c.id() as i32);
        // Bounded: at most this many reaps per call (a fork storm cannot hold the loop).
        for _ in 0..4096 {
            let peek = waitid(
                Id::All,
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
            );
            let pid = match peek {
                Ok(WaitStatus::Exited(pid, _)) | Ok(WaitStatus::Signaled(pid, _, _)) => pid,
                _ => return, // none exited (StillAlive), no children (ECHILD), or an error
            };
            if Some(pid.as_raw()) == main {
                return; // the main child's status is try_wait's; the run ends with it
            }
            if HELPERS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&pid.as_raw())
            {
                return; // a helper's status is its waiting thread's (peeked again next time)
            }
            let _ = waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG);
            self.procs.remove(&pid.as_raw());
        }
    }

    /// Reads the tree: cheap fields always, smaps_rollup when `detail` (FD kinds come from
    /// [`Target::inventory`]). New children of tracked processes are found first (one read of
    /// a children file per process), so the sample covers every process alive now.
    /// Processes that vanished since the last refresh are dropped (the root's end is noticed by
    /// [`Target::poll_exit`]). Returns the sample and the first non-"gone" error, if any.
    pub fn sample(&mut self, t: f64, detail: bool) -> (Sample, Option<ProbeError>) {
        self.last_t = t;
        let added = self.walk_children();
        if added > 0 || self.jvms.retry_due(t) {
            let procs: Vec<(i32, u64)> =
                self.procs.values().map(|h| (h.pid, h.starttime)).collect();
            let notes = self.jvms.discover(&procs, t, false);
            self.jvm_notes.extend(notes);
        }
        let mut s = Sample::at(t);
        let mut first_err = None;
        let mut gone = Vec::new();
        let mut processes = 0.0;
        let (mut stopped, mut root_stopped) = (0.0, false);
        for (pid, h) in self.procs.iter_mut() {
            let st = match h.read_stat() {
                Ok(st) if !st.zombie => st,
                Ok(_) | Err(ProbeError::Gone(_)) => {
                    gone.push(*pid);
                    continue;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            processes += 1.0;
            if st.stopped {
                stopped += 1.0;
                root_stopped |= Some(*pid) == self.info.pid;
            }
            s.add(Metric::RssBytes, st.rss_bytes as f64);
            s.add(Metric::Threads, st.threads as f64);
            match h.fd_count() {
                Ok(n) => s.add(Metric::Fds, n as f64),
                Err(ProbeError::Gone(_)) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
            let d = detail.then(|| h.detail());
            if let Some(sw) = d.and_then(|d| d.swap) {
                h.swap = sw;
            }
            // Private memory: anonymous resident now plus swap as of the last detail reading.
            match h.read_anon() {
                Ok(a) => s.add(Metric::RssAnonBytes, a.saturating_add(h.swap) as f64),
                Err(ProbeError::Gone(_)) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
            if let Some(d) = d {
                let pairs = [
                    (Metric::PssBytes, d.pss),
                    (Metric::UssBytes, d.uss),
                    (Metric::SwapBytes, d.swap),
                    (Metric::AnonBytes, d.anon),
                    (Metric::FileBytes, d.file),
                ];
                for (m, v) in pairs {
                    if let Some(v) = v {
                        s.add(m, v as f64);
                    }
                }
            }
        }
        let root = self.info.pid;
        for pid in gone {
            if Some(pid) != root {
                self.procs.remove(&pid);
            }
        }
        s.set(Metric::Processes, Some(processes));
        // Not running, so not observed: a stopped root (SIGSTOP, a debugger), or a cgroup whose
        // processes are all stopped or that is frozen.
        let frozen = self.info.cgroup.as_ref().is_some_and(|d| {
            std::fs::read_to_string(d.join("cgroup.events"))
                .is_ok_and(|e| e.lines().any(|l| l.trim() == "frozen 1"))
        });
        let halted = match self.info.pid {
            Some(_) => root_stopped,
            None => processes > 0.0 && stopped == processes,
        };
        s.set(
            Metric::TargetStopped,
            Some(f64::from(u8::from(halted || frozen))),
        );
        let mut heap_private = None;
        if let Some(j) = self.jvms.sample(t) {
            heap_private = Some(j.heap_committed_private);
            s.set(Metric::JvmHeapUsedBytes, Some(j.heap_used));
            s.set(Metric::JvmHeapCommittedBytes, Some(j.heap_committed));
            s.set(Metric::JvmLiveBytes, j.live);
            s.set(Metric::JvmMetaspaceBytes, Some(j.metaspace));
            s.set(Metric::JvmGcTotal, Some(j.gc_count));
            s.set(Metric::JvmGcSecondsTotal, Some(j.gc_seconds));
        }
        if let Some(m) = &self.cgroup_memory {
            // The cgroup's own figures: they include processes the sentinel cannot read.
            let r = m.read();
            s.set(Metric::CgroupMemoryBytes, r.usage);
            if r.private.is_some() {
                s.set(Metric::RssAnonBytes, r.private);
            }
        }
        // Private memory outside the heap: the heap's private part is subtracted (none of it
        // for ZGC, whose heap is shared memory: its private memory is all outside the heap).
        if let (Some(p), Some(h)) = (s.get(Metric::RssAnonBytes), heap_private) {
            s.set(Metric::OutsideHeapBytes, Some((p - h).max(0.0)));
        }
        (s, first_err)
    }

    /// Stops a spawned target: `signal` (SIGTERM, or the SIGINT/SIGTERM the sentinel received,
    /// forwarded) to its process group and any tracked descendant that left it, SIGKILL after
    /// `grace`. Attached targets are left alone. Returns how it ended.
    pub fn stop(
        &mut self,
        grace: Duration,
        signal: nix::sys::signal::Signal,
    ) -> Option<TargetExit> {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        // Whatever is left of the tree: its process group and every tracked descendant (some
        // may have left the group). The main child may already be gone: the rest is not.
        let group_alive = |pgid: Pid| killpg(pgid, None).is_ok();
        if self.child.is_none() {
            // A resumed spawned target: what is left of the tree the earlier sentinel started —
            // every tracked process and every member of its process group started after its root
            // — signalled one by one through identity-checked handles, root alive or not.
            let root = self.owned_pgid?;
            let since = self.info.starttime.unwrap_or(0);
            let mut left: Vec<ProcHandle> = group_members(root, since);
            left.retain(|h| !self.procs.contains_key(&h.pid));
            let mut all: Vec<&mut ProcHandle> =
                self.procs.values_mut().chain(left.iter_mut()).collect();
            for h in all.iter_mut() {
                h.signal(signal as i32);
            }
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline
                && all
                    .iter_mut()
                    .any(|h| h.read_stat().is_ok_and(|st| !st.zombie))
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            for h in all.iter_mut() {
                h.signal(Signal::SIGKILL as i32);
            }
            return None;
        }
        let pgid = Pid::from_raw(self.child.as_ref()?.id() as i32);
        let mut status = self.child.as_mut()?.try_wait().ok().flatten();
        let _ = killpg(pgid, signal);
        // Descendants that left the group: by identity (PID + start time), never a reused PID.
        for h in self.procs.values_mut() {
            h.signal(signal as i32);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if status.is_none() {
                status = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
            }
            // Zombies still count as group members: reap them, or the group looks alive.
            self.reap_orphans();
            if status.is_some() && !group_alive(pgid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(pgid, Signal::SIGKILL);
        for h in self.procs.values_mut() {
            h.signal(Signal::SIGKILL as i32);
        }
        let status = status.or_else(|| self.child.as_mut().and_then(|c| c.wait().ok()));
        self.reap_orphans();
        status.map(|s| describe_status(s.code(), s.signal()))
    }

    /// A target that is gone: nothing to sample or stop (a resume that found it dead).
    /// A spawned one still owns what is left of its process group: [`Target::stop`] stops
    /// the descendants that outlived the root.
    pub fn detached(info: TargetInfo) -> Target {
        let owned_pgid = (info.kind == TargetKind::Spawn)
            .then_some(info.pid)
            .flatten();
        Target {
            info,
            child: None,
            procs: HashMap::new(),
            not_ours: HashMap::new(),
            me: std::process::id() as i32,
            owned_pgid,
            cgroup_memory: None,
            jvms: Default::default(),
            last_t: 0.0,
            jvm_notes: Vec::new(),
            walk: Walk::default(),
        }
    }

    /// Marks an attached root as one an earlier sentinel spawned in its own process group, so
    /// that [`Target::stop`] stops it as if this sentinel had spawned it.
    pub fn adopt_process_group(&mut self) {
        self.owned_pgid = self.info.pid;
    }

    /// Readings this sentinel is not allowed to take (another user's process): one warning per
    /// process whose smaps_rollup or FD table is closed to us. The cheap fields still work.
    pub fn access_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.info.pid == Some(1) && self.info.include_children {
            out.push(
                "the target is PID 1: with its descendants that is every process of this machine (or container) — use --no-children for PID 1 alone, or attach to the service itself".to_string(),
            );
        }
        out.extend(self.access_checks());
        out
    }

    fn access_checks(&self) -> Vec<String> {
        // Access depends on the owner: one process per user is enough (a check reads
        // smaps_rollup, which walks every page — 100 of them would dominate startup).
        use std::os::unix::fs::MetadataExt;
        let mut seen_uids = std::collections::HashSet::new();
        self.procs
            .values()
            .filter(|h| {
                let uid = std::fs::metadata(format!("/proc/{}", h.pid)).map_or(u32::MAX, |m| m.uid());
                seen_uids.insert(uid)
            })
            .filter_map(|h| match h.check_detail_access() {
                Err(ProbeError::Denied(path)) => Some(format!(
                    "cannot read {path}: permission denied (the process belongs to another user); PSS/USS/swap and FDs by kind will be missing — run leak-sentinel as that user or as root for them"
                )),
                _ => None,
            })
            .collect()
    }

    /// The FD inventory of the tree (kinds and targets of every descriptor).
    pub fn inventory(&self) -> crate::diagnose::fds::Inventory {
        crate::probe::fds::inventory(&self.pids())
    }

    /// The memory-map breakdown of the tree.
    pub fn maps(&self, t: f64) -> crate::diagnose::maps::MapsSummary {
        crate::probe::maps::snapshot(&self.pids(), t)
    }

    /// Whether the target was spawned by this sentinel.
    pub fn spawned(&self) -> bool {
        self.child.is_some()
    }
}

/// Live members of process group `pgid` started at or after `since` (clock ticks after boot),
/// as handles: what is left of a spawned tree whose root may already be gone.
pub fn group_members(pgid: i32, since: u64) -> Vec<ProcHandle> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|pid| *pid != me)
        .filter_map(|pid| {
            let st = crate::probe::process::parse_stat(
                &std::fs::read(format!("/proc/{pid}/stat")).ok()?,
            )?;
            (st.pgrp == pgid && st.starttime >= since && !st.zombie).then_some((pid, st.starttime))
        })
        // The handle must be the process just read, not a PID reused in between.
        .filter_map(|(pid, start)| ProcHandle::open(pid).ok().filter(|h| h.starttime == start))
        .collect()
}

/// Whether `pid` is a kernel thread (PF_KTHREAD in the flags of /proc/PID/stat, field 9).
pub fn is_kernel_thread(pid: i32) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let Ok(text) = std::fs::read(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = text.iter().rposition(|b| *b == b')') else {
        return false;
    };
    std::str::from_utf8(&text[close + 1..])
        .ok()
        .and_then(|rest| rest.split_ascii_whitespace().nth(6)?.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_KTHREAD != 0)
}

fn describe_status(code: Option<i32>, signal: Option<i32>) -> TargetExit {
    let description = match (code, signal) {
        (Some(c), _) => format!("the target exited with code {c}"),
        (None, Some(s)) => {
            let name = nix::sys::signal::Signal::try_from(s)
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|_| format!("signal {s}"));
            format!("the target was killed by {name}")
        }
        (None, None) => "the target ended".into(),
    };
    TargetExit {
        code,
        signal,
        description,
    }
}

/// Reads a PID file: a regular file of at most 64 bytes holding one positive integer (a FIFO,
/// a device such as `/dev/zero` or a huge file is refused, never read forever).
pub fn read_pid_file(path: &std::path::Path) -> Result<i32> {
    let text = crate::files::read_bounded(path, 64, "PID file")?;
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            crate::exit::usage(format!(
                "PID file '{}' does not hold one positive PID: '{}'",
                path.display(),
                text.trim().escape_debug()
            ))
        })
}
