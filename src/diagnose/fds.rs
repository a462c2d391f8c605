//! FD inventory as data: every descriptor of the target tree with its kind and what it points
//! at (read by [`crate::probe::fds`]), and a tracker that remembers when each one was first seen.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FdKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Character or block device.
    Device,
    /// TCP socket.
    Tcp,
    /// UDP socket.
    Udp,
    /// Unix-domain socket.
    Unix,
    /// Socket of another family or not found in /proc/net.
    Socket,
    /// Pipe or FIFO.
    Pipe,
    /// anon_inode (eventfd, eventpoll, timerfd, inotify, signalfd…).
    AnonInode,
    /// memfd.
    Memfd,
    /// Anything else.
    Other,
}

impl FdKind {
    /// The sample metric bucket (socket, pipe, file, anon_inode, other) of this kind.
    pub fn bucket(self) -> usize {
        match self {
            FdKind::Tcp | FdKind::Udp | FdKind::Unix | FdKind::Socket => 0,
            FdKind::Pipe => 1,
            FdKind::File | FdKind::Dir | FdKind::Device => 2,
            FdKind::AnonInode => 3,
            FdKind::Memfd | FdKind::Other => 4,
        }
    }
}

/// One open descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FdEntry {
    /// Owning process.
    pub pid: i32,
    /// Descriptor number.
    pub fd: i32,
    /// Its kind.
    pub kind: FdKind,
    /// What it points at, for people (`/var/log/app/x.log`,
    /// `tcp 127.0.0.1:40312 → 127.0.0.1:6379 ESTABLISHED`, `pipe:[1234]`, `anon_inode:[eventfd]`).
    pub target: String,
    /// The group it is counted in (`tcp → 127.0.0.1:6379 ESTABLISHED`, `files under /var/log/app/`).
    pub group: String,
}

impl FdEntry {
    /// Identity across inventories: the same process, number and target — a socket's TCP state
    /// is left out, so a connection going from ESTABLISHED to CLOSE_WAIT stays the same
    /// descriptor (its first-seen time and counts are kept).
    pub fn key(&self) -> (i32, i32, String) {
        const STATES: [&str; 12] = [
            " ESTABLISHED",
            " SYN_SENT",
            " SYN_RECV",
            " FIN_WAIT1",
            " FIN_WAIT2",
            " TIME_WAIT",
            " CLOSE_WAIT",
            " LAST_ACK",
            " LISTEN",
            " CLOSING",
            " NEW_SYN_RECV",
            " CLOSE",
        ];
        let target = match self.kind {
            FdKind::Tcp => STATES
                .iter()
                .find_map(|st| self.target.strip_suffix(st))
                .unwrap_or(&self.target),
            _ => &self.target,
        };
        (self.pid, self.fd, target.to_string())
    }
}

/// One inventory of the tree.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inventory {
    /// Every descriptor read.
    pub entries: Vec<FdEntry>,
    /// True when a process vanished or a /proc entry disappeared while reading.
    pub partial: bool,
    /// Processes whose descriptor table was read completely.
    #[serde(default)]
    pub complete_pids: Vec<i32>,
    /// Processes that were gone when read (all their descriptors are closed).
    #[serde(default)]
    pub gone_pids: Vec<i32>,
}

impl Inventory {
    /// Whether what this inventory says about `pid` is complete: read entirely, or gone.
    pub fn knows(&self, pid: i32) -> bool {
        !self.partial || self.complete_pids.contains(&pid) || self.gone_pids.contains(&pid)
    }
}

/// Remembers when each descriptor was first seen, across inventories, and how long the closed
/// ones of each group lived: the age a descriptor must pass to have outlived its group's churn.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    first_seen: HashMap<(i32, i32, String), f64>,
    /// Per group, the longest life of a descriptor seen open and then closed.
    churn_age: HashMap<String, f64>,
    /// When the first inventory was taken (the earliest a descriptor can be first seen).
    since: Option<f64>,
    /// Whether survivors are counted yet (see [`Tracker::surviving`]).
    counting: bool,
}

/// What changed between two inventories.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Descriptors new in this inventory.
    pub opened: Vec<FdEntry>,
    /// Descriptors gone since the last one.
    pub closed: Vec<FdEntry>,
}

impl Tracker {
    /// Records an inventory taken at `t` (Unix seconds) and returns what changed.
    pub fn update(&mut self, t: f64, inv: &Inventory, last: &Inventory) -> Changes {
        self.since.get_or_insert(t);
        let now: HashMap<_, _> = inv.entries.iter().map(|e| (e.key(), e)).collect();
        let before: HashMap<_, _> = last.entries.iter().map(|e| (e.key(), e)).collect();
        let mut ch = Changes::default();
        for (k, e) in &now {
            if !before.contains_key(k) {
                ch.opened.push((*e).clone());
                self.first_seen.entry(k.clone()).or_insert(t);
            }
        }
        // A partial inventory may just have missed a process: its FDs are not called closed.
        // Processes it read completely, and processes that are gone, are known: their closes
        // are recorded (under worker churn one vanished process must not freeze the others).
        for (k, e) in &before {
            if !now.contains_key(k) && inv.knows(e.pid) {
                ch.closed.push((*e).clone());
                if let Some(seen) = self.first_seen.remove(k) {
                    self.lived(&e.group, t - seen);
                }
            }
        }
        ch
    }

    /// When a descriptor was first seen.
    pub fn first_seen(&self, e: &FdEntry) -> Option<f64> {
        self.first_seen.get(&e.key()).copied()
    }

    /// Seeds the tracker from stored history (on resume).
    pub fn seed(&mut self, e: &FdEntry, t: f64) {
        self.first_seen.entry(e.key()).or_insert(t);
        self.since = Some(self.since.map_or(t, |s| s.min(t)));
    }

    /// Records that a descriptor of `group` lived `age` seconds before it was closed (from
    /// [`Tracker::update`], and from stored history on resume).
    pub fn lived(&mut self, group: &str, age: f64) {
        let a = self.churn_age.entry(group.to_string()).or_insert(0.0);
        *a = a.max(age);
    }

    /// The longest life of a closed descriptor of `group` so far (0 when none closed).
    pub fn churn_age(&self, group: &str) -> f64 {
        self.churn_age.get(group).copied().unwrap_or(0.0)
    }

    /// The descriptors of `inv` (taken at `t`) that have outlived their group's churn: open
    /// longer than any closed descriptor of the same group lived. A leaked descriptor joins this
    /// count once it is older than the group's longest-lived closed one and stays; a churned one
    /// closes before. A group that never closed anything counts whole (nothing to tell it by).
    ///
    /// `None` until the count means something: some descriptor has closed, and the inventories
    /// have watched for twice the longest life of a closed one. Before that, the descriptors
    /// open at the first inventory (their age unknown, counted from it) are all younger than
    /// the churn still being learned, and the count would climb from nothing to the long-lived
    /// ones — growth that is only the watch getting longer (seen with workers living 3–10 s
    /// judged after a 5-s warm-up). Once counted, always counted.
    pub fn surviving(&mut self, inv: &Inventory, t: f64) -> Option<usize> {
        if !self.counting {
            let longest = self.churn_age.values().copied().fold(0.0, f64::max);
            let watched = t - self.since?;
            if longest <= 0.0 || watched < 2.0 * longest {
                return None;
            }
            self.counting = true;
        }
        Some(
            inv.entries
                .iter()
                .filter(|e| {
                    self.first_seen(e)
                        .is_some_and(|seen| t - seen > self.churn_age(&e.group))
                })
                .count(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_keeps_first_seen_and_reports_changes() {
        let e = |fd: i32| FdEntry {
            pid: 1,
            fd,
            kind: FdKind::Pipe,
            target: format!("pipe:[{fd}]"),
            group: "pipes".into(),
        };
        let mut tr = Tracker::default();
        let a = Inventory {
            entries: vec![e(3)],
            partial: false,
            ..Inventory::default()
        };
        let b = Inventory {
            entries: vec![e(3), e(4)],
            partial: false,
            ..Inventory::default()
        };
        let c = Inventory {
            entries: vec![e(4)],
            partial: false,
            ..Inventory::default()
        };
        let ch = tr.update(10.0, &a, &Inventory::default());
        assert_eq!(ch.opened.len(), 1);
        let ch = tr.update(20.0, &b, &a);
        assert_eq!((ch.opened.len(), ch.closed.len()), (1, 0));
        assert_eq!(tr.first_seen(&e(3)), Some(10.0));
        assert_eq!(tr.first_seen(&e(4)), Some(20.0));
        let ch = tr.update(30.0, &c, &b);
        assert_eq!((ch.opened.len(), ch.closed.len()), (0, 1));
        assert_eq!(tr.first_seen(&e(3)), None);
    }

    #[test]
    fn survivors_are_descriptors_older_than_their_groups_churn() {
        let conn = |fd: i32| FdEntry {
            pid: 1,
            fd,
            kind: FdKind::Tcp,
            target: format!("tcp 127.0.0.1:{fd} → 127.0.0.1:6379 ESTABLISHED"),
            group: "tcp → 127.0.0.1:6379".into(),
        };
        let log = FdEntry {
            pid: 1,
            fd: 2,
            kind: FdKind::File,
            target: "/var/log/x.log".into(),
            group: "files under /var/log/".into(),
        };
        let inv = |fds: &[i32]| Inventory {
            entries: fds
                .iter()
                .map(|fd| conn(*fd))
                .chain([log.clone()])
                .collect(),
            ..Inventory::default()
        };
        let mut tr = Tracker::default();
        let mut last = Inventory::default();
        // Connections 10..: each lives 30 s (opened every 10 s, three open at a time); 100 is
        // opened at 60 s and never closed.
        let mut counts = vec![];
        for step in 0..=20 {
            let t = 10.0 * step as f64;
            let mut open: Vec<i32> = (step.max(2) - 2..=step).map(|i| 10 + i).collect();
            if t >= 60.0 {
                open.push(100);
            }
            let now = inv(&open);
            tr.update(t, &now, &last);
            counts.push(tr.surviving(&now, t));
            last = now;
        }
        assert_eq!(tr.churn_age("tcp → 127.0.0.1:6379"), 30.0);
        assert_eq!(tr.churn_age("files under /var/log/"), 0.0);
        // Nothing is counted before the first close (30 s) and twice the longest life watched
        // (60 s); then the log file and, from 100 s on (older than 30 s), the leaked connection.
        assert!(counts[..6].iter().all(Option::is_none), "{counts:?}");
        assert_eq!(counts[6], Some(1), "{counts:?}");
        assert_eq!(counts[8], Some(1), "{counts:?}");
        assert_eq!(&counts[10..], &[Some(2); 11], "{counts:?}");
    }

    fn entry(pid: i32, fd: i32, kind: FdKind, target: &str) -> FdEntry {
        FdEntry {
            pid,
            fd,
            kind,
            target: target.into(),
            group: "g".into(),
        }
    }

    #[test]
    fn a_state_change_keeps_the_descriptor_and_churn_records_closes() {
        let est = entry(
            1,
            5,
            FdKind::Tcp,
            "tcp 127.0.0.1:80 ← 127.0.0.1:5000 ESTABLISHED",
        );
        let cw = entry(
            1,
            5,
            FdKind::Tcp,
            "tcp 127.0.0.1:80 ← 127.0.0.1:5000 CLOSE_WAIT",
        );
        assert_eq!(est.key(), cw.key());
        let mut tr = Tracker::default();
        let inv1 = Inventory {
            entries: vec![est.clone(), entry(2, 3, FdKind::Pipe, "pipe:[9]")],
            ..Inventory::default()
        };
        tr.update(1.0, &inv1, &Inventory::default());
        let inv2 = Inventory {
            entries: vec![cw.clone(), entry(2, 3, FdKind::Pipe, "pipe:[9]")],
            ..Inventory::default()
        };
        let ch = tr.update(2.0, &inv2, &inv1);
        assert!(ch.opened.is_empty() && ch.closed.is_empty(), "{ch:?}");
        assert_eq!(tr.first_seen(&cw), Some(1.0));
        // Process 3 vanished mid-read (partial); process 2 closed its pipe, process 1 was read.
        let inv3 = Inventory {
            entries: vec![cw.clone()],
            partial: true,
            complete_pids: vec![1, 2],
            gone_pids: vec![3],
        };
        let ch = tr.update(3.0, &inv3, &inv2);
        assert_eq!(
            ch.closed.len(),
            1,
            "the close by another process is recorded: {ch:?}"
        );
        // A process the partial inventory could not read keeps its descriptors.
        let inv4 = Inventory {
            entries: vec![],
            partial: true,
            complete_pids: vec![],
            gone_pids: vec![],
        };
        let ch = tr.update(4.0, &inv4, &inv3);
        assert!(ch.closed.is_empty(), "{ch:?}");
    }
}
