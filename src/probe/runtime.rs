//! Detecting the runtime of a live process (JVM, CPython, Node, Go, native) from its executable
//! and mapped files.

use crate::diagnose::Runtime;
use crate::diagnose::maps::MapsSummary;

/// Whether an executable carries Go build information (the `\xff Go buildinf:` magic in its
/// first 64 MiB). Read in 64 KiB pieces, each searched with the tail of the one before (a magic
/// split across two reads is still found): constant memory, whatever the executable's size (a
/// whole-file read of a 54 MiB binary with debug info cost the sentinel 64 MiB of RSS at every
/// runtime detection).
pub fn exe_is_go(exe: &std::path::Path) -> bool {
    use std::io::Read;
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    const LIMIT: u64 = 64 << 20;
    const PIECE: usize = 64 << 10;
    let Ok(f) = std::fs::File::open(exe) else {
        return false;
    };
    let mut f = f.take(LIMIT);
    let keep = MAGIC.len() - 1;
    let mut buf = vec![0u8; keep + PIECE];
    let mut carried = 0;
    loop {
        let n = match f.read(&mut buf[carried..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let filled = carried + n;
        if buf[..filled].windows(MAGIC.len()).any(|w| w == MAGIC) {
            return true;
        }
        carried = keep.min(filled);
        buf.copy_within(filled - carried..filled, 0);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_magic_is_found_across_pieces_and_not_in_other_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The magic straddles the first 64 KiB piece's end.
        let mut bytes = vec![0u8; (64 << 10) - 5];
        bytes.extend_from_slice(b"\xff Go buildinf:");
        bytes.extend_from_slice(&[1u8; 100]);
        let go = dir.path().join("go");
        std::fs::write(&go, &bytes).expect("write");
        assert!(exe_is_go(&go));
        let other = dir.path().join("other");
        std::fs::write(&other, vec![7u8; 200 << 10]).expect("write");
        assert!(!exe_is_go(&other));
        assert!(!exe_is_go(&dir.path().join("missing")));
    }
}
