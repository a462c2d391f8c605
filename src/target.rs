//! What is measured: a spawned command, an attached PID (with its descendants), or a cgroup v2
//! directory. A [`Target`] knows its process tree, samples it, notices when it ends, and stops
//! a spawned command (SIGTERM to its process group, SIGKILL after a grace period).

use crate::probe::process::{ProbeError, ProcHandle, peek_stat};
use crate::sample::{Metric, Sample};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How the target was given, and how to find it again on `resume` (stored with the run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// spawn, pid, pid_file or cgroup.
    pub kind: String,
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
}

impl Target {
    /// Spawns `command` in its own process group with `env` added, and becomes its child
    /// subreaper so that orphaned grandchildren stay in the measured tree.
    pub fn spawn(command: &[String], env: &[(String, String)]) -> Result<Target> {
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
        let child = cmd
            .spawn()
            .map_err(|e| crate::exit::usage(format!("cannot start '{prog}': {e}")))?;
        let pid = i32::try_from(child.id()).context("child PID out of range")?;
        let root = ProcHandle::open(pid).map_err(anyhow::Error::from)?;
        let mut t = Target {
            info: TargetInfo {
                kind: "spawn".into(),
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
        // Reading the FD table needs ptrace rights: check now, not an hour in.
        root.fd_count()
            .map_err(|e| crate::exit::usage(e.to_string()))?;
        let cmdline = root.cmdline().unwrap_or_default();
        let mut t = Target {
            info: TargetInfo {
                kind: "pid".into(),
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
                kind: "cgroup".into(),
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
        };
        t.refresh_tree();
        Ok(t)
    }

    /// PIDs measured now.
    pub fn pids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.procs.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Finds new members of the tree: new PIDs in /proc whose parent is in the tree (or is the
    /// sentinel itself, for orphans reparented to it). Only PIDs not seen before are read, so a
    /// refresh costs one directory listing plus one read per new process.
    pub fn refresh_tree(&mut self) {
        if let Some(dir) = &self.info.cgroup {
            let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
                return;
            };
            let members: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            self.procs.retain(|pid, _| members.contains(pid));
            for pid in members {
                if let std::collections::hash_map::Entry::Vacant(e) = self.procs.entry(pid) {
                    if let Ok(h) = ProcHandle::open(pid) {
                        e.insert(h);
                    }
                }
            }
            return;
        }
        if !self.info.include_children {
            return;
        }
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return;
        };
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
            if pid == self.me || self.procs.contains_key(&pid) || self.not_ours.contains_key(&pid) {
                continue;
            }
            if let Some((ppid, start)) = peek_stat(pid) {
                candidates.push((pid, ppid));
                self.not_ours.insert(pid, start);
            }
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

    fn reap_orphans(&mut self) {
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
        // Only look at zombies that are not the main child (whose status try_wait must get).
        let main = self.child.as_ref().map(|c| c.id() as i32);
        let orphans: Vec<i32> = self
            .procs
            .iter_mut()
            .filter(|(pid, _)| Some(**pid) != main)
            .filter_map(|(pid, h)| match h.read_stat() {
                Ok(s) if s.zombie && s.ppid == self.me => Some(*pid),
                _ => None,
            })
            .collect();
        for pid in orphans {
            let r = waitid(
                Id::Pid(nix::unistd::Pid::from_raw(pid)),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
            );
            if matches!(r, Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..))) {
                self.procs.remove(&pid);
            }
        }
    }

    /// Reads the tree: cheap fields always, smaps_rollup when `detail` (FD kinds come from
    /// [`Target::inventory`]).
    /// Processes that vanished since the last refresh are dropped (the root's end is noticed by
    /// [`Target::poll_exit`]). Returns the sample and the first non-"gone" error, if any.
    pub fn sample(&mut self, t: f64, detail: bool) -> (Sample, Option<ProbeError>) {
        let mut s = Sample::at(t);
        let mut first_err = None;
        let mut gone = Vec::new();
        let mut processes = 0.0;
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
            s.add(Metric::RssBytes, st.rss_bytes as f64);
            s.add(Metric::Threads, st.threads as f64);
            match h.fd_count() {
                Ok(n) => s.add(Metric::Fds, n as f64),
                Err(ProbeError::Gone(_)) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
            if detail {
                let d = h.detail();
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
        if let Some(dir) = &self.info.cgroup {
            let cur = std::fs::read_to_string(dir.join("memory.current"))
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok());
            s.set(Metric::CgroupMemoryBytes, cur);
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
        use nix::sys::signal::{Signal, kill, killpg};
        use nix::unistd::Pid;
        // Whatever is left of the tree: its process group and every tracked descendant (some
        // may have left the group). The main child may already be gone: the rest is not.
        let group_alive = |pgid: Pid| killpg(pgid, None).is_ok();
        let tracked: Vec<Pid> = self.procs.keys().map(|p| Pid::from_raw(*p)).collect();
        if self.child.is_none() {
            let root = self.owned_pgid?;
            // Only signal the group the earlier sentinel started if its root is still that
            // process (same start time through the held handle), not a reused PID.
            let ours = self
                .procs
                .get_mut(&root)
                .is_some_and(|h| h.read_stat().is_ok_and(|st| !st.zombie));
            if !ours {
                return None;
            }
            let pgid = Pid::from_raw(root);
            let _ = killpg(pgid, signal);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline && group_alive(pgid) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = killpg(pgid, Signal::SIGKILL);
            return None;
        }
        let child = self.child.as_mut()?;
        let pgid = Pid::from_raw(child.id() as i32);
        let mut status = child.try_wait().ok().flatten();
        let _ = killpg(pgid, signal);
        for pid in &tracked {
            let _ = kill(*pid, signal);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if status.is_none() {
                status = child.try_wait().ok().flatten();
            }
            if status.is_some() && !group_alive(pgid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(pgid, Signal::SIGKILL);
        for pid in &tracked {
            let _ = kill(*pid, Signal::SIGKILL);
        }
        let status = status.or_else(|| child.wait().ok());
        self.reap_orphans();
        status.map(|s| describe_status(s.code(), s.signal()))
    }

    /// A target that is gone: nothing to sample or stop (a resume that found it dead).
    pub fn detached(info: TargetInfo) -> Target {
        Target {
            info,
            child: None,
            procs: HashMap::new(),
            not_ours: HashMap::new(),
            me: std::process::id() as i32,
            owned_pgid: None,
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
        self.procs
            .values()
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
