//! FD inventory: every descriptor of the target tree with its kind and what it points at
//! (path; protocol, addresses and TCP state for sockets from /proc/PID/net; pipe inode;
//! anon_inode type), and a tracker that remembers when each one was first seen.

use procfs::process::{FDTarget, Process};
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
    /// Identity across inventories: the same process, number and target.
    pub fn key(&self) -> (i32, i32, String) {
        (self.pid, self.fd, self.target.clone())
    }
}

/// One inventory of the tree.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inventory {
    /// Every descriptor read.
    pub entries: Vec<FdEntry>,
    /// True when a process vanished or a /proc entry disappeared while reading.
    pub partial: bool,
}

#[derive(Debug, Clone)]
struct SockInfo {
    kind: FdKind,
    target: String,
    group: String,
}

fn tcp_state(s: &procfs::net::TcpState) -> &'static str {
    use procfs::net::TcpState::*;
    match s {
        Established => "ESTABLISHED",
        SynSent => "SYN_SENT",
        SynRecv => "SYN_RECV",
        FinWait1 => "FIN_WAIT1",
        FinWait2 => "FIN_WAIT2",
        TimeWait => "TIME_WAIT",
        Close => "CLOSE",
        CloseWait => "CLOSE_WAIT",
        LastAck => "LAST_ACK",
        Listen => "LISTEN",
        Closing => "CLOSING",
        NewSynRecv => "NEW_SYN_RECV",
    }
}

/// Socket inode → description, from one process's view of /proc/net (its network namespace).
fn socket_table(p: &Process) -> HashMap<u64, SockInfo> {
    let mut m = HashMap::new();
    let tcp: Vec<procfs::net::TcpNetEntry> = [p.tcp(), p.tcp6()]
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    // Server side of a connection: its local address is one the namespace listens on. Those are
    // grouped by the listening address (clients come from ever-new ports); client sides by peer.
    let listening: std::collections::HashSet<std::net::SocketAddr> = tcp
        .iter()
        .filter(|e| matches!(e.state, procfs::net::TcpState::Listen))
        .map(|e| e.local_address)
        .collect();
    let listens_on = |a: &std::net::SocketAddr| {
        listening
            .iter()
            .any(|l| l.port() == a.port() && (l.ip() == a.ip() || l.ip().is_unspecified()))
    };
    {
        for e in tcp.iter() {
            let state = tcp_state(&e.state);
            let (target, group) = if state == "LISTEN" {
                (
                    format!("tcp listening on {}", e.local_address),
                    format!("tcp listening on {}", e.local_address),
                )
            } else if listens_on(&e.local_address) {
                (
                    format!("tcp {} ← {} {state}", e.local_address, e.remote_address),
                    format!("tcp accepted on {} {state}", e.local_address),
                )
            } else {
                (
                    format!("tcp {} → {} {state}", e.local_address, e.remote_address),
                    format!("tcp → {} {state}", e.remote_address),
                )
            };
            m.insert(
                e.inode,
                SockInfo {
                    kind: FdKind::Tcp,
                    target,
                    group,
                },
            );
        }
    }
    for entries in [p.udp(), p.udp6()].into_iter().flatten() {
        for e in entries {
            let target = format!("udp {} → {}", e.local_address, e.remote_address);
            let group = if e.remote_address.port() == 0 {
                format!("udp on {}", e.local_address)
            } else {
                format!("udp → {}", e.remote_address)
            };
            m.insert(
                e.inode,
                SockInfo {
                    kind: FdKind::Udp,
                    target,
                    group,
                },
            );
        }
    }
    if let Ok(entries) = p.unix() {
        for e in entries {
            let path = e
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(unnamed)".into());
            m.insert(
                e.inode,
                SockInfo {
                    kind: FdKind::Unix,
                    target: format!("unix {path}"),
                    group: format!("unix sockets {path}"),
                },
            );
        }
    }
    m
}

fn parent_dir(path: &std::path::Path) -> String {
    match path.parent() {
        Some(p) if p.as_os_str().is_empty() => "./".into(),
        Some(p) => format!("{}/", p.display()).replace("//", "/"),
        None => "/".into(),
    }
}

/// Takes an inventory of the descriptors of `pids`. A process that vanishes or an entry that
/// disappears mid-read marks the inventory partial; it is never an error.
pub fn inventory(pids: &[i32]) -> Inventory {
    let mut inv = Inventory::default();
    // /proc/PID/net is per network namespace: read it once per namespace.
    let mut tables: HashMap<String, HashMap<u64, SockInfo>> = HashMap::new();
    for &pid in pids {
        let Ok(p) = Process::new(pid) else {
            inv.partial = true;
            continue;
        };
        let Ok(fds) = p.fd() else {
            inv.partial = true;
            continue;
        };
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        for fd in fds {
            let Ok(fd) = fd else {
                inv.partial = true;
                continue;
            };
            let (kind, target, group) = match &fd.target {
                FDTarget::Path(path) => {
                    let shown = path.display().to_string();
                    let ft = std::fs::metadata(format!("/proc/{pid}/fd/{}", fd.fd))
                        .map(|m| m.file_type());
                    use std::os::unix::fs::FileTypeExt;
                    match ft {
                        Ok(t) if t.is_dir() => (
                            FdKind::Dir,
                            shown,
                            format!("directories under {}", parent_dir(path)),
                        ),
                        Ok(t) if t.is_char_device() || t.is_block_device() => {
                            (FdKind::Device, shown.clone(), format!("device {shown}"))
                        }
                        Ok(t) if t.is_fifo() => {
                            (FdKind::Pipe, shown.clone(), format!("fifo {shown}"))
                        }
                        _ => (
                            FdKind::File,
                            shown,
                            format!("files under {}", parent_dir(path)),
                        ),
                    }
                }
                FDTarget::Socket(inode) | FDTarget::Net(inode) => {
                    let table = tables.entry(ns.clone()).or_insert_with(|| socket_table(&p));
                    match table.get(inode) {
                        Some(s) => (s.kind, s.target.clone(), s.group.clone()),
                        None => (
                            FdKind::Socket,
                            format!("socket:[{inode}]"),
                            "sockets (other families)".into(),
                        ),
                    }
                }
                FDTarget::Pipe(inode) => (FdKind::Pipe, format!("pipe:[{inode}]"), "pipes".into()),
                FDTarget::AnonInode(what) => {
                    let name = format!("anon_inode:{what}");
                    (FdKind::AnonInode, name.clone(), name)
                }
                FDTarget::MemFD(name) => (FdKind::Memfd, format!("memfd:{name}"), "memfd".into()),
                other => (
                    FdKind::Other,
                    format!("{other:?}"),
                    "other descriptors".into(),
                ),
            };
            inv.entries.push(FdEntry {
                pid,
                fd: fd.fd,
                kind,
                target,
                group,
            });
        }
    }
    inv
}

/// Remembers when each descriptor was first seen, across inventories.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    first_seen: HashMap<(i32, i32, String), f64>,
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
        let now: HashMap<_, _> = inv.entries.iter().map(|e| (e.key(), e)).collect();
        let before: HashMap<_, _> = last.entries.iter().map(|e| (e.key(), e)).collect();
        let mut ch = Changes::default();
        for (k, e) in &now {
            if !before.contains_key(k) {
                ch.opened.push((*e).clone());
                self.first_seen.entry(k.clone()).or_insert(t);
            }
        }
        // A partial inventory may just have missed a process: do not call its FDs closed.
        if !inv.partial {
            for (k, e) in &before {
                if !now.contains_key(k) {
                    ch.closed.push((*e).clone());
                    self.first_seen.remove(k);
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_inventory_sees_a_pipe_and_a_socket() {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let inv = inventory(&[std::process::id() as i32]);
        assert!(!inv.partial);
        assert!(
            inv.entries
                .iter()
                .filter(|e| e.kind == FdKind::Pipe)
                .count()
                >= 2
        );
        let addr = listener.local_addr().expect("addr");
        assert!(
            inv.entries
                .iter()
                .any(|e| e.kind == FdKind::Tcp && e.group == format!("tcp listening on {addr}")),
            "{:?}",
            inv.entries
        );
        drop((r, w));
    }

    #[test]
    fn vanished_process_marks_partial() {
        let inv = inventory(&[i32::MAX - 7]);
        assert!(inv.partial);
        assert!(inv.entries.is_empty());
    }

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
        };
        let b = Inventory {
            entries: vec![e(3), e(4)],
            partial: false,
        };
        let c = Inventory {
            entries: vec![e(4)],
            partial: false,
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
}
