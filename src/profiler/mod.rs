//! Taking attribution snapshots of a live process with its runtime's own mechanism: a JVM's
//! class histogram through `jcmd` ([`jvm`]), CPython's tracemalloc through a `sitecustomize`
//! the sentinel puts on a spawned target's `PYTHONPATH` ([`python`]), a V8 heap snapshot of a
//! spawned Node.js target on a signal its `NODE_OPTIONS` set up ([`node`]), heaptrack's preload
//! library in a spawned native program ([`native`]), the heap profile a Go program serves
//! (`--pprof`, [`go`]). Each snapshot is bounded
//! in time (a helper that overruns is killed) and in size (its output is read up to a limit);
//! what it returns is parsed and diffed by [`crate::attribution`].

pub mod go;
pub mod jvm;
pub mod native;
pub mod node;
pub mod python;

use crate::attribution::Snapshot;
use crate::diagnose::Runtime;
use anyhow::{Context, Result};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Most output read from a helper, bytes (a histogram of 20,000 classes is ~2 MiB).
pub const MAX_OUTPUT: u64 = 16 << 20;

/// The mechanism that attributes a runtime, in the report's words (`None`: none yet).
pub fn mechanism(rt: Runtime) -> Option<&'static str> {
    match rt {
        Runtime::Jvm => Some(jvm::MECHANISM),
        Runtime::Cpython => Some(python::MECHANISM),
        Runtime::Node => Some(node::MECHANISM),
        Runtime::Native => Some(native::MECHANISM),
        // Only with the profile's URL (`--pprof`): [`usable`].
        Runtime::Go => Some(go::MECHANISM),
        _ => None,
    }
}

/// The mechanism that attributes a runtime when the run has what it needs (a Go program: the
/// URL of its heap profile, `--pprof`); else the one-line note that says why there is none.
pub fn usable(rt: Runtime, pprof: Option<&str>) -> Result<&'static str, String> {
    match mechanism(rt) {
        Some(_) if rt == Runtime::Go && pprof.is_none() => Err(unsupported(rt)),
        Some(m) => Ok(m),
        None => Err(unsupported(rt)),
    }
}

/// The runtime a mechanism attributes (what a stored baseline was taken with).
pub fn runtime_of(mechanism: &str) -> Option<Runtime> {
    match mechanism {
        jvm::MECHANISM => Some(Runtime::Jvm),
        python::MECHANISM => Some(Runtime::Cpython),
        node::MECHANISM => Some(Runtime::Node),
        native::MECHANISM => Some(Runtime::Native),
        go::MECHANISM => Some(Runtime::Go),
        _ => None,
    }
}

/// Why a runtime has no attribution, in one line.
pub fn unsupported(rt: Runtime) -> String {
    if rt == Runtime::Go {
        return "a Go target is attributed from the heap profile it serves: pass --pprof URL (e.g. http://127.0.0.1:6060) of a program that imports net/http/pprof".into();
    }
    format!(
        "no attribution mechanism for a {} target yet (JVM, Go with --pprof, spawned CPython, Node.js and native targets have one); the diagnosis's next steps say how to find the sites by hand",
        rt.name()
    )
}

/// Where a snapshot is taken: the process, its runtime, the run's attribution directory.
#[derive(Debug, Clone)]
pub struct Place {
    /// The process.
    pub pid: i32,
    /// Its runtime.
    pub runtime: Runtime,
    /// The run's attribution directory (`STATE/runs/NAME/attribution`), absolute.
    pub dir: std::path::PathBuf,
    /// Whether the sentinel spawned the target (CPython's hook is only in spawned targets).
    pub spawned: bool,
    /// The Go heap profile's URL (`--pprof`, resolved by [`go::heap_url`]).
    pub pprof: Option<String>,
    /// The run's CA file, trusted besides the built-in roots for an https `pprof`.
    pub ca_file: Option<std::path::PathBuf>,
}

/// Takes one snapshot of `place` named `tag` (letters, digits, `-`, `_`), within `limit`.
pub fn snapshot(place: &Place, tag: &str, t: f64, limit: Duration) -> Result<Snapshot> {
    let entries = match place.runtime {
        Runtime::Jvm => jvm::histogram(place.pid, limit)?,
        Runtime::Cpython => python::snapshot(place, tag, limit)?,
        Runtime::Node => node::snapshot(place, limit)?,
        Runtime::Native => native::snapshot(place, tag, limit)?,
        Runtime::Go => go::snapshot(place, limit)?,
        rt => anyhow::bail!(unsupported(rt)),
    };
    Ok(Snapshot {
        mechanism: mechanism(place.runtime).unwrap_or("none").into(),
        pid: place.pid,
        t,
        entries,
    })
}

/// Creates the run's attribution directory (private) with what spawned targets load and the
/// summarisers; returns its absolute path (what the target's environment names).
pub fn prepare(state: &std::path::Path, name: &str) -> Result<std::path::PathBuf> {
    let dir = crate::rundir::open_run_dir(state, name, true)?.sub(python::DIR, true)?;
    python::prepare(&dir)?;
    node::prepare(&dir)?;
    dir.real_path()
}

/// The environment a spawned target gets for attribution (the user's `--env` with ours added):
/// CPython's hook ([`python::spawn_env`]) and Node's snapshot signal ([`node::node_options`]),
/// which other programs ignore, and heaptrack's preload when `program` (the command's first
/// word) is not an interpreter with a mechanism of its own ([`native::spawn_env`]) and the run
/// reads no Go heap profile (`pprof`: the program is Go, whose allocator bypasses malloc).
pub fn spawn_env(
    dir: &std::path::Path,
    env: &[(String, String)],
    program: &str,
    pprof: bool,
) -> Vec<(String, String)> {
    let mut out = python::spawn_env(dir, env);
    let opts = node::node_options(dir, env);
    out.retain(|(k, _)| k != "NODE_OPTIONS");
    out.push(("NODE_OPTIONS".into(), opts));
    if !pprof && let Some(native) = native::spawn_env(dir, env, program) {
        out.retain(|(k, _)| k != "LD_PRELOAD" && k != "DUMP_HEAPTRACK_OUTPUT");
        out.extend(native);
    }
    out
}

/// Whether `place` can be snapshot now without harm: a JVM handles SIGQUIT (jcmd's first
/// attach), a Node.js process SIGUSR2 (its snapshot signal), a Python process loaded the hook;
/// a Go program's heap profile can be read at any time (it may refuse connections yet: the
/// baseline's note then says so).
pub fn ready(place: &Place) -> bool {
    match place.runtime {
        Runtime::Jvm => maps_libjvm(place.pid) && jvm::catches_sigquit(place.pid),
        Runtime::Node => jvm::catches_signal(place.pid, libc::SIGUSR2),
        Runtime::Cpython => place.dir.join(format!("ready-{}", place.pid)).is_file(),
        Runtime::Native => native::traced(place.pid),
        Runtime::Go => true,
        _ => false,
    }
}

/// A snapshot taken during warm-up and dropped: what the first one starts or grows for good
/// (a JVM's attach listener thread and socket and GC workers; the memory V8 or CPython keep
/// after writing a snapshot) then happens before the judged time, not in it.
pub fn prime(place: &Place, limit: Duration) {
    match place.runtime {
        Runtime::Jvm => jvm::prime(place.pid, limit),
        // Reading a heaptrack trace or a Go heap profile changes nothing in the target.
        Runtime::Native | Runtime::Go => {}
        _ => {
            let _ = snapshot(place, "prime", 0.0, limit);
        }
    }
}

/// The first process of `pids` (the root first) that runs `runtime`, as the runtime detection
/// sees it.
pub fn pick_process(pids: &[i32], runtime: Runtime) -> Option<i32> {
    // A native tree: the process heaptrack traces (the spawned one, unless a shell went first).
    if runtime == Runtime::Native
        && let Some(p) = pids.iter().take(64).copied().find(|p| native::traced(*p))
    {
        return Some(p);
    }
    pids.iter().take(64).copied().find(|p| {
        crate::probe::runtime::detect_runtime(*p, None) == runtime || {
            // The executable alone misses a JVM embedded in a launcher: its mapped libjvm.so.
            runtime == Runtime::Jvm && maps_libjvm(*p)
        }
    })
}

/// Whether `/proc/PID/maps` maps libjvm.so (read up to 4 MiB).
pub fn maps_libjvm(pid: i32) -> bool {
    let Ok(f) = std::fs::File::open(format!("/proc/{pid}/maps")) else {
        return false;
    };
    let mut s = String::new();
    let _ = f.take(4 << 20).read_to_string(&mut s);
    s.contains("/libjvm.so")
}

/// What a helper printed and how it ended.
pub struct Output {
    /// Standard output, at most [`MAX_OUTPUT`] bytes (lossy UTF-8).
    pub stdout: String,
    /// The tail of standard error (at most 4 KiB).
    pub stderr: String,
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
}

/// Runs `cmd` in its own process group, its output read up to [`MAX_OUTPUT`], killed (the
/// whole group) when it overruns `limit` — then an error that says so.
pub fn run_bounded(mut cmd: Command, what: &str, limit: Duration) -> Result<Output> {
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("cannot run {what}"))?;
    // The sampling thread reaps orphans (the sentinel is a subreaper): not this one.
    let id = child.id();
    crate::target::helper_started(id);
    let out = child.stdout.take();
    let err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(o) = out {
            let mut o = o.take(MAX_OUTPUT);
            let _ = o.read_to_end(&mut b);
            // Drain the rest so the helper is never blocked on a full pipe.
            let _ = std::io::copy(&mut o.into_inner(), &mut std::io::sink());
        }
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(e) = err {
            let _ = e.take(MAX_OUTPUT).read_to_end(&mut b);
        }
        if b.len() > 4096 {
            b.drain(..b.len() - 4096);
        }
        b
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() >= limit => {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                crate::target::helper_done(id);
                return Err(anyhow::anyhow!("waiting for {what}: {e}"));
            }
        }
    };
    crate::target::helper_done(id);
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    let Some(status) = status else {
        anyhow::bail!(
            "{what} did not finish within {}",
            crate::detect::human_secs(limit.as_secs_f64())
        );
    };
    Ok(Output {
        stdout,
        stderr,
        code: status.code(),
    })
}

/// Runs a summariser (`cmd`: the target's own interpreter on one of our scripts) over a snapshot
/// file `file` in the run's attribution directory `dir`, within what is left of `limit` since
/// `start` (at least 5 s), removes the file, and parses the summariser's entry lines; an error
/// carries the summariser's last line of stderr.
pub fn summarise(
    cmd: Command,
    what: &str,
    dir: &crate::files::Dir,
    file: &str,
    start: Instant,
    limit: Duration,
) -> Result<Vec<crate::attribution::Entry>> {
    let left = limit
        .saturating_sub(start.elapsed())
        .max(Duration::from_secs(5));
    let out = run_bounded(cmd, what, left);
    let _ = dir.remove_own_file(file);
    let out = out?;
    crate::attribution::parse_entry_lines(&out.stdout).map_err(|e| {
        anyhow::anyhow!(
            "{e}{}",
            match last_line(&out.stderr) {
                s if s.is_empty() => String::new(),
                s => format!(" ({s})"),
            }
        )
    })
}

/// The last non-empty line of a helper's error output, for a one-line note.
pub fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}
