//! Tells the tests whether they will run as root, so that the few that need root (cgroups, the
//! next PID, files planted as another user, a private tmpfs) are reported as `ignored` with the
//! reason when they cannot run, rather than passing without having checked anything:
//!
//! ```ignore
//! #[test]
//! #[cfg_attr(not_root, ignore = "needs root")]
//! fn a_state_dir_owned_by_another_user_is_refused() { … }
//! ```
//!
//! Tests run as the user who built them (`cargo test`), so the builder's effective UID is theirs.
//! `sudo` changes `USER` and sets `SUDO_UID`, which re-runs this script.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(not_root)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=USER");
    println!("cargo::rerun-if-env-changed=SUDO_UID");
    if effective_uid() != Some(0) {
        println!("cargo::rustc-cfg=not_root");
    }
}

/// The effective UID from `/proc/self/status` (`Uid: real effective saved fs`); read there rather
/// than through libc so the build needs no dependency of its own.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}
