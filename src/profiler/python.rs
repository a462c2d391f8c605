//! CPython's tracemalloc, for targets the sentinel spawns: `run --attribute` writes a
//! `sitecustomize.py` into the run's attribution directory and puts that directory first on the
//! target's `PYTHONPATH`, with `PYTHONTRACEMALLOC` (frames kept per allocation: 1 unless the
//! user set it — the allocating line and its function; each more frame costs, see
//! docs/attribution.md). Every Python process of the tree then traces its allocations from its start and
//! runs one small watcher thread (a stat of a control file every 250 ms). To take a snapshot the
//! sentinel writes `request-PID` with a tag; that process pickles `tracemalloc.take_snapshot()`
//! into `snap-PID-TAG.pickle`, written under a temporary name and renamed into place; the
//! sentinel summarises it with the target's own interpreter (`summarize.py`: statistics by
//! traceback, the enclosing function of each frame from the source) and removes it. A user's
//! own `sitecustomize` further down the path still runs (ours loads it).
//!
//! Reads in the directory go through [`crate::files::Dir`] (no symlink followed); the helper
//! opens the snapshot with `O_NOFOLLOW`.

use super::Place;
use crate::attribution::Entry;
use crate::files::Dir;
use anyhow::{Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The mechanism, in the report's words.
pub const MECHANISM: &str = "tracemalloc";
/// Frames kept per traced allocation unless the user set `PYTHONTRACEMALLOC`: one names the
/// allocating line and its function and costs least (a stdlib HTTP server served 44 % fewer
/// requests a second with it, 57 % fewer with 3 frames, 76 % with 8: docs/attribution.md).
pub const DEFAULT_FRAMES: u32 = 1;
/// The directory under the run's directory.
pub const DIR: &str = "attribution";

/// The hook a spawned Python target loads (see the module's documentation).
pub const SITECUSTOMIZE: &str = r#"# Written by leak-sentinel (run --attribute): switches tracemalloc on in this process and
# answers the sentinel's snapshot requests (a control file in this directory). Removing it from
# PYTHONPATH switches attribution off; nothing else in the program changes.
def _leak_sentinel_attribution():
    import os
    d = os.environ.get("LEAK_SENTINEL_ATTRIBUTION_DIR")
    if not d:
        return
    import pickle, threading, time, tracemalloc
    if not tracemalloc.is_tracing():
        try:
            n = int(os.environ.get("PYTHONTRACEMALLOC") or "1")
        except ValueError:
            n = 1
        tracemalloc.start(max(1, n))

    def watch():
        pid = os.getpid()
        try:
            fd = os.open(os.path.join(d, "ready-%d" % pid),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            os.close(fd)
        except OSError:
            return
        req = os.path.join(d, "request-%d" % pid)
        done = None
        while True:
            time.sleep(0.25)
            try:
                fd = os.open(req, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                try:
                    tag = os.read(fd, 64).decode("ascii", "replace").strip()
                finally:
                    os.close(fd)
            except OSError:
                continue
            if not tag or tag == done or not all(c.isalnum() or c in "-_" for c in tag):
                continue
            done = tag
            tmp = os.path.join(d, ".snap-%d-%s.tmp" % (pid, tag))
            try:
                snap = tracemalloc.take_snapshot()
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as f:
                    pickle.dump(snap, f, pickle.HIGHEST_PROTOCOL)
                del snap
                os.rename(tmp, os.path.join(d, "snap-%d-%s.pickle" % (pid, tag)))
            except Exception:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def start():
        threading.Thread(target=watch, name="leak-sentinel-attribution", daemon=True).start()

    start()
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=start)


def _leak_sentinel_chain():
    # The sitecustomize this one shadows (a distribution's or the user's) still runs.
    import importlib.machinery, importlib.util, os, sys
    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is not None and spec.loader is not None:
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)


try:
    _leak_sentinel_attribution()
except Exception:
    pass
_leak_sentinel_chain()
"#;

/// Summarises one snapshot for the sentinel: `python -I summarize.py SNAPSHOT`, one JSON line
/// per allocation site (bytes and blocks held), largest first.
pub const SUMMARIZE: &str = r#"# Written by leak-sentinel: summarises a tracemalloc snapshot by traceback, one JSON line per
# site: {"site": "record_request (app.py:12) <- handle (app.py:30)", "bytes": N, "objects": N}.
import ast, json, linecache, os, pickle, sys, tracemalloc

MAX_SITES = 20000
FRAMES_SHOWN = 3
MAX_SOURCE = 4 << 20

fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NOFOLLOW)
with os.fdopen(fd, "rb") as f:
    snap = pickle.load(f)
here = os.path.dirname(os.path.abspath(__file__))
snap = snap.filter_traces([
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, os.path.join(here, "sitecustomize.py"), all_frames=True),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
])

spans = {}


def function_at(filename, lineno):
    if filename not in spans:
        found = []
        try:
            if os.path.getsize(filename) <= MAX_SOURCE:
                tree = ast.parse("".join(linecache.getlines(filename)))

                def walk(node, prefix):
                    for ch in ast.iter_child_nodes(node):
                        if isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                            name = prefix + ch.name
                            found.append((ch.lineno, getattr(ch, "end_lineno", ch.lineno), name))
                            walk(ch, name + ".")
                        else:
                            walk(ch, prefix)

                walk(tree, "")
        except Exception:
            pass
        spans[filename] = found
    best = None
    for a, b, name in spans[filename]:
        if a <= lineno <= b and (best is None or a >= best[0]):
            best = (a, name)
    return best[1] if best else "<module>"


def site(tb):
    parts = []
    for fr in list(reversed(list(tb)))[:FRAMES_SHOWN]:
        parts.append("%s (%s:%d)" % (function_at(fr.filename, fr.lineno),
                                     os.path.basename(fr.filename), fr.lineno))
    return " <- ".join(parts) or "<unknown>"


stats = snap.statistics("traceback")
out = sys.stdout
for st in stats[:MAX_SITES]:
    out.write(json.dumps({"site": site(st.traceback), "bytes": st.size, "objects": st.count}) + "\n")
if not stats:
    out.write('{"empty": true}\n')
"#;

/// Writes the hook and the summariser into the run's attribution directory.
pub fn prepare(dir: &Dir) -> Result<()> {
    dir.write_atomic("sitecustomize.py", SITECUSTOMIZE.as_bytes(), 0o600)?;
    dir.write_atomic("summarize.py", SUMMARIZE.as_bytes(), 0o600)
}

/// The environment a spawned target gets for attribution: the hook's directory first on
/// `PYTHONPATH` (before the user's, from `--env` or the sentinel's own environment),
/// `PYTHONTRACEMALLOC` (kept when the user set it) and where the hook answers.
pub fn spawn_env(dir: &Path, env: &[(String, String)]) -> Vec<(String, String)> {
    let user = |k: &str| {
        env.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(k).ok())
            .filter(|v| !v.is_empty())
    };
    let mut out: Vec<(String, String)> = env.to_vec();
    out.retain(|(k, _)| k != "PYTHONPATH" && k != "PYTHONTRACEMALLOC");
    let path = match user("PYTHONPATH") {
        Some(p) => format!("{}:{p}", dir.display()),
        None => dir.display().to_string(),
    };
    out.push(("PYTHONPATH".into(), path));
    out.push((
        "PYTHONTRACEMALLOC".into(),
        user("PYTHONTRACEMALLOC").unwrap_or_else(|| DEFAULT_FRAMES.to_string()),
    ));
    out.push((
        "LEAK_SENTINEL_ATTRIBUTION_DIR".into(),
        dir.display().to_string(),
    ));
    out
}

/// One snapshot of the Python process `place.pid`, summarised, within `limit`.
pub fn snapshot(place: &Place, tag: &str, limit: Duration) -> Result<Vec<Entry>> {
    if !place.spawned {
        anyhow::bail!(
            "tracemalloc must be on from the start: attribution of CPython works for targets the sentinel spawns (run --attribute -- python …); an attached process would need a tool that injects into it"
        );
    }
    let start = Instant::now();
    let dir = Dir::open_private(&place.dir, false)?;
    let pid = place.pid;
    if dir.lstat(&format!("ready-{pid}"))?.is_none() {
        anyhow::bail!(
            "PID {pid} did not load the sentinel's sitecustomize (started with -S or -I, PYTHONPATH replaced, or not a spawned Python): no tracemalloc snapshot"
        );
    }
    dir.write_atomic(&format!("request-{pid}"), tag.as_bytes(), 0o600)?;
    let snap = format!("snap-{pid}-{tag}.pickle");
    // The process answers within its 250 ms poll plus the time to pickle its traces.
    loop {
        if let Some(st) = dir.lstat(&snap)? {
            if st.st_mode & libc::S_IFMT == libc::S_IFREG {
                break;
            }
            anyhow::bail!("{} is not a regular file", place.dir.join(&snap).display());
        }
        if start.elapsed() >= limit {
            anyhow::bail!(
                "PID {pid} wrote no tracemalloc snapshot within {}",
                crate::detect::human_secs(limit.as_secs_f64())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .with_context(|| format!("reading the interpreter of PID {pid}"))?;
    let mut cmd = Command::new(&exe);
    // Isolated: none of the target's PYTHON* variables (nor our hook) in the summariser.
    cmd.arg("-I")
        .arg(place.dir.join("summarize.py"))
        .arg(place.dir.join(&snap));
    super::summarise(cmd, "the tracemalloc summary", &dir, &snap, start, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_goes_first_on_the_path_and_keeps_the_users_settings() {
        let dir = Path::new("/s/runs/r/attribution");
        let env = spawn_env(
            dir,
            &[
                ("PYTHONPATH".into(), "/app/lib".into()),
                ("PYTHONTRACEMALLOC".into(), "3".into()),
                ("OTHER".into(), "x".into()),
            ],
        );
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("PYTHONPATH"), Some("/s/runs/r/attribution:/app/lib"));
        assert_eq!(get("PYTHONTRACEMALLOC"), Some("3"));
        assert_eq!(get("OTHER"), Some("x"));
        assert_eq!(
            get("LEAK_SENTINEL_ATTRIBUTION_DIR"),
            Some("/s/runs/r/attribution")
        );
        assert_eq!(env.iter().filter(|(k, _)| k == "PYTHONPATH").count(), 1);
    }
}
