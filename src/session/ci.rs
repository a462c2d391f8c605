//! Writing the CI outputs of a finished run or scan: the JUnit file (`--junit`), the markdown
//! summary (`--summary-md`) and, when GitHub Actions sets `$GITHUB_STEP_SUMMARY`, the same
//! markdown appended to that file. The bytes come from `render::junit` / `render::markdown`.
//!
//! `--junit`/`--summary-md` files are replaced atomically and never written through a symlink
//! ([`crate::files::write_user_file`]). The step summary is *appended* (GitHub collects what
//! every command of a step appends), opened `O_APPEND|O_NOFOLLOW`: a symlink there is refused,
//! and anything but a regular file (a FIFO, a device) too.

use anyhow::Result;
use std::path::{Path, PathBuf};

/// The variable GitHub Actions sets to the step's summary file.
pub const STEP_SUMMARY_ENV: &str = "GITHUB_STEP_SUMMARY";

/// Largest step summary GitHub shows, bytes (1 MiB); past it nothing more is appended.
const STEP_SUMMARY_MAX: u64 = 1 << 20;

/// The step summary file, when `$GITHUB_STEP_SUMMARY` names one.
pub fn step_summary_path() -> Option<PathBuf> {
    std::env::var_os(STEP_SUMMARY_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Appends `md` to the step summary at `path` (created 0644 if missing, as GitHub's runner
/// creates it empty). Returns false when the file is already at GitHub's size limit.
pub fn append_step_summary(path: &Path, md: &str) -> Result<bool> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                anyhow::anyhow!(
                    "{STEP_SUMMARY_ENV} '{}' is a symbolic link; refusing to write through it",
                    path.display()
                )
            } else {
                anyhow::anyhow!(
                    "cannot append to {STEP_SUMMARY_ENV} '{}': {e}",
                    path.display()
                )
            }
        })?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        anyhow::bail!(
            "{STEP_SUMMARY_ENV} '{}' is not a regular file",
            path.display()
        );
    }
    if meta.len() + md.len() as u64 > STEP_SUMMARY_MAX {
        return Ok(false);
    }
    // One write of the whole section: appends by other processes of the step do not interleave
    // inside it (O_APPEND writes of a regular file are atomic with respect to each other).
    f.write_all(md.as_bytes()).map_err(|e| {
        anyhow::anyhow!(
            "cannot append to {STEP_SUMMARY_ENV} '{}': {e}",
            path.display()
        )
    })?;
    Ok(true)
}

/// Writes what was asked: `junit` and `summary_md` files (replaced), and the step summary
/// (appended) when `$GITHUB_STEP_SUMMARY` is set. The bytes are made only when needed. Returns
/// one warning per output that could not be written; the caller decides what they cost.
pub fn write_outputs(
    junit: Option<&Path>,
    summary_md: Option<&Path>,
    xml: impl FnOnce() -> String,
    md: impl FnOnce() -> String,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(p) = junit {
        if let Err(e) = crate::files::write_user_file(p, xml().as_bytes(), 0o644) {
            warnings.push(format!("--junit: {e:#}"));
        }
    }
    let step = step_summary_path();
    if summary_md.is_none() && step.is_none() {
        return warnings;
    }
    let md = md();
    if let Some(p) = summary_md {
        if let Err(e) = crate::files::write_user_file(p, md.as_bytes(), 0o644) {
            warnings.push(format!("--summary-md: {e:#}"));
        }
    }
    if let Some(p) = step {
        match append_step_summary(&p, &md) {
            Ok(true) => {}
            Ok(false) => warnings.push(format!(
                "{STEP_SUMMARY_ENV} '{}' is at GitHub's 1 MiB limit; the summary was not appended",
                p.display()
            )),
            Err(e) => warnings.push(format!("{e:#}")),
        }
    }
    warnings
}
