//! Reading the FD inventory of a process tree from /proc: every descriptor with its kind and
//! what it points at (path; protocol, addresses and TCP state for sockets from /proc/PID/net;
//! pipe inode; anon_inode type).

use crate::diagnose::fds::{FdEntry, FdKind, Inventory};
use procfs::process::{FDTarget, Process};
use std::collections::HashMap;

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
        let gone = |e: &procfs::ProcError| matches!(e, procfs::ProcError::NotFound(_));
        let p = match Process::new(pid) {
            Ok(p) => p,
            Err(e) => {
                inv.partial = true;
                if gone(&e) {
                    inv.gone_pids.push(pid);
                }
                continue;
            }
        };
        let fds = match p.fd() {
            Ok(f) => f,
            Err(e) => {
                inv.partial = true;
                if gone(&e) {
                    inv.gone_pids.push(pid);
                }
                continue;
            }
        };
        let mut complete = true;
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        for fd in fds {
            let Ok(fd) = fd else {
                inv.partial = true;
                complete = false;
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
        if complete {
            inv.complete_pids.push(pid);
        }
    }
    inv
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
}
