//! Reading the memory maps of a process tree from /proc/PID/smaps into a [`MapsSummary`]: RSS,
//! PSS, anonymous and swap per region class, and the large anonymous regions by address.

use crate::diagnose::maps::{MapsSummary, Region, Totals};
use procfs::process::{MMPermissions, MMapPath, Process};
use std::collections::BTreeMap;

fn class_of(path: &MMapPath, perms: MMPermissions, guard_before: bool) -> &'static str {
    match path {
        MMapPath::Heap => "heap",
        MMapPath::Stack => "stack",
        MMapPath::TStack(_) => "thread_stack",
        MMapPath::Path(p) => {
            let s = p.to_string_lossy();
            if s.starts_with("/dev/shm/") || s.starts_with("/SYSV") || s.starts_with("/memfd:") {
                "shared"
            } else {
                "file"
            }
        }
        MMapPath::Vsys(_) => "shared",
        MMapPath::Anonymous => {
            // glibc and most runtimes put a PROT_NONE guard page right below each thread stack.
            if guard_before && perms.contains(MMPermissions::READ | MMPermissions::WRITE) {
                "thread_stack"
            } else if perms.contains(MMPermissions::SHARED) {
                "shared"
            } else {
                "anonymous"
            }
        }
        MMapPath::Other(s) if s.starts_with("anon:") => "anonymous",
        _ => "other",
    }
}

/// Reads the maps of `pids` at time `t`.
pub fn snapshot(pids: &[i32], t: f64) -> MapsSummary {
    let mut out = MapsSummary {
        t,
        ..MapsSummary::default()
    };
    let mut by_path: BTreeMap<String, Totals> = BTreeMap::new();
    for &pid in pids {
        let Ok(maps) = Process::new(pid).and_then(|p| p.smaps()) else {
            out.partial = true;
            continue;
        };
        let mut prev_guard_end: Option<u64> = None;
        for m in maps {
            out.region_count += 1;
            let get = |k: &str| m.extension.map.get(k).copied().unwrap_or(0);
            let tot = Totals {
                regions: 1,
                size: m.address.1 - m.address.0,
                rss: get("Rss"),
                pss: get("Pss"),
                anon: get("Anonymous"),
                swap: get("Swap"),
            };
            let guard_before = prev_guard_end == Some(m.address.0);
            let is_guard = m.perms.is_empty() || m.perms == MMPermissions::PRIVATE;
            prev_guard_end =
                (is_guard && matches!(m.pathname, MMapPath::Anonymous)).then_some(m.address.1);
            let class = class_of(&m.pathname, m.perms, guard_before);
            out.classes.entry(class.into()).or_default().add(&tot);
            if let MMapPath::Path(p) = &m.pathname {
                by_path
                    .entry(p.display().to_string())
                    .or_default()
                    .add(&tot);
            }
            if matches!(class, "anonymous" | "heap") && tot.rss >= 1 << 20 {
                out.regions.push(Region {
                    pid,
                    start: m.address.0,
                    size: tot.size,
                    rss: tot.rss,
                    class: class.into(),
                });
            }
        }
    }
    let mut paths: Vec<(String, Totals)> = by_path.into_iter().collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.1.rss));
    paths.truncate(20);
    out.by_path = paths;
    out.regions.sort_by_key(|r| std::cmp::Reverse(r.rss));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_maps_have_heap_or_anonymous_and_files() {
        let mut keep = vec![0u8; 4 << 20];
        keep.iter_mut().step_by(4096).for_each(|b| *b = 7);
        std::hint::black_box(&mut keep);
        let s = snapshot(&[std::process::id() as i32], 0.0);
        assert!(!s.partial);
        assert!(s.classes.contains_key("file"));
        let anon: u64 = ["anonymous", "heap"]
            .iter()
            .filter_map(|c| s.classes.get(*c))
            .map(|t| t.anon)
            .sum();
        assert!(anon >= 4 << 20, "{:?}", s.classes);
        assert!(s.regions.iter().any(|r| r.rss >= 4 << 20));
        drop(keep);
        assert!(snapshot(&[i32::MAX - 3], 0.0).partial);
    }
}
