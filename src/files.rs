//! Files on disk, safe on hostile ground (a state directory next to other users' files, the
//! sentinel running as root): private directories, atomic private writes (status.json, reports,
//! baselines, schedules), the files users name (`-o`, `--html`, `--csv`) and small reads.
//!
//! The rules, and why:
//! - A state or run directory must be the user's own and not writable by group or others (as
//!   ssh insists for `~/.ssh`): otherwise another user could plant or swap the files inside.
//!   It is opened once ([`Dir`]) and everything inside is opened relative to that handle with
//!   `O_NOFOLLOW`, so a path swapped after the check is never used.
//! - A symlink at the state directory itself is followed only when it belongs to the user (or
//!   root): `ln -s /data/ls .leak-sentinel` keeps working, one planted by someone else is refused
//!   (the same rule as the kernel's `fs.protected_symlinks`).
//! - New files are created with `O_CREAT|O_EXCL|O_NOFOLLOW` under an unpredictable name and
//!   renamed into place: a planted symlink or hard link is never written through.
//! - New directories are created 0700; the mode of an existing directory is never changed
//!   (`-o /tmp/b.json` must not turn `/tmp` into `drwx------`).
//!
//! Exit codes (see `exit`): a state directory, run directory or store file that cannot be
//! created, opened or trusted is an environment failure (plain errors, exit 70), wherever its
//! path came from; a file the user named (`--config`, `--pid-file`, `-o`, `--html`, `--csv`, a
//! baseline) that cannot be used is a usage error (exit 2), except when the system fails the
//! write itself (disk full, I/O error).

use crate::exit::usage;
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// An open directory: files inside are opened relative to it, never through a symlink.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn is_reg(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
}

fn is_link(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// A directory may hold the sentinel's state: the user's own, not writable by group or others.
fn check_private(st: &FileStat, path: &Path) -> Result<()> {
    if st.st_uid != euid() {
        anyhow::bail!(
            "'{}' is owned by another user (uid {}); leak-sentinel keeps its state only in a directory of your own (pick another --state-dir)",
            path.display(),
            st.st_uid
        );
    }
    if st.st_mode & 0o022 != 0 {
        anyhow::bail!(
            "'{}' is writable by group or others (mode {:04o}); make it private with 'chmod go-w {}' or pick another --state-dir",
            path.display(),
            st.st_mode & 0o7777,
            path.display()
        );
    }
    Ok(())
}

/// A file in a private directory that the sentinel writes: a regular file of the user's own with
/// one link (a hard link to someone else's file would otherwise be written through).
fn check_own_file(st: &FileStat, path: &Path) -> Result<()> {
    if !is_reg(st) {
        anyhow::bail!(
            "'{}' is not a regular file; refusing to use it",
            path.display()
        );
    }
    if st.st_uid != euid() || st.st_nlink != 1 {
        anyhow::bail!(
            "'{}' is owned by another user (uid {}) or has other hard links ({}); refusing to use it",
            path.display(),
            st.st_uid,
            st.st_nlink
        );
    }
    Ok(())
}

/// An unpredictable temporary name next to `name` (`.NAME.<64 random bits>.tmp`).
fn temp_name(name: &str) -> String {
    format!(".{name}.{:016x}.tmp", rand::random::<u64>())
}

/// Whether `candidate` is a temporary name [`temp_name`] draws for `name`: exactly
/// `.NAME.` + 16 lowercase hex digits + `.tmp`, nothing looser.
fn is_temp_of(name: &str, candidate: &str) -> bool {
    candidate
        .strip_prefix('.')
        .and_then(|c| c.strip_prefix(name))
        .and_then(|c| c.strip_prefix('.'))
        .and_then(|c| c.strip_suffix(".tmp"))
        .is_some_and(|hex| {
            hex.len() == 16
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// One path component (no `/`, not `.` or `..`), so `openat` stays inside the directory.
fn component(name: &str) -> Result<&str> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(usage(format!("'{name}' is not a plain file name")));
    }
    Ok(name)
}

impl Dir {
    /// Opens (creating it 0700 if missing and `create`) a directory that holds the sentinel's
    /// state; refuses one owned by another user or writable by group/others. Only a missing
    /// directory that is not to be created is a usage error (nothing was ever recorded there:
    /// the wrong --state-dir); any other failure is the environment's.
    pub fn open_private(path: &Path, create: bool) -> Result<Dir> {
        if create {
            private_dir(path)?;
        }
        match nix::sys::stat::lstat(path) {
            Ok(st) if is_link(&st) && st.st_uid != euid() && st.st_uid != 0 => {
                anyhow::bail!(
                    "'{}' is a symbolic link owned by another user (uid {}); refusing to follow it",
                    path.display(),
                    st.st_uid
                );
            }
            Ok(_) => {}
            Err(Errno::ENOENT) => {
                return Err(usage(format!(
                    "no state directory '{}' (set --state-dir or LEAK_SENTINEL_DIR)",
                    path.display()
                )));
            }
            Err(e) => anyhow::bail!("cannot open '{}': {e}", path.display()),
        }
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| anyhow::anyhow!("cannot open '{}': {e}", path.display()))?;
        let st = nix::sys::stat::fstat(&fd)?;
        check_private(&st, path)?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Opens any existing directory (a user's output directory): no privacy check, since only
    /// new files renamed into place are written there.
    fn open_any(path: &Path) -> Result<Dir> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| anyhow::anyhow!("cannot write into '{}': {e}", path.display()))?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Its path (for messages and for opening with path-based APIs such as SQLite).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's path without symlinks, as the kernel knows the open handle (for
    /// path-based APIs such as SQLite that refuse symlinks anywhere in a path).
    pub fn real_path(&self) -> Result<PathBuf> {
        use std::os::fd::AsRawFd;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
            .with_context(|| format!("resolving {}", self.path.display()))?;
        if !self.same_dir(&real) {
            anyhow::bail!("{} was moved while opening it", self.path.display());
        }
        Ok(real)
    }

    /// Whether `path` names this directory (not swapped since it was opened).
    pub fn same_dir(&self, path: &Path) -> bool {
        match (nix::sys::stat::fstat(&self.fd), nix::sys::stat::stat(path)) {
            (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
            _ => false,
        }
    }

    /// A private subdirectory (`runs`, a run's own directory), created 0700 if missing and
    /// `create`; never through a symlink, and refused when not the user's own and private.
    pub fn sub(&self, name: &str, create: bool) -> Result<Dir> {
        let name = component(name)?;
        let path = self.path.join(name);
        if create {
            match nix::sys::stat::mkdirat(&self.fd, name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => anyhow::bail!("cannot create '{}': {e}", path.display()),
            }
        }
        let fd = nix::fcntl::openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => anyhow::anyhow!(
                "'{}' is not a directory (a symbolic link?); refusing to use it",
                path.display()
            ),
            e => anyhow::anyhow!("cannot open '{}': {e}", path.display()),
        })?;
        let st = nix::sys::stat::fstat(&fd)?;
        check_private(&st, &path)?;
        Ok(Dir { fd, path })
    }

    /// What is at `name`, without following a symlink (`None` when nothing is).
    pub fn lstat(&self, name: &str) -> Result<Option<FileStat>> {
        let name = component(name)?;
        match nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(anyhow::anyhow!(
                "reading {}: {e}",
                self.path.join(name).display()
            )),
        }
    }

    /// Opens (creating it 0600 if missing) a file of the sentinel's own for reading and writing
    /// (the run lock, the database): never through a symlink, refused when it is not a regular
    /// file of the user's own with one link.
    pub fn own_file(&self, name: &str) -> Result<std::fs::File> {
        let name = component(name)?;
        let path = self.path.join(name);
        let fd = nix::fcntl::openat(
            &self.fd,
            name,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| match e {
            Errno::ELOOP => anyhow::anyhow!(
                "'{}' is a symbolic link; refusing to open it",
                path.display()
            ),
            e => anyhow::anyhow!("cannot open '{}': {e}", path.display()),
        })?;
        check_own_file(&nix::sys::stat::fstat(&fd)?, &path)?;
        Ok(std::fs::File::from(fd))
    }

    /// Opens an existing file for reading, never through a symlink (`None` when missing).
    pub fn read_file(&self, name: &str) -> Result<Option<std::fs::File>> {
        let name = component(name)?;
        match nix::fcntl::openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Some(std::fs::File::from(fd))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(anyhow::anyhow!(
                "cannot read '{}': {e}",
                self.path.join(name).display()
            )),
        }
    }

    /// Removes `name` when it is a regular file of the user's own with one link (a file the
    /// sentinel wrote); anything else there (a symlink, a directory, someone else's file) is left
    /// alone. True when a file was removed.
    pub fn remove_own_file(&self, name: &str) -> Result<bool> {
        let name = component(name)?;
        match self.lstat(name)? {
            Some(st) if is_reg(&st) && st.st_uid == euid() && st.st_nlink == 1 => {}
            _ => return Ok(false),
        }
        match nix::unistd::unlinkat(&self.fd, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(anyhow::anyhow!(
                "removing {}: {e}",
                self.path.join(name).display()
            )),
        }
    }

    /// The names in this directory, listed through the open handle (so the directory checked
    /// when opening is the one read); at most `limit` of them. Entries are not followed.
    pub fn names(&self, limit: usize) -> Vec<String> {
        use std::os::fd::AsRawFd;
        let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
        else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .take(limit)
            .collect()
    }

    /// Removes the temporary files that [`Dir::write_atomic`] of `name` left behind (a writer
    /// killed between creating one and renaming it into place): only names of exactly its
    /// pattern, only regular files of the user's own with one link, never through a symlink.
    /// Returns how many were removed. The caller makes sure no live writer of `name` is at work
    /// (the run's lock).
    pub fn remove_temps_of(&self, name: &str) -> usize {
        use std::os::fd::AsRawFd;
        // Listed through the open handle, so the directory checked when opening is the one read.
        let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
        else {
            return 0;
        };
        entries
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|c| is_temp_of(name, c)))
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|c| self.remove_own_file(c).unwrap_or(false))
            })
            .count()
    }

    /// Writes `name` atomically: a new file (`O_EXCL|O_NOFOLLOW`, unpredictable name, `mode`)
    /// in this directory, fsync, rename over `name`. Readers never see a half-written file;
    /// whatever was at `name` (a symlink included) is replaced, never written through.
    pub fn write_atomic(&self, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
        self.write_atomic_with(name, mode, |f| f.write_all(bytes))
    }

    /// [`Dir::write_atomic`] of what `write` writes into the new file (a large file written
    /// piece by piece, never whole in memory).
    pub fn write_atomic_with(
        &self,
        name: &str,
        mode: u32,
        write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<()> {
        let name = component(name)?;
        let final_path = self.path.join(name);
        let mut tries = 0;
        let (tmp, fd) = loop {
            let tmp = temp_name(name);
            match nix::fcntl::openat(
                &self.fd,
                tmp.as_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(mode),
            ) {
                Ok(fd) => break (tmp, fd),
                // Someone holds that name already (a 1-in-2^64 draw, or a planted file): draw again.
                Err(Errno::EEXIST) if tries < 8 => tries += 1,
                // The errno stays in the chain: a full disk is told from a path problem.
                Err(e) => {
                    return Err(anyhow::Error::from(e)
                        .context(format!("cannot write {}", self.path.join(&tmp).display())));
                }
            }
        };
        let written = (|| -> Result<()> {
            let mut f = std::fs::File::from(fd);
            write(&mut f).with_context(|| format!("writing {}", final_path.display()))?;
            f.sync_all()
                .with_context(|| format!("writing {}", final_path.display()))?;
            nix::fcntl::renameat(&self.fd, tmp.as_str(), &self.fd, name)
                .with_context(|| format!("renaming into {}", final_path.display()))?;
            Ok(())
        })();
        if written.is_err() {
            // Leave no temporary file behind.
            let _ = nix::unistd::unlinkat(
                &self.fd,
                tmp.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        } else {
            // The rename itself survives a crash only once the directory is synced.
            let _ = nix::unistd::fsync(self.fd.as_fd());
        }
        written
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, fsync, rename),
/// readable only by the user (0600). Readers never see a half-written file. Missing parent
/// directories are created 0700; an existing one keeps its mode.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let (dir, name) = split(path)?;
    private_dir(&dir)?;
    Dir::open_any(&dir)?.write_atomic(&name, bytes, 0o600)
}

fn split(path: &Path) -> Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| usage(format!("'{}' does not name a file", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

/// Writes a file the user named (`-o`, `--html`, `--csv`): only that file. Its directory must
/// exist and is never changed; a symlink (or anything but a regular file) at `path` is refused,
/// not followed; the file is replaced atomically (a new file renamed into place, so a hard link
/// planted there is not written through either). `mode` before the umask.
pub fn write_user_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let (dir, name) = split(path)?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(usage(format!(
                "'{}' is a symbolic link; refusing to write through it (name the real file)",
                path.display()
            )));
        }
        Ok(m) if !m.file_type().is_file() => {
            return Err(usage(format!(
                "'{}' exists and is not a regular file; refusing to replace it",
                path.display()
            )));
        }
        _ => {}
    }
    let dir = Dir::open_any(&dir).map_err(|e| usage(crate::exit::one_line(&e)))?;
    dir.write_atomic(&name, bytes, mode).map_err(|e| {
        let msg = format!("cannot write '{}': {e:#}", path.display());
        // The system failing the write is not the path's fault.
        match e.chain().find_map(os_write_failure) {
            Some(_) => e.context(msg),
            None => usage(msg),
        }
    })
}

/// The kind of lasting write failure an OS error is, in words (`disk full`, `disk quota
/// exceeded`, `I/O error`, `read-only file system`), or `None` for any other error (one cause of
/// an error chain: an `io::Error` or an errno). Trying again a moment later does not cure these.
pub fn os_write_failure(cause: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let errno = match cause.downcast_ref::<std::io::Error>() {
        Some(io) => Errno::from_raw(io.raw_os_error()?),
        None => *cause.downcast_ref::<Errno>()?,
    };
    match errno {
        Errno::ENOSPC => Some("disk full"),
        Errno::EDQUOT => Some("disk quota exceeded"),
        Errno::EIO => Some("I/O error"),
        Errno::EROFS => Some("read-only file system"),
        _ => None,
    }
}

/// Creates `dir` (and missing parents) private to the user (0700). An existing directory keeps
/// its mode: changing it would, say, turn a shared `/tmp` into `drwx------`.
pub fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    // `recursive` tolerates a directory created at the same time by another sentinel.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create '{}'", dir.display()))
}

/// Reads at most `limit` bytes of a regular file the user named (config, schedule, PID file,
/// baseline, token file); larger files, FIFOs and devices (`/dev/zero`) are refused instead of
/// read forever. Every failure is a usage error: the file is the user's input.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<String> {
    read_own_bounded(path, limit, what).map_err(|e| usage(crate::exit::one_line(&e)))
}

/// [`read_bounded`] of a file of the sentinel's own (a report file under the state
/// directory): a failure is the environment's, not the user's.
pub fn read_own_bounded(path: &Path, limit: u64, what: &str) -> Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO would block the open until a writer comes: never wait.
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("cannot read {what} '{}'", path.display()))?;
    read_bounded_from(f, path, limit, what)
}

/// [`read_own_bounded`] of an already open file.
pub fn read_bounded_from(f: std::fs::File, path: &Path, limit: u64, what: &str) -> Result<String> {
    let cannot = || format!("cannot read {what} '{}'", path.display());
    let meta = f.metadata().with_context(cannot)?;
    if !meta.is_file() {
        anyhow::bail!("{what} '{}' is not a regular file", path.display());
    }
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .with_context(cannot)?;
    if buf.len() as u64 > limit {
        anyhow::bail!("{what} '{}' is larger than {limit} bytes", path.display());
    }
    String::from_utf8(buf)
        .map_err(|_| anyhow::anyhow!("{what} '{}' is not UTF-8 text", path.display()))
}

/// Reads a baseline file.
pub fn load_baseline(path: &Path) -> Result<crate::baseline::Baseline> {
    let text = read_bounded(path, 16 << 20, "baseline")?;
    crate::baseline::parse(&text, path)
}

/// Writes a baseline file (private to the user) where the user asked, and only there.
pub fn save_baseline(b: &crate::baseline::Baseline, path: &Path) -> Result<()> {
    write_user_file(path, serde_json::to_string_pretty(b)?.as_bytes(), 0o600)
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
        let sub = std::fs::metadata(dir.path().join("sub")).expect("meta");
        assert_eq!(sub.permissions().mode() & 0o777, 0o700);
        let leftovers = std::fs::read_dir(p.parent().expect("parent"))
            .expect("dir")
            .count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
    }

    #[test]
    fn existing_directory_keeps_its_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        write_user_file(&shared.join("b.json"), b"{}", 0o600).expect("write");
        write_atomic(&shared.join("c.json"), b"{}").expect("write");
        let mode = std::fs::metadata(&shared)
            .expect("meta")
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(mode, 0o1777);
        assert!(Dir::open_private(&shared, false).is_err(), "not private");
    }

    #[test]
    fn symlinks_are_not_written_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").expect("write");
        let link = dir.path().join("out.json");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        let e = write_user_file(&link, b"x", 0o644).expect_err("refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let d = Dir::open_private(dir.path(), false).expect("private");
        assert!(d.own_file("out.json").is_err());
        d.write_atomic("out.json", b"new", 0o600)
            .expect("replaces the link");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep");
        assert!(d.sub("out.json", false).is_err());
    }

    #[test]
    fn stale_temporary_files_of_a_name_only_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = Dir::open_private(dir.path(), false).expect("private");
        let ours = temp_name("status.json");
        assert!(is_temp_of("status.json", &ours), "{ours}");
        for (name, want) in [
            (".status.json.0123456789abcdef.tmp", true),
            (".status.json.0123456789ABCDEF.tmp", false),
            (".status.json.0123456789abcde.tmp", false),
            (".status.json.0123456789abcdef.tmp.x", false),
            ("status.json.0123456789abcdef.tmp", false),
            (".status.jsonx.0123456789abcdef.tmp", false),
            (".other.json.0123456789abcdef.tmp", false),
        ] {
            assert_eq!(is_temp_of("status.json", name), want, "{name}");
        }
        std::fs::write(dir.path().join(&ours), b"half").expect("write");
        std::fs::write(dir.path().join("status.json"), b"{}").expect("write");
        let theirs = dir.path().join("elsewhere");
        std::fs::write(&theirs, b"keep").expect("write");
        let planted = ".status.json.fedcba9876543210.tmp";
        std::os::unix::fs::symlink(&theirs, dir.path().join(planted)).expect("symlink");
        let linked = ".status.json.00000000000000aa.tmp";
        std::fs::hard_link(&theirs, dir.path().join(linked)).expect("link");
        assert_eq!(d.remove_temps_of("status.json"), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [linked, planted, "elsewhere", "status.json"]);
        assert_eq!(std::fs::read_to_string(&theirs).expect("read"), "keep");
        assert!(!d.remove_own_file(planted).expect("a symlink is left"));
        assert!(d.remove_own_file("status.json").expect("ours"));
    }

    #[test]
    fn lasting_write_failures_are_told_from_path_problems() {
        let io = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(os_write_failure(&io), Some("disk full"));
        assert_eq!(
            os_write_failure(&Errno::EDQUOT),
            Some("disk quota exceeded")
        );
        assert_eq!(os_write_failure(&Errno::EACCES), None);
        assert_eq!(os_write_failure(&std::io::Error::other("x")), None);
        // Through a context, as write_atomic reports a temporary file it could not create.
        let e = anyhow::Error::from(Errno::ENOSPC).context("cannot write x");
        assert_eq!(e.chain().find_map(os_write_failure), Some("disk full"));
        assert!(e.chain().all(|c| !c.is::<crate::exit::UsageError>()));
    }

    #[test]
    fn bounded_reads() {
        let e = read_bounded(Path::new("/dev/zero"), 64, "PID file").expect_err("device");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'1'; 100]).expect("write");
        assert!(read_bounded(&p, 64, "PID file").is_err());
        assert_eq!(read_bounded(&p, 100, "x").expect("fits").len(), 100);
    }
}
