//! Native (C, C++, Rust) targets the sentinel spawns, through heaptrack: `run --attribute` puts
//! heaptrack's preload library first on the target's `LD_PRELOAD` with `DUMP_HEAPTRACK_OUTPUT`
//! naming a raw trace in the run's attribution directory (only when the command is not a
//! Python, Java or Node.js interpreter: those have their own mechanism, and a malloc tracer in
//! them costs much and names interpreter internals). The library unsets both variables when it
//! loads, so only the spawned process is traced, not its children.
//!
//! A snapshot copies the trace as written so far (up to its last complete line; heaptrack
//! buffers a few KiB, so the newest allocations may not be in it yet), turns it into heaptrack's
//! own format with `heaptrack_interpret` and asks `heaptrack_print --print-leaks` what is still
//! allocated at its end, by allocating function: "leaked" at the end of a partial trace is
//! "still allocated now". Both helpers are bounded in time; the trace in size ([`MAX_TRACE`]).
//! Files in the directory are opened through [`crate::files::Dir`] (no symlink followed).

use super::Place;
use crate::attribution::Entry;
use crate::files::Dir;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The mechanism, in the report's words.
pub const MECHANISM: &str = "heaptrack";
/// The raw trace the preload library writes, in the attribution directory.
pub const TRACE: &str = "heaptrack.raw";
/// Largest raw trace a snapshot reads (a line per allocation and per free: ~20 bytes each).
pub const MAX_TRACE: u64 = 2 << 30;
/// Sites kept from one snapshot.
const MAX_SITES: usize = 20_000;

/// heaptrack's directory (`…/lib/heaptrack`, holding the preload library and `libexec/`):
/// next to the `heaptrack` on `PATH` (as its own script finds it), else Debian's place.
pub fn heaptrack_lib() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(paths) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&paths) {
            if d.join("heaptrack").is_file() {
                candidates.push(d.join("../lib/heaptrack"));
            }
        }
    }
    candidates.push(PathBuf::from("/usr/lib/heaptrack"));
    candidates
        .into_iter()
        .find(|c| c.join("libheaptrack_preload.so").is_file())
        .map(|c| std::fs::canonicalize(&c).unwrap_or(c))
}

/// Whether `program` (a spawned command's first word) is an interpreter with a mechanism of
/// its own (CPython, a JVM, Node.js): no malloc tracer is put into it.
pub fn has_own_mechanism(program: &str) -> bool {
    let base = program.rsplit('/').next().unwrap_or(program);
    base.starts_with("python") || base.starts_with("pypy") || base == "java" || base == "node"
}

/// The variables a spawned native target gets (`None`: heaptrack is not installed, or the
/// program has its own mechanism): `LD_PRELOAD` (ours first, the user's kept after it) and
/// `DUMP_HEAPTRACK_OUTPUT`.
pub fn spawn_env(
    dir: &Path,
    env: &[(String, String)],
    program: &str,
) -> Option<Vec<(String, String)>> {
    if has_own_mechanism(program) {
        return None;
    }
    let lib = heaptrack_lib()?;
    let user = env
        .iter()
        .rev()
        .find(|(k, _)| k == "LD_PRELOAD")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("LD_PRELOAD").ok())
        .filter(|v| !v.is_empty());
    let preload = lib.join("libheaptrack_preload.so").display().to_string();
    Some(vec![
        (
            "LD_PRELOAD".into(),
            match user {
                Some(u) => format!("{preload}:{u}"),
                None => preload,
            },
        ),
        (
            "DUMP_HEAPTRACK_OUTPUT".into(),
            dir.join(TRACE).display().to_string(),
        ),
    ])
}

/// Whether `pid` has heaptrack's preload library mapped (it is the traced process).
pub fn traced(pid: i32) -> bool {
    let Ok(f) = std::fs::File::open(format!("/proc/{pid}/maps")) else {
        return false;
    };
    let mut s = String::new();
    let _ = f.take(4 << 20).read_to_string(&mut s);
    s.contains("/libheaptrack_preload.so")
}

/// One snapshot of the traced native process `place.pid`, within `limit`.
pub fn snapshot(place: &Place, tag: &str, limit: Duration) -> Result<Vec<Entry>> {
    if !place.spawned {
        anyhow::bail!(
            "heaptrack must trace from the start: attribution of a native program works for targets the sentinel spawns (run --attribute -- ./server …)"
        );
    }
    let Some(lib) = heaptrack_lib() else {
        anyhow::bail!(
            "heaptrack is not installed (Debian's heaptrack package): no native attribution"
        );
    };
    let pid = place.pid;
    if !traced(pid) {
        anyhow::bail!(
            "PID {pid} does not have heaptrack's preload library loaded (a statically linked program, a shell in front of the program, or LD_PRELOAD cleared): no heaptrack snapshot"
        );
    }
    let start = Instant::now();
    let dir = Dir::open_private(&place.dir, false)?;
    let copy = format!("heaptrack-{tag}.raw");
    let interpreted = format!("heaptrack-{tag}.trace");
    let r = (|| -> Result<Vec<Entry>> {
        copy_trace(&dir, &copy)?;
        let out = dir.own_file(&interpreted)?;
        out.set_len(0)?;
        let input = dir.read_file(&copy)?.context("the copied trace vanished")?;
        let mut cmd = Command::new(lib.join("libexec/heaptrack_interpret"));
        cmd.stdin(Stdio::from(input))
            .stdout(Stdio::from(out))
            .stderr(Stdio::null());
        wait_bounded(
            cmd,
            "heaptrack_interpret",
            limit.saturating_sub(start.elapsed()),
        )?;
        let mut cmd = Command::new("heaptrack_print");
        cmd.arg("-f")
            .arg(place.dir.join(&interpreted))
            .args(["-l", "1", "-p", "0", "-a", "0", "-T", "0"]);
        let left = limit
            .saturating_sub(start.elapsed())
            .max(Duration::from_secs(5));
        let out = super::run_bounded(cmd, "heaptrack_print", left)?;
        if out.code != Some(0) {
            anyhow::bail!(
                "heaptrack_print failed (exit {}): {}",
                out.code.map_or("by a signal".into(), |c| c.to_string()),
                super::last_line(&out.stderr)
            );
        }
        parse_leaks(&out.stdout)
    })();
    let _ = dir.remove_own_file(&copy);
    let _ = dir.remove_own_file(&interpreted);
    r
}

/// Copies the raw trace as written so far, up to its last complete line, into `name`.
fn copy_trace(dir: &Dir, name: &str) -> Result<()> {
    let Some(mut f) = dir.read_file(TRACE)? else {
        anyhow::bail!("the target wrote no heaptrack trace ({TRACE} is missing)");
    };
    let meta = f.metadata()?;
    if !meta.is_file() {
        anyhow::bail!("{TRACE} is not a regular file");
    }
    let len = meta.len();
    if len > MAX_TRACE {
        anyhow::bail!(
            "the heaptrack trace is {} MiB, more than the {} MiB a snapshot reads: no diff",
            len >> 20,
            MAX_TRACE >> 20
        );
    }
    dir.write_atomic_with(name, 0o600, |out| {
        let mut buf = vec![0u8; 1 << 16];
        let mut done = 0u64;
        let mut last_nl = 0u64;
        let mut src = (&mut f).take(len);
        loop {
            let n = src.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if let Some(i) = buf[..n].iter().rposition(|b| *b == b'\n') {
                last_nl = done + i as u64 + 1;
            }
            out.write_all(&buf[..n])?;
            done += n as u64;
        }
        out.set_len(last_nl)?;
        out.seek(SeekFrom::End(0))?;
        Ok(())
    })
}

/// Runs `cmd` (its input and output set by the caller) in its own process group, killed when
/// it overruns `limit`; an error unless it exits 0.
fn wait_bounded(mut cmd: Command, what: &str, limit: Duration) -> Result<()> {
    cmd.process_group(0);
    let mut child = cmd.spawn().with_context(|| format!("cannot run {what}"))?;
    // The sampling thread reaps orphans (the sentinel is a subreaper): not this one.
    let id = child.id();
    crate::target::helper_started(id);
    let done = wait_child(&mut child, what, limit);
    crate::target::helper_done(id);
    done
}

/// Waits for `child` at most `limit` (then kills its group); an error unless it exits 0.
fn wait_child(child: &mut std::process::Child, what: &str, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        match child.try_wait()? {
            Some(st) if st.success() => return Ok(()),
            Some(st) => anyhow::bail!("{what} failed ({st})"),
            None if start.elapsed() >= limit => {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!(
                    "{what} did not finish within {}",
                    crate::detect::human_secs(limit.as_secs_f64())
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// heaptrack's sizes: `100B`, `72.70K`, `5.12M` (decimal units).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'B' => (&s[..s.len() - 1], 1.0),
        'K' => (&s[..s.len() - 1], 1e3),
        'M' => (&s[..s.len() - 1], 1e6),
        'G' => (&s[..s.len() - 1], 1e9),
        'T' => (&s[..s.len() - 1], 1e12),
        _ => (s, 1.0),
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * mult).round() as u64)
}

/// What `heaptrack_print --print-leaks` says is still allocated, by allocating function
/// (`SIZE leaked over N calls from` then the function, `  at FILE:LINE`, `  in MODULE`; the
/// indented backtraces under each are skipped), largest first.
pub fn parse_leaks(text: &str) -> Result<Vec<Entry>> {
    let mut by_site: HashMap<String, (u64, u64)> = HashMap::new();
    let mut lines = text.lines().peekable();
    let mut seen_heading = false;
    while let Some(line) = lines.next() {
        if line.starts_with("MEMORY LEAKS") {
            seen_heading = true;
            continue;
        }
        if line.starts_with("total runtime:") {
            break;
        }
        let Some(head) = line.strip_suffix(" calls from") else {
            continue;
        };
        let Some((size, calls)) = head.split_once(" leaked over ") else {
            continue;
        };
        let (Some(bytes), Ok(calls)) = (parse_size(size), calls.trim().parse::<u64>()) else {
            continue;
        };
        let Some(func) = lines.next().map(str::trim) else {
            break;
        };
        let mut place = None;
        while let Some(next) = lines.peek() {
            if let Some(at) = next.strip_prefix("  at ") {
                let at = at.trim();
                place = Some(at.rsplit('/').next().unwrap_or(at).to_string());
            } else if let Some(m) = next.strip_prefix("  in ") {
                if place.is_none() {
                    let m = m.trim();
                    place = Some(m.rsplit('/').next().unwrap_or(m).to_string());
                }
            } else {
                break;
            }
            lines.next();
        }
        let site = match place {
            Some(p) => format!("{func} ({p})"),
            None => func.to_string(),
        };
        let e = by_site.entry(site).or_default();
        e.0 += bytes;
        e.1 += calls;
    }
    if !seen_heading {
        anyhow::bail!("heaptrack_print printed no leak list");
    }
    let mut v: Vec<Entry> = by_site
        .into_iter()
        .map(|(site, (bytes, objects))| Entry {
            site: site
                .chars()
                .take(crate::attribution::MAX_SITE_CHARS)
                .collect(),
            bytes,
            objects,
        })
        .collect();
    v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.site.cmp(&b.site)));
    v.truncate(MAX_SITES);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRINTED: &str = "reading file \"i1\" - please wait, this might take some time...
Debuggee command was: ./leak
finished reading file, now analyzing data:

MEMORY LEAKS
5.12M leaked over 1251 calls from
remember_request
  at /tmp/ht/leak.c:5
  in /tmp/ht/leak
5.12M leaked over 1251 calls from:
    handle
      at /tmp/ht/leak.c:6
      in /tmp/ht/leak
    main
      at /tmp/ht/leak.c:7
      in /tmp/ht/leak

72.70K leaked over 1 calls from
0x7f8a276a57b9
  in /lib/x86_64-linux-gnu/libstdc++.so.6
72.70K leaked over 1 calls from:
    call_init
      at ./elf/dl-init.c:74
      in /lib64/ld-linux-x86-64.so.2

100B leaked over 2 calls from
remember_request
  at /tmp/ht/leak.c:5
  in /tmp/ht/leak


total runtime: 2.93s.
calls to allocation functions: 2504 (854/s)
total memory leaked: 5.20M
";

    #[test]
    fn leaks_are_read_by_allocating_function_and_merged() {
        let v = parse_leaks(PRINTED).expect("parses");
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0].site, "remember_request (leak.c:5)");
        assert_eq!(v[0].bytes, 5_120_100);
        assert_eq!(v[0].objects, 1253);
        assert_eq!(v[1].site, "0x7f8a276a57b9 (libstdc++.so.6)");
        assert_eq!(v[1].bytes, 72_700);
    }

    #[test]
    fn output_without_a_leak_list_is_an_error_and_an_empty_one_is_not() {
        assert!(parse_leaks("heaptrack_print: cannot open file\n").is_err());
        let v = parse_leaks("MEMORY LEAKS\n\ntotal runtime: 1s.\n").expect("empty");
        assert!(v.is_empty());
        assert_eq!(parse_size("3.5K"), Some(3500));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn interpreters_get_no_preload_and_the_users_preload_stays() {
        assert!(has_own_mechanism("/usr/bin/python3.11"));
        assert!(has_own_mechanism("java"));
        assert!(!has_own_mechanism("./server"));
        let d = Path::new("/s/runs/r/attribution");
        assert!(spawn_env(d, &[], "python3").is_none());
        if let Some(env) = spawn_env(d, &[("LD_PRELOAD".into(), "/x/libfoo.so".into())], "./srv") {
            let pre = &env.iter().find(|(k, _)| k == "LD_PRELOAD").expect("set").1;
            assert!(
                pre.ends_with("libheaptrack_preload.so:/x/libfoo.so"),
                "{pre}"
            );
            assert!(
                env.iter().any(|(k, v)| k == "DUMP_HEAPTRACK_OUTPUT"
                    && v == "/s/runs/r/attribution/heaptrack.raw")
            );
        }
    }
}
