//! Memory of a cgroup, wherever the host keeps it: the v2 memory controller (`memory.current`,
//! `memory.stat` anon, `memory.swap.current`) or the v1 one (`memory.usage_in_bytes`,
//! `memory.stat` total_rss + total_swap). Hybrid hosts mount v1 memory at
//! /sys/fs/cgroup/memory while their v2 hierarchy has no memory controller: a v2 directory
//! without one is mapped to the v1 memory cgroup of its processes.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Reads at most this much of any cgroup or /proc file (memory.stat is ~1–2 KiB).
const MAX_READ: u64 = 64 * 1024;

/// Where a cgroup's memory figures are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupMemory {
    /// A cgroup v2 directory with the memory controller.
    V2(PathBuf),
    /// A cgroup v1 memory-controller directory.
    V1(PathBuf),
}

/// One reading, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CgroupMemoryReading {
    /// All memory charged to the cgroup, page cache included (v2 memory.current, v1
    /// memory.usage_in_bytes): information only.
    pub usage: Option<f64>,
    /// Private memory: anonymous + swap (the memory gate).
    pub private: Option<f64>,
}

fn read_small(path: &Path) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    let mut s = String::new();
    f.take(MAX_READ).read_to_string(&mut s).ok()?;
    Some(s)
}

fn stat_value(stat: &str, key: &str) -> Option<f64> {
    stat.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse::<f64>().ok()).flatten()
    })
}

impl CgroupMemory {
    /// The memory files for the cgroup directory `dir`, or `None` when the host has no memory
    /// controller for it. `member` (a PID in the cgroup) locates the v1 memory cgroup when `dir`
    /// is a v2 directory without the controller.
    pub fn find(dir: &Path, member: Option<i32>) -> Option<CgroupMemory> {
        if dir.join("memory.current").is_file() {
            return Some(CgroupMemory::V2(dir.to_path_buf()));
        }
        if dir.join("memory.usage_in_bytes").is_file() {
            return Some(CgroupMemory::V1(dir.to_path_buf()));
        }
        let pid = member?;
        let rel = read_small(Path::new(&format!("/proc/{pid}/cgroup")))?
            .lines()
            .find_map(|l| {
                let mut it = l.splitn(3, ':');
                let (_, ctrl, path) = (it.next()?, it.next()?, it.next()?);
                ctrl.split(',')
                    .any(|c| c == "memory")
                    .then(|| path.to_string())
            })?;
        let mount = v1_memory_mount()?;
        let d = mount.join(rel.trim_start_matches('/'));
        d.join("memory.usage_in_bytes")
            .is_file()
            .then_some(CgroupMemory::V1(d))
    }

    /// The directory the figures come from.
    pub fn dir(&self) -> &Path {
        match self {
            CgroupMemory::V2(d) | CgroupMemory::V1(d) => d,
        }
    }

    /// Reads usage and private memory; a file that cannot be read costs its field.
    pub fn read(&self) -> CgroupMemoryReading {
        let num = |p: PathBuf| read_small(&p).and_then(|v| v.trim().parse::<f64>().ok());
        match self {
            CgroupMemory::V2(d) => {
                let stat = read_small(&d.join("memory.stat"));
                let anon = stat.as_deref().and_then(|s| stat_value(s, "anon"));
                // memory.swap.current exists only with swap accounting; none means no swap.
                let swap = num(d.join("memory.swap.current")).unwrap_or(0.0);
                CgroupMemoryReading {
                    usage: num(d.join("memory.current")),
                    private: anon.map(|a| a + swap),
                }
            }
            CgroupMemory::V1(d) => {
                let stat = read_small(&d.join("memory.stat"));
                let rss = stat.as_deref().and_then(|s| stat_value(s, "total_rss"));
                let swap = stat
                    .as_deref()
                    .and_then(|s| stat_value(s, "total_swap"))
                    .unwrap_or(0.0);
                CgroupMemoryReading {
                    usage: num(d.join("memory.usage_in_bytes")),
                    private: rss.map(|r| r + swap),
                }
            }
        }
    }
}

/// Where the v1 memory controller is mounted, from /proc/self/mounts.
fn v1_memory_mount() -> Option<PathBuf> {
    mount_where(|fstype, opts| fstype == "cgroup" && opts.split(',').any(|o| o == "memory"))
}

/// Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on
/// hybrid hosts).
pub fn v2_mount() -> Option<PathBuf> {
    mount_where(|fstype, _| fstype == "cgroup2")
}

fn mount_where(pick: impl Fn(&str, &str) -> bool) -> Option<PathBuf> {
    read_small(Path::new("/proc/self/mounts"))?
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && pick(f[2], f[3])).then(|| PathBuf::from(f[1]))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stat_keys() {
        let v2 = "anon 1000\nfile 5000\nkernel_stack 10\n";
        assert_eq!(stat_value(v2, "anon"), Some(1000.0));
        assert_eq!(stat_value(v2, "anon_thp"), None);
        let v1 = "rss 1\ntotal_rss 4096\ntotal_swap 100\n";
        assert_eq!(stat_value(v1, "total_rss"), Some(4096.0));
        assert_eq!(stat_value(v1, "rss"), Some(1.0));
    }

    #[test]
    fn the_sentinels_own_cgroup_has_memory_figures_where_the_host_has_a_controller() {
        // Wherever this runs, the test's own v1 or v2 memory cgroup (if any) reads.
        let me = std::process::id() as i32;
        let Some(text) = read_small(Path::new("/proc/self/cgroup")) else {
            return;
        };
        let v2_rel = text.lines().find_map(|l| l.strip_prefix("0::"));
        let v2_dir = v2_rel
            .zip(v2_mount())
            .map(|(r, m)| m.join(r.trim_start_matches('/')));
        let found = v2_dir
            .as_deref()
            .and_then(|d| CgroupMemory::find(d, Some(me)));
        if v1_memory_mount().is_some() || found.is_some() {
            let m = found.expect("a memory controller for our own cgroup");
            let r = m.read();
            assert!(r.usage.is_some_and(|u| u > 0.0), "{m:?} {r:?}");
            assert!(r.private.is_some_and(|p| p > 0.0), "{m:?} {r:?}");
        }
    }
}
