//! Files on disk: private directories, atomic private writes (status.json, reports, baselines,
//! user-named outputs) and reading the files users name (baselines).

use anyhow::{Context, Result};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to `path` atomically (temporary file in the same directory, fsync, rename),
/// readable only by the user (0600). Readers never see a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all().ok();
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Creates `dir` (and parents) private to the user (0700).
pub fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    Ok(())
}

/// Reads a baseline file.
pub fn load_baseline(path: &Path) -> Result<crate::baseline::Baseline> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        crate::exit::usage(format!("cannot read baseline '{}': {e}", path.display()))
    })?;
    crate::baseline::parse(&text, path)
}

/// Writes a baseline file (private to the user).
pub fn save_baseline(b: &crate::baseline::Baseline, path: &Path) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(b)?.as_bytes())
        .with_context(|| format!("writing baseline {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_private_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("sub/status.json");
        write_atomic(&p, b"{\"a\":1}").expect("write");
        write_atomic(&p, b"{\"a\":2}").expect("overwrite");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "{\"a\":2}");
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers = std::fs::read_dir(p.parent().expect("parent"))
            .expect("dir")
            .count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
    }
}
