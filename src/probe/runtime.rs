//! Detecting the runtime of a live process (JVM, CPython, Node, Go, native) from its executable
//! and mapped files.

use crate::diagnose::Runtime;
use crate::diagnose::maps::MapsSummary;

/// Whether an executable carries Go build information (the `\xff Go buildinf:` magic in its
/// first 64 MiB).
pub fn exe_is_go(exe: &std::path::Path) -> bool {
    use std::io::Read;
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    let Ok(f) = std::fs::File::open(exe) else {
        return false;
    };
    let mut buf = Vec::new();
    if f.take(64 << 20).read_to_end(&mut buf).is_err() {
        return false;
    }
    buf.windows(MAGIC.len()).any(|w| w == MAGIC)
}

/// Detects the runtime of a live process.
pub fn detect_runtime(pid: i32, maps: Option<&MapsSummary>) -> Runtime {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let mapped: Vec<String> = maps
        .map(|m| m.by_path.iter().map(|(p, _)| p.clone()).collect())
        .unwrap_or_default();
    let exe_s = exe.display().to_string();
    let mut rt = Runtime::detect(&exe_s, &mapped, false);
    if rt == Runtime::Native && exe_is_go(&exe) {
        rt = Runtime::Go;
    }
    rt
}

/// Detects the runtime of a process tree: the managed runtime (JVM, CPython, Node, Go) of any of
/// its processes wins over native code, so a Python service started through a shell wrapper or a
/// pyenv shim is CPython once it runs (the detection is repeated as the tree changes). At most 64
/// processes are looked at.
pub fn detect_tree_runtime(pids: &[i32], maps: Option<&MapsSummary>) -> Runtime {
    let mut found = Runtime::Native;
    for &pid in pids.iter().take(64) {
        let rt = detect_runtime(pid, maps);
        if rt != Runtime::Native {
            found = rt;
            // The root's (first) managed runtime wins; otherwise the first one found.
            break;
        }
    }
    found
}
