//! Diagnosis: what leaks, where, and what to do next. The inventories ([`fds`], [`maps`]) are
//! read at the edges; [`diagnose`] is a pure function from a baseline (end of warm-up) and a
//! current state to grouped findings and suggested fix directions for the runtime detected.

pub mod fds;
pub mod maps;

use crate::detect::human_secs;
use fds::{FdEntry, FdKind};
use maps::MapsSummary;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The runtime of the target, which decides the heap-dump tool to suggest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// HotSpot/OpenJDK (libjvm.so mapped).
    Jvm,
    /// CPython (libpython mapped or a python executable).
    Cpython,
    /// Node.js / V8.
    Node,
    /// A Go binary (Go build info in the executable).
    Go,
    /// Ruby (MRI: a ruby executable or libruby mapped — puma, unicorn, sidekiq).
    Ruby,
    /// PHP (php, php-fpm, or libphp mapped into a web server).
    Php,
    /// .NET (the CoreCLR mapped: dotnet or an apphost).
    Dotnet,
    /// The Erlang VM (BEAM: Erlang, Elixir).
    Beam,
    /// Anything else: C, C++, Rust…
    Native,
}

impl Runtime {
    /// Detects the runtime from the executable path, the mapped files and whether the
    /// executable carries Go build info.
    pub fn detect(exe: &str, mapped: &[String], go_buildinfo: bool) -> Runtime {
        let base = exe.rsplit('/').next().unwrap_or(exe);
        let has = |needle: &str| mapped.iter().any(|p| p.contains(needle));
        if has("libjvm.so") || base == "java" {
            Runtime::Jvm
        } else if base.starts_with("python") || has("libpython") {
            Runtime::Cpython
        } else if base == "node" || base == "nodejs" || has("libnode.so") {
            Runtime::Node
        } else if base.starts_with("ruby") || has("libruby") {
            Runtime::Ruby
        } else if base.starts_with("php") || has("libphp") {
            Runtime::Php
        } else if base == "dotnet" || has("libcoreclr.so") {
            Runtime::Dotnet
        } else if base.starts_with("beam") || has("/erts-") {
            Runtime::Beam
        } else if go_buildinfo {
            Runtime::Go
        } else {
            Runtime::Native
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Jvm => "JVM",
            Runtime::Cpython => "CPython",
            Runtime::Node => "Node.js",
            Runtime::Go => "Go",
            Runtime::Ruby => "Ruby",
            Runtime::Php => "PHP",
            Runtime::Dotnet => ".NET",
            Runtime::Beam => "Erlang VM (BEAM)",
            Runtime::Native => "native (C/C++/Rust)",
        }
    }

    fn heap_tool(self) -> &'static str {
        match self {
            Runtime::Jvm => {
                "take a heap dump and compare two of them (jcmd PID GC.heap_dump /tmp/h.hprof, then Eclipse MAT's leak suspects)"
            }
            Runtime::Cpython => {
                "compare tracemalloc snapshots (or run memray) to find the allocation sites that keep growing; py-spy dump --pid PID shows what it is doing"
            }
            Runtime::Node => {
                "take two heap snapshots (node --heapsnapshot-signal=SIGUSR2, kill -USR2 PID) and compare them in Chrome DevTools"
            }
            Runtime::Go => {
                "compare two heap profiles (go tool pprof -base old.pb.gz new.pb.gz from /debug/pprof/heap)"
            }
            Runtime::Ruby => {
                "compare two ObjectSpace heap dumps (ObjectSpace.trace_object_allocations_start, then ObjectSpace.dump_all twice; heapy diff), or count objects by class with ObjectSpace.count_objects_size; rbspy dump --pid PID shows what it is doing"
            }
            Runtime::Php => {
                "PHP frees a request's memory when it ends, so growth across requests is in the worker itself: check what static or global state (and extensions) keep between requests, lower pm.max_requests to recycle workers, and profile one worker with php-meminfo or Xdebug"
            }
            Runtime::Dotnet => {
                "compare two heap dumps (dotnet-gcdump collect -p PID, twice; open both in Visual Studio or PerfView) or watch dotnet-counters monitor -p PID"
            }
            Runtime::Beam => {
                "find the processes that grow: recon:proc_count(memory, 10) and recon:bin_leak(10) in a remote shell, and ETS tables with ets:i()"
            }
            Runtime::Native => {
                "find the allocation sites with heaptrack or valgrind --tool=massif, or take a core (gcore -o DIR/core PID) for offline analysis"
            }
        }
    }
}

/// A group of descriptors added since the baseline and still open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FdGroup {
    /// The group key (`tcp → 127.0.0.1:6379 ESTABLISHED`, `files under /var/log/app/`).
    pub group: String,
    /// Kind of its descriptors.
    pub kind: FdKind,
    /// Added since the baseline and still open.
    pub added: usize,
    /// Open in the group now.
    pub now: usize,
    /// Unix seconds the oldest added one was first seen.
    pub oldest_first_seen: Option<f64>,
    /// Processes holding them.
    pub pids: Vec<i32>,
    /// One example target.
    pub example: String,
    /// One line for people.
    pub text: String,
}

/// Memory grown in one class since the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemFinding {
    /// heap, anonymous, thread_stack, file, shared, stack, other.
    pub class: String,
    /// Resident bytes at the baseline.
    pub rss_before: u64,
    /// Resident bytes now.
    pub rss_after: u64,
    /// One line for people.
    pub text: String,
}

/// The whole diagnosis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Runtime detected.
    pub runtime: Option<Runtime>,
    /// Unix seconds of the baseline and of the current state.
    pub baseline_t: Option<f64>,
    /// Unix seconds of the current state.
    pub t: f64,
    /// Descriptor groups added and never closed, largest first.
    pub fd_groups: Vec<FdGroup>,
    /// Memory classes that grew, largest first.
    pub memory: Vec<MemFinding>,
    /// Thread count at the baseline and now.
    pub threads: Option<(f64, f64)>,
    /// The findings, one line each, most important first.
    pub findings: Vec<String>,
    /// Suggested fix directions.
    pub suggestions: Vec<String>,
    /// True when an inventory behind it was partial (a process vanished mid-read).
    pub partial: bool,
    /// Processes that appeared since the baseline and still run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_processes: Option<NewProcesses>,
    /// Per leaking metric, the processes it grows in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub culprits: Vec<Culprits>,
}

/// One process of the target's tree (PID + start time identify it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcInfo {
    /// PID.
    pub pid: i32,
    /// Start time, clock ticks after boot.
    pub starttime: u64,
    /// Command line, space-joined (or the name in brackets when it has none).
    pub command: String,
    /// Private memory (anonymous resident + swap), bytes.
    #[serde(default)]
    pub private_bytes: Option<u64>,
    /// Open descriptors.
    #[serde(default)]
    pub fds: Option<u64>,
    /// Threads.
    #[serde(default)]
    pub threads: Option<u64>,
}

/// Which processes of a tree a leaking metric grows in, and how: one of them, all alike, or a
/// few.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Culprits {
    /// The metric (`rss_anon_bytes`, `fds`, `threads`).
    pub metric: String,
    /// `one_process`, `all_alike` or `several`.
    pub pattern: String,
    /// (PID, command, growth since the baseline, growth per minute), largest first, at most 5.
    pub processes: Vec<(i32, String, f64, f64)>,
    /// One line.
    pub text: String,
}

/// Per-process growth of `metric` between two process lists taken `minutes` apart; only
/// processes present in both (same PID and start time) count — a recycled worker is churn.
pub fn culprits(
    metric: &str,
    before: &[ProcInfo],
    now: &[ProcInfo],
    minutes: f64,
) -> Option<Culprits> {
    let value = |p: &ProcInfo| -> Option<f64> {
        match metric {
            "fds" => p.fds.map(|v| v as f64),
            "threads" => p.threads.map(|v| v as f64),
            _ => p.private_bytes.map(|v| v as f64),
        }
    };
    let old: HashMap<(i32, u64), f64> = before
        .iter()
        .filter_map(|p| Some(((p.pid, p.starttime), value(p)?)))
        .collect();
    let mut grew: Vec<(i32, String, f64, f64)> = now
        .iter()
        .filter_map(|p| {
            let d = value(p)? - old.get(&(p.pid, p.starttime))?;
            (d > 0.0).then(|| (p.pid, p.command.clone(), d, d / minutes.max(1e-9)))
        })
        .collect();
    let survivors = now
        .iter()
        .filter(|p| old.contains_key(&(p.pid, p.starttime)))
        .count();
    let total: f64 = grew.iter().map(|g| g.2).sum();
    if grew.is_empty() || total <= 0.0 {
        return None;
    }
    grew.sort_by(|a, b| b.2.total_cmp(&a.2));
    let (unit, scale) = match metric {
        "fds" => ("FDs", 1.0),
        "threads" => ("threads", 1.0),
        _ => ("MiB", MIB),
    };
    let fmt = |v: f64| {
        if scale > 1.0 {
            format!("{:.1} {unit}", v / scale)
        } else {
            format!("{v:.0} {unit}")
        }
    };
    let describe = |g: &(i32, String, f64, f64)| {
        format!(
            "PID {} '{}' +{} ({}/min)",
            g.0,
            shorten(&g.1, 50),
            fmt(g.2),
            fmt(g.3)
        )
    };
    let even = total / survivors.max(1) as f64;
    let alike = grew.iter().filter(|g| g.2 >= 0.5 * even).count();
    let (pattern, text) = if grew[0].2 >= 0.6 * total {
        (
            "one_process",
            format!("{metric} grows in one process: {}", describe(&grew[0])),
        )
    } else if survivors >= 2 && alike as f64 >= 0.6 * survivors as f64 {
        (
            "all_alike",
            format!(
                "{metric} grows in all {survivors} processes alike: ~+{} each ({} in all)",
                fmt(even),
                fmt(total)
            ),
        )
    } else {
        let top: Vec<String> = grew.iter().take(3).map(describe).collect();
        ("several", format!("{metric} grows in {}", top.join("; ")))
    };
    grew.truncate(5);
    Some(Culprits {
        metric: metric.into(),
        pattern: pattern.into(),
        processes: grew,
        text,
    })
}

/// Processes that appeared in the tree since the baseline and are still there, grouped by
/// command (digits folded, so `postgres: … 127.0.0.1(50012) idle` backends group together).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewProcesses {
    /// How many appeared and still run.
    pub count: usize,
    /// Processes in the tree at the baseline and now.
    pub before: usize,
    /// Processes in the tree now.
    pub now: usize,
    /// (command, how many, up to 10 PIDs), largest group first.
    pub groups: Vec<(String, usize, Vec<i32>)>,
    /// One line.
    pub text: String,
}

/// New processes since the baseline, when any; `None` without a baseline process list.
pub fn new_processes(before: &[ProcInfo], now: &[ProcInfo]) -> Option<NewProcesses> {
    let old: HashSet<(i32, u64)> = before.iter().map(|p| (p.pid, p.starttime)).collect();
    let fresh: Vec<&ProcInfo> = now
        .iter()
        .filter(|p| !old.contains(&(p.pid, p.starttime)))
        .collect();
    if fresh.is_empty() {
        return None;
    }
    let fold = |c: &str| -> String {
        let mut out = String::new();
        let mut digits = false;
        for ch in c.chars() {
            if ch.is_ascii_digit() {
                if !digits {
                    out.push('#');
                }
                digits = true;
            } else {
                digits = false;
                out.push(ch);
            }
        }
        out
    };
    let mut groups: BTreeMap<String, (String, Vec<i32>)> = BTreeMap::new();
    for p in &fresh {
        let g = groups
            .entry(fold(&p.command))
            .or_insert_with(|| (p.command.clone(), Vec::new()));
        g.1.push(p.pid);
    }
    let mut groups: Vec<(String, usize, Vec<i32>)> = groups
        .into_values()
        .map(|(example, mut pids)| {
            pids.sort_unstable();
            let n = pids.len();
            pids.truncate(10);
            (example, n, pids)
        })
        .collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let top: Vec<String> = groups
        .iter()
        .take(3)
        .map(|(c, n, _)| format!("{n} × '{}'", shorten(c, 60)))
        .collect();
    let text = format!(
        "+{} new processes since warm-up, still running ({} → {}): {}",
        fresh.len(),
        before.len(),
        now.len(),
        top.join(", ")
    );
    Some(NewProcesses {
        count: fresh.len(),
        before: before.len(),
        now: now.len(),
        groups,
        text,
    })
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// What the diagnosis is computed from.
#[derive(Debug, Clone, Default)]
pub struct Input<'a> {
    /// Descriptors at the baseline.
    pub fds_before: &'a [FdEntry],
    /// Descriptors now, with the time each was first seen.
    pub fds_now: &'a [(FdEntry, f64)],
    /// Maps at the baseline.
    pub maps_before: Option<&'a MapsSummary>,
    /// Maps now.
    pub maps_now: Option<&'a MapsSummary>,
    /// Threads at the baseline and now.
    pub threads: Option<(f64, f64)>,
    /// Runtime detected.
    pub runtime: Option<Runtime>,
    /// Names of the gate metrics judged `leak` (rss_bytes, fds, threads…).
    pub leaking: &'a [String],
    /// Unix seconds now.
    pub now: f64,
    /// Unix seconds of the baseline.
    pub baseline_t: Option<f64>,
    /// Any inventory partial.
    pub partial: bool,
    /// The tree's processes at the baseline (when recorded) and now.
    pub procs: Option<(&'a [ProcInfo], &'a [ProcInfo])>,
    /// Unix seconds of the baseline process list (for per-process rates).
    pub procs_t: Option<f64>,
    /// A JVM's live set after GC at the baseline (first reading after it) and now, bytes.
    pub jvm_live: Option<(f64, f64)>,
}

const MIB: f64 = 1_048_576.0;

fn group_text(g: &FdGroup, now: f64) -> String {
    let oldest = g
        .oldest_first_seen
        .map(|t| format!(", oldest {}", human_secs(now - t)))
        .unwrap_or_default();
    let who = if g.pids.len() == 1 {
        format!(", all opened by PID {}", g.pids[0])
    } else {
        format!(", in {} processes", g.pids.len())
    };
    let what = if let Some(rest) = g.group.strip_prefix("tcp → ") {
        let (addr, state) = rest.rsplit_once(' ').unwrap_or((rest, ""));
        format!("TCP sockets to {addr} ({state})")
    } else if let Some(rest) = g.group.strip_prefix("tcp accepted on ") {
        let (addr, state) = rest.rsplit_once(' ').unwrap_or((rest, ""));
        format!("accepted TCP connections on {addr} ({state})")
    } else if let Some(dir) = g.group.strip_prefix("files under ") {
        format!("regular files under {dir}")
    } else {
        g.group.clone()
    };
    format!("+{} {what}{oldest}{who}", g.added)
}

/// Groups the descriptors added since the baseline and still open.
///
/// A descriptor is its process, number and target, so a worker started after the baseline has
/// only new ones — yet most are what it inherited from its parent (the listening socket, the
/// log file, a pipe): the same open files under a new PID. Per target, only as many
/// descriptors count as added as the tree holds more of that target than at the baseline:
/// recycled workers (pm.max_requests, a pool's max age) add nothing, a process opening the same
/// file again and again still does.
pub fn fd_groups(before: &[FdEntry], now: &[(FdEntry, f64)], t: f64) -> Vec<FdGroup> {
    let base: HashSet<(i32, i32, String)> = before.iter().map(|e| e.key()).collect();
    let mut groups: BTreeMap<String, FdGroup> = BTreeMap::new();
    let mut totals: BTreeMap<String, usize> = BTreeMap::new();
    for (e, _) in now {
        *totals.entry(e.group.clone()).or_default() += 1;
    }
    // How many more descriptors of each target the tree holds now than at the baseline.
    let mut growth: HashMap<String, i64> = HashMap::new();
    for (e, _) in now {
        *growth.entry(e.key().2).or_default() += 1;
    }
    for e in before {
        *growth.entry(e.key().2).or_default() -= 1;
    }
    let mut added: Vec<(usize, &(FdEntry, f64))> = Vec::new();
    let mut per_process: HashMap<(i32, String), usize> = HashMap::new();
    for pair in now.iter().filter(|(e, _)| !base.contains(&e.key())) {
        *per_process.entry((pair.0.pid, pair.0.key().2)).or_default() += 1;
        added.push((0, pair));
    }
    for (n, (e, _)) in added.iter_mut() {
        *n = per_process.get(&(e.pid, e.key().2)).copied().unwrap_or(0);
    }
    // When a target grew by fewer than its new descriptors, the ones counted are those of the
    // process holding most of them (the one opening it again and again, not a worker that
    // inherited one), the oldest first.
    added.sort_by(|(na, a), (nb, b)| {
        nb.cmp(na)
            .then(a.1.total_cmp(&b.1))
            .then(a.0.pid.cmp(&b.0.pid))
            .then(a.0.fd.cmp(&b.0.fd))
    });
    for (_, (e, seen)) in added {
        // First seen by the inventory taken for this diagnosis: not yet seen to stay open (a
        // worker living a moment, caught by the last look).
        if *seen >= t {
            continue;
        }
        match growth.get_mut(&e.key().2) {
            Some(g) if *g > 0 => *g -= 1,
            _ => continue, // as many as at the baseline: the same files under new PIDs
        }
        let g = groups.entry(e.group.clone()).or_insert_with(|| FdGroup {
            group: e.group.clone(),
            kind: e.kind,
            added: 0,
            now: totals.get(&e.group).copied().unwrap_or(0),
            oldest_first_seen: None,
            pids: Vec::new(),
            example: e.target.clone(),
            text: String::new(),
        });
        g.added += 1;
        g.oldest_first_seen = Some(g.oldest_first_seen.map_or(*seen, |o: f64| o.min(*seen)));
        if !g.pids.contains(&e.pid) {
            g.pids.push(e.pid);
        }
    }
    let mut before_totals: BTreeMap<&str, usize> = BTreeMap::new();
    for e in before {
        *before_totals.entry(e.group.as_str()).or_default() += 1;
    }
    // A group that holds no more descriptors than at the baseline was renewed, not added to
    // (recycled workers' own connections under new ports): at most its growth is added.
    let mut out: Vec<FdGroup> = groups
        .into_values()
        .filter_map(|mut g| {
            let was = before_totals.get(g.group.as_str()).copied().unwrap_or(0);
            g.added = g.added.min(g.now.saturating_sub(was));
            (g.added > 0).then_some(g)
        })
        .collect();
    for g in &mut out {
        g.pids.sort_unstable();
        g.text = group_text(g, t);
    }
    out.sort_by(|a, b| b.added.cmp(&a.added).then(a.group.cmp(&b.group)));
    out
}

/// Memory classes that grew by at least 1 MiB, with region-level detail for anonymous memory.
pub fn memory_findings(before: &MapsSummary, now: &MapsSummary) -> Vec<MemFinding> {
    let classes: BTreeSet<&String> = before.classes.keys().chain(now.classes.keys()).collect();
    let mut out = Vec::new();
    for class in classes {
        let b = before.classes.get(class).map_or(0, |t| t.rss);
        let a = now.classes.get(class).map_or(0, |t| t.rss);
        if a <= b + (1 << 20) {
            continue;
        }
        let delta = (a - b) as f64 / MIB;
        let text = match class.as_str() {
            "anonymous" | "heap" => {
                let old: BTreeMap<(i32, u64), u64> = before
                    .regions
                    .iter()
                    .filter(|r| &r.class == class)
                    .map(|r| ((r.pid, r.start), r.rss))
                    .collect();
                let mut grew = Vec::new();
                let mut new_regions = (0usize, 0u64);
                for r in now.regions.iter().filter(|r| &r.class == class) {
                    match old.get(&(r.pid, r.start)) {
                        Some(o) if r.rss > *o + (1 << 20) => grew.push(r.rss - o),
                        Some(_) => {}
                        None => {
                            new_regions.0 += 1;
                            new_regions.1 += r.rss;
                        }
                    }
                }
                grew.sort_unstable_by(|a, b| b.cmp(a));
                let mut parts = Vec::new();
                if !grew.is_empty() {
                    parts.push(format!(
                        "{} region{} grew by {:.0} MiB (malloc arena or runtime heap)",
                        grew.len(),
                        if grew.len() == 1 { "" } else { "s" },
                        grew.iter().sum::<u64>() as f64 / MIB
                    ));
                }
                if new_regions.0 > 0 {
                    parts.push(format!(
                        "{} new region{} of ≥ 1 MiB (+{:.0} MiB: large allocations or new arenas)",
                        new_regions.0,
                        if new_regions.0 == 1 { "" } else { "s" },
                        new_regions.1 as f64 / MIB
                    ));
                }
                let label = if class == "heap" {
                    "heap (brk)"
                } else {
                    "anonymous memory"
                };
                if parts.is_empty() {
                    format!("+{delta:.1} MiB {label}, spread over small regions")
                } else {
                    format!("+{delta:.1} MiB {label}: {}", parts.join("; "))
                }
            }
            "thread_stack" => format!("+{delta:.1} MiB of thread stacks"),
            "file" => {
                let grown: Vec<String> = now
                    .by_path
                    .iter()
                    .filter_map(|(p, t)| {
                        let o = before
                            .by_path
                            .iter()
                            .find(|(q, _)| q == p)
                            .map_or(0, |(_, t)| t.rss);
                        (t.rss > o + (1 << 20))
                            .then(|| format!("{p} +{:.0} MiB", (t.rss - o) as f64 / MIB))
                    })
                    .take(3)
                    .collect();
                format!("+{delta:.1} MiB file-backed memory ({})", grown.join(", "))
            }
            "shared" => format!("+{delta:.1} MiB shared memory (/dev/shm, SysV, memfd)"),
            other => format!("+{delta:.1} MiB in {other} mappings"),
        };
        out.push(MemFinding {
            class: class.clone(),
            rss_before: b,
            rss_after: a,
            text,
        });
    }
    out.sort_by_key(|m| std::cmp::Reverse(m.rss_after - m.rss_before));
    out
}

fn suggestion_for_group(g: &FdGroup, rt: Runtime) -> String {
    let lang = match rt {
        Runtime::Jvm => " (try-with-resources; HTTP client and JDBC pool limits)",
        Runtime::Cpython => " (with-blocks; one requests.Session, response.close())",
        Runtime::Node => {
            " (an http.Agent with keepAlive and maxSockets; socket.destroy() on errors)"
        }
        Runtime::Go => " (defer resp.Body.Close(); one shared http.Client)",
        Runtime::Ruby => {
            " (File.open with a block; a connection pool such as connection_pool or the client's own)"
        }
        Runtime::Php => {
            " (fclose/curl_close on every path; persistent connections bounded per worker)"
        }
        Runtime::Dotnet => " (using/await using; one shared HttpClient or IHttpClientFactory)",
        Runtime::Beam => {
            " (ports and sockets owned by processes that never exit; gen_tcp:close on every path)"
        }
        Runtime::Native => " (close() on every path, including errors)",
    };
    match g.kind {
        FdKind::Tcp if g.group.contains("CLOSE_WAIT") => format!(
            "{}: the peer closed these connections but the program never closed its end — a missing close on an error or timeout path{lang}",
            g.group
        ),
        FdKind::Tcp if g.group.starts_with("tcp accepted") => format!(
            "{}: accepted connections are never closed — a handler that returns without closing, or keep-alive without an idle timeout{lang}",
            g.group
        ),
        FdKind::Tcp => format!(
            "{}: a client or connection pool opens connections to this peer and does not close or reuse them — check pooling and that every request path releases its connection{lang}",
            g.group
        ),
        FdKind::Udp | FdKind::Unix | FdKind::Socket => {
            format!("{}: sockets are created and not closed{lang}", g.group)
        }
        FdKind::File => format!(
            "{}: files are opened and not closed — look for an open without close on an error path{lang}",
            g.group
        ),
        FdKind::Dir => format!(
            "{}: directory handles (opendir/os.scandir) not closed",
            g.group
        ),
        FdKind::Pipe => format!(
            "{}: pipes are not closed — typically child processes whose stdin/stdout pipes are never closed or waited for",
            g.group
        ),
        FdKind::AnonInode => format!(
            "{}: event objects (eventfd/epoll/timerfd/inotify) created per task and never closed — e.g. a new event loop, selector or timer per request",
            g.group
        ),
        FdKind::Device | FdKind::Memfd | FdKind::Other => {
            format!("{}: descriptors opened and not closed", g.group)
        }
    }
}

/// Builds the diagnosis.
pub fn diagnose(inp: &Input<'_>) -> Diagnosis {
    let rt = inp.runtime.unwrap_or(Runtime::Native);
    let mut d = Diagnosis {
        runtime: inp.runtime,
        baseline_t: inp.baseline_t,
        t: inp.now,
        threads: inp.threads,
        partial: inp.partial,
        ..Diagnosis::default()
    };
    d.fd_groups = fd_groups(inp.fds_before, inp.fds_now, inp.now);
    if let (Some(b), Some(a)) = (inp.maps_before, inp.maps_now) {
        d.memory = memory_findings(b, a);
    }
    // Read-write regions above a PROT_NONE guard look like thread stacks, but so does a heap
    // that commits parts of a reserved range (the JVM's, V8's): they are stacks only when the
    // thread count grew with them.
    if !inp.threads.is_some_and(|(b, a)| a > b) {
        for m in d.memory.iter_mut().filter(|m| m.class == "thread_stack") {
            let delta = (m.rss_after as f64 - m.rss_before as f64) / MIB;
            if rt == Runtime::Jvm {
                m.class = "java_heap".into();
                m.text = format!(
                    "+{delta:.1} MiB of Java heap (committed heap regions; the thread count is constant)"
                );
            } else {
                m.class = "anonymous".into();
                m.text = format!(
                    "+{delta:.1} MiB anonymous memory in guarded regions (not thread stacks: the thread count is constant)"
                );
            }
        }
    }
    d.new_processes = inp.procs.and_then(|(b, n)| new_processes(b, n));
    let leaking = |m: &str| inp.leaking.iter().any(|l| l == m);
    // The FD gate is the total or the descriptors that outlived the churn: either is an FD leak.
    // The target's own gauges (`gauge:…`) that grow: evidence of their kind, told as theirs.
    use crate::gauges::{Kind, kind_of};
    let gauge_kind = |k: Kind| inp.leaking.iter().any(|l| kind_of(l) == Some(k));
    let fds_leak = leaking("fds") || leaking("fds_surviving") || gauge_kind(Kind::Fds);
    let mem_leak = inp
        .leaking
        .iter()
        .any(|l| l.ends_with("_bytes") && kind_of(l).is_none())
        || gauge_kind(Kind::Memory);
    let thr_leak = leaking("threads");
    let gauge_lines: Vec<String> = inp
        .leaking
        .iter()
        .filter_map(|l| {
            let selector = l.strip_prefix(crate::gauges::PREFIX)?;
            Some(format!(
                "{selector} grows: the target's own count, read from its metrics endpoint"
            ))
        })
        .collect();
    // Findings in order of what failed the run.
    let mut fd_lines: Vec<String> = d.fd_groups.iter().take(5).map(|g| g.text.clone()).collect();
    let mut mem_lines: Vec<String> = d.memory.iter().take(4).map(|m| m.text.clone()).collect();
    let mut thr_lines = Vec::new();
    if let Some((b, a)) = inp.threads {
        if a > b {
            let stacks = d
                .memory
                .iter()
                .find(|m| m.class == "thread_stack")
                .map(|m| {
                    format!(
                        " (+{:.0} MiB of stacks)",
                        (m.rss_after - m.rss_before) as f64 / MIB
                    )
                })
                .unwrap_or_default();
            thr_lines.push(format!("+{:.0} threads{stacks}", a - b));
        }
    }
    // Processes that keep appearing explain FDs, threads and memory of a tree at once — when
    // the tree grows; a constant count with new PIDs is workers being recycled: churn.
    let appearing = d
        .new_processes
        .as_ref()
        .filter(|p| p.count >= 3 && p.now >= p.before + 3);
    // Which processes: after the lines of what leaked, before the rest.
    let mut tree_lines = Vec::new();
    if let Some((b, n)) = inp.procs {
        let minutes = inp
            .procs_t
            .map_or(1.0, |t| ((inp.now - t) / 60.0).max(1e-3));
        for m in inp.leaking {
            // The target's gauges are its own, not per process.
            if kind_of(m).is_some() {
                continue;
            }
            // Per process only the total is known: survivors are judged, totals attributed.
            let m = if m == "fds_surviving" {
                "fds"
            } else {
                m.as_str()
            };
            if let Some(c) = culprits(m, b, n, minutes) {
                tree_lines.push(c.text.clone());
                d.culprits.push(c);
            }
        }
    }
    if let Some(p) = appearing {
        tree_lines.push(p.text.clone());
    }
    d.findings.extend(gauge_lines);
    if fds_leak {
        d.findings.append(&mut fd_lines);
    }
    if thr_leak {
        d.findings.append(&mut thr_lines);
    }
    if mem_leak {
        d.findings.append(&mut mem_lines);
    }
    d.findings.append(&mut tree_lines);
    d.findings.append(&mut fd_lines);
    d.findings.append(&mut thr_lines);
    d.findings.append(&mut mem_lines);
    // Suggestions.
    if fds_leak || (!mem_leak && !thr_leak) {
        for g in d.fd_groups.iter().take(3) {
            d.suggestions.push(suggestion_for_group(g, rt));
        }
    }
    for l in inp
        .leaking
        .iter()
        .filter(|l| kind_of(l) == Some(Kind::Threads))
    {
        if l.contains("goroutines") {
            d.suggestions.push("goroutines grow: goroutines blocked for good (a channel nobody closes or reads, a context never cancelled, a ticker never stopped) — /debug/pprof/goroutine?debug=1 groups them by the stack they wait in".into());
        }
    }
    for l in inp
        .leaking
        .iter()
        .filter(|l| kind_of(l) == Some(Kind::Other))
    {
        let selector = l.trim_start_matches(crate::gauges::PREFIX);
        d.suggestions.push(format!(
            "{selector} grows: what it counts is kept and never released (entries added to a pool, cache or registry and never removed) — find where the application adds to it and what should remove"
        ));
    }
    if thr_leak {
        d.suggestions.push(match rt {
            Runtime::Jvm => "threads grow: executors created per task and never shut down — use one bounded ExecutorService; jcmd PID Thread.print shows who they are".into(),
            Runtime::Go => "threads grow: goroutines blocked in cgo or syscalls pin OS threads — look at /debug/pprof/goroutine and threadcreate".into(),
            Runtime::Cpython => "threads grow: threads started per task and never joined or ended — use one concurrent.futures pool; py-spy dump --pid PID lists them".into(),
            Runtime::Ruby => "threads grow: Thread.new per task and never joined — use a bounded pool (concurrent-ruby's FixedThreadPool, puma's own threads); Thread.list in a console names them".into(),
            Runtime::Dotnet => "threads grow: threads or blocking calls starving the thread pool (sync over async) — dotnet-stack report -p PID shows where they wait".into(),
            _ => "threads grow: threads created per task and never joined or ended — use a bounded pool; gdb -p PID -batch -ex 'thread apply all bt' shows where they wait".into(),
        });
    }
    if mem_leak {
        let anon = d
            .memory
            .iter()
            .any(|m| m.class == "anonymous" || m.class == "heap" || m.class == "java_heap");
        if anon || d.memory.is_empty() {
            let why = match rt {
                Runtime::Jvm
                | Runtime::Cpython
                | Runtime::Node
                | Runtime::Go
                | Runtime::Ruby
                | Runtime::Php
                | Runtime::Dotnet
                | Runtime::Beam => format!(
                    "{} heap grows: objects stay reachable (unbounded caches or maps, listeners never removed, per-request state kept in globals)",
                    rt.name()
                ),
                Runtime::Native => {
                    "anonymous memory grows: allocations not freed (or a cache without bound)"
                        .into()
                }
            };
            d.suggestions
                .push(format!("{why}; to confirm: {}", rt.heap_tool()));
        }
        if d.memory.iter().any(|m| m.class == "file") {
            d.suggestions.push(
                "file-backed memory grows: files mapped and never unmapped, or a mapped file (database, log) growing".into(),
            );
        }
        if d.memory.iter().any(|m| m.class == "shared") {
            d.suggestions.push(
                "shared memory grows: /dev/shm files or SysV segments created and never removed"
                    .into(),
            );
        }
    }
    if let Some(p) = appearing {
        d.suggestions.push(format!(
            "new processes keep appearing and never exit ({} since warm-up): connections or workers opened per request and never closed — check the clients' connection pool (size, idle timeout) or the server's worker limits",
            p.count
        ));
    }
    // A JVM: the heap's live set, or the memory outside the heap.
    if leaking("jvm_live_after_gc_bytes") {
        if let Some((b, a)) = inp.jvm_live {
            d.findings.insert(
                0,
                format!(
                    "Java heap live set grows: {:.1} → {:.1} MiB after GC (old generation after collections)",
                    b / MIB,
                    a / MIB
                ),
            );
        }
        d.suggestions.insert(0, "Java heap live set grows: objects stay reachable — run jcmd PID GC.class_histogram now and again later and compare the top classes; jcmd PID GC.heap_dump FILE.hprof shows what holds them (Eclipse MAT: dominator tree)".into());
    }
    if leaking("outside_heap_bytes") {
        d.suggestions.insert(0, "memory outside the Java heap grows (thread stacks, direct ByteBuffers, metaspace, code cache, JNI/malloc): restart with -XX:NativeMemoryTracking=summary, take jcmd PID VM.native_memory baseline, then jcmd PID VM.native_memory summary.diff later; metaspace growth means class loaders kept alive".into());
    }
    // A failed run always says what to do next, even when no finding points anywhere.
    if !inp.leaking.is_empty() && d.suggestions.is_empty() {
        d.suggestions.push(format!(
            "{} grows without a single cause in the inventories: compare two snapshots of the process ({}), or rerun with --on-leak to capture one at failure",
            inp.leaking.join(", "),
            match rt {
                Runtime::Jvm => "jcmd PID GC.class_histogram, or -XX:NativeMemoryTracking=summary and jcmd PID VM.native_memory",
                Runtime::Cpython => "tracemalloc snapshots, or py-spy dump --pid PID",
                Runtime::Node => "heap snapshots via --inspect, or node --heapsnapshot-signal=SIGUSR2",
                Runtime::Go => "/debug/pprof/heap twice and go tool pprof -base",
                Runtime::Ruby => "ObjectSpace.dump_all twice and heapy diff",
                Runtime::Php => "php-meminfo dumps of one worker, or a lower pm.max_requests",
                Runtime::Dotnet => "dotnet-gcdump collect -p PID twice",
                Runtime::Beam => "recon:proc_count(memory, 10) and recon:bin_leak(10)",
                Runtime::Native => "heaptrack or valgrind --tool=massif; gcore -o DIR/core PID",
            }
        ));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(pid: i32, fd: i32, kind: FdKind, target: &str, group: &str) -> FdEntry {
        FdEntry {
            pid,
            fd,
            kind,
            target: target.into(),
            group: group.into(),
        }
    }

    #[test]
    fn groups_added_descriptors_with_age_and_owner() {
        let before = vec![e(10, 3, FdKind::Pipe, "pipe:[1]", "pipes")];
        let now: Vec<(FdEntry, f64)> = (0..412)
            .map(|i| {
                (
                    e(
                        10,
                        100 + i,
                        FdKind::Tcp,
                        &format!("tcp 127.0.0.1:{} → 127.0.0.1:6379 ESTABLISHED", 40000 + i),
                        "tcp → 127.0.0.1:6379 ESTABLISHED",
                    ),
                    1000.0 + f64::from(i),
                )
            })
            .chain([(before[0].clone(), 0.0)])
            .collect();
        let g = fd_groups(&before, &now, 1000.0 + 3.0 * 3600.0 + 600.0);
        assert_eq!(g.len(), 1, "the pipe was there at the baseline");
        assert_eq!(g[0].added, 412);
        assert_eq!(
            g[0].text,
            "+412 TCP sockets to 127.0.0.1:6379 (ESTABLISHED), oldest 3h 10m, all opened by PID 10"
        );
    }

    /// Issue 22: recycled workers (php-fpm's pm.max_requests) hold what they inherited — the
    /// listening socket, the log file, a pipe — under new PIDs. Those are not added descriptors;
    /// a file opened again and again, and inherited ones of a tree that grew, still are.
    #[test]
    fn inherited_descriptors_of_recycled_workers_are_not_findings() {
        let inherited = |pid: i32| {
            [
                e(pid, 0, FdKind::Pipe, "pipe:[77]", "pipes"),
                e(
                    pid,
                    3,
                    FdKind::File,
                    "/var/log/app/x.log",
                    "files under /var/log/app/",
                ),
                e(
                    pid,
                    4,
                    FdKind::Tcp,
                    "tcp 0.0.0.0:9000 LISTEN",
                    "tcp listening on 0.0.0.0:9000",
                ),
            ]
        };
        // The master (PID 10) and five workers at the baseline; five others now.
        let before: Vec<FdEntry> = [10, 21, 22, 23, 24, 25]
            .into_iter()
            .flat_map(inherited)
            .collect();
        let now: Vec<(FdEntry, f64)> = [10, 31, 32, 33, 34, 35]
            .into_iter()
            .flat_map(inherited)
            .map(|e| (e, 500.0))
            .collect();
        assert!(
            fd_groups(&before, &now, 600.0).is_empty(),
            "{:?}",
            fd_groups(&before, &now, 600.0)
        );
        let d = diagnose(&Input {
            fds_before: &before,
            fds_now: &now,
            maps_before: None,
            maps_now: None,
            threads: None,
            runtime: None,
            leaking: &[],
            now: 600.0,
            baseline_t: Some(100.0),
            partial: false,
            procs: None,
            procs_t: None,
            jvm_live: None,
        });
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        // Two more workers than at the baseline: their six inherited descriptors were added.
        let grown: Vec<(FdEntry, f64)> = now
            .iter()
            .cloned()
            .chain([36, 37].into_iter().flat_map(inherited).map(|e| (e, 550.0)))
            .collect();
        let g = fd_groups(&before, &grown, 600.0);
        assert_eq!(g.iter().map(|g| g.added).sum::<usize>(), 6);
        // One worker opening the log file again and again: every open is added.
        let reopened: Vec<(FdEntry, f64)> = now
            .iter()
            .cloned()
            .chain((5..45).map(|fd| {
                (
                    e(
                        31,
                        fd,
                        FdKind::File,
                        "/var/log/app/x.log",
                        "files under /var/log/app/",
                    ),
                    520.0,
                )
            }))
            .collect();
        let g = fd_groups(&before, &reopened, 600.0);
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].added, g[0].pids.clone()), (40, vec![31]));
        // Each worker's own connection (a new port per worker) renews the group, not grows it;
        // and what only the diagnosis's own inventory saw (first seen at `t`) is not counted.
        let conn = |pid: i32, at: f64| {
            let target = format!("tcp 10.0.0.1:{} → 10.0.0.2:5432 ESTABLISHED", 40000 + pid);
            (
                e(
                    pid,
                    9,
                    FdKind::Tcp,
                    &target,
                    "tcp → 10.0.0.2:5432 ESTABLISHED",
                ),
                at,
            )
        };
        let base2: Vec<FdEntry> = [21, 22, 23].into_iter().map(|p| conn(p, 50.0).0).collect();
        let renewed: Vec<(FdEntry, f64)> =
            [31, 32, 33].into_iter().map(|p| conn(p, 500.0)).collect();
        assert!(fd_groups(&base2, &renewed, 600.0).is_empty());
        let last_look: Vec<(FdEntry, f64)> = [31, 32, 33, 34, 35]
            .into_iter()
            .map(|p| conn(p, 600.0))
            .collect();
        assert!(fd_groups(&[], &last_look, 600.0).is_empty());
    }

    #[test]
    fn suggestions_follow_the_signature_and_runtime() {
        let now = vec![(
            e(
                7,
                9,
                FdKind::File,
                "/var/log/app/a.log",
                "files under /var/log/app/",
            ),
            5.0,
        )];
        let leaking = vec!["fds".to_string()];
        let d = diagnose(&Input {
            fds_now: &now,
            runtime: Some(Runtime::Go),
            leaking: &leaking,
            now: 65.0,
            ..Input::default()
        });
        assert_eq!(
            d.findings[0],
            "+1 regular files under /var/log/app/, oldest 1m 0s, all opened by PID 7"
        );
        assert!(
            d.suggestions[0].contains("not closed") && d.suggestions[0].contains("defer"),
            "{:?}",
            d.suggestions
        );
        let leaking = vec!["rss_bytes".to_string()];
        let d = diagnose(&Input {
            runtime: Some(Runtime::Jvm),
            leaking: &leaking,
            ..Input::default()
        });
        assert!(d.suggestions[0].contains("jcmd"), "{:?}", d.suggestions);
    }

    #[test]
    fn memory_growth_traced_to_a_region() {
        let mut before = MapsSummary::default();
        before.classes.insert(
            "anonymous".into(),
            maps::Totals {
                rss: 10 << 20,
                ..Default::default()
            },
        );
        before.regions.push(maps::Region {
            pid: 1,
            start: 0x1000,
            size: 64 << 20,
            rss: 10 << 20,
            class: "anonymous".into(),
        });
        let mut now = before.clone();
        now.classes.insert(
            "anonymous".into(),
            maps::Totals {
                rss: 350 << 20,
                ..Default::default()
            },
        );
        now.regions[0].rss = 340 << 20;
        now.regions.push(maps::Region {
            pid: 1,
            start: 0x9000_0000,
            size: 10 << 20,
            rss: 10 << 20,
            class: "anonymous".into(),
        });
        let f = memory_findings(&before, &now);
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].text,
            "+340.0 MiB anonymous memory: 1 region grew by 330 MiB (malloc arena or runtime heap); 1 new region of ≥ 1 MiB (+10 MiB: large allocations or new arenas)"
        );
    }

    #[test]
    fn runtime_detection() {
        assert_eq!(
            Runtime::detect("/usr/lib/jvm/bin/java", &[], false),
            Runtime::Jvm
        );
        assert_eq!(
            Runtime::detect("/usr/bin/python3.11", &[], false),
            Runtime::Cpython
        );
        assert_eq!(Runtime::detect("/usr/bin/node", &[], false), Runtime::Node);
        assert_eq!(Runtime::detect("/srv/app", &[], true), Runtime::Go);
        assert_eq!(
            Runtime::detect("/srv/app", &["/usr/lib/libjvm.so".into()], false),
            Runtime::Jvm
        );
        assert_eq!(
            Runtime::detect("/usr/sbin/nginx", &[], false),
            Runtime::Native
        );
        // puma runs as the ruby executable; php-fpm, a .NET apphost and BEAM by name or maps.
        for (exe, mapped, rt) in [
            ("/usr/bin/ruby3.1", "", Runtime::Ruby),
            (
                "/srv/app/bin/embedded",
                "/usr/lib/libruby.so.3.1",
                Runtime::Ruby,
            ),
            ("/usr/sbin/php-fpm8.2", "", Runtime::Php),
            (
                "/usr/sbin/apache2",
                "/usr/lib/apache2/modules/libphp8.2.so",
                Runtime::Php,
            ),
            (
                "/srv/api/Api",
                "/usr/share/dotnet/shared/libcoreclr.so",
                Runtime::Dotnet,
            ),
            ("/usr/lib/erlang/erts-13.1/bin/beam.smp", "", Runtime::Beam),
        ] {
            let mapped: Vec<String> = [mapped]
                .into_iter()
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect();
            assert_eq!(Runtime::detect(exe, &mapped, false), rt, "{exe}");
            // Each names itself and gets advice of its own, not the native one.
            assert_ne!(rt.heap_tool(), Runtime::Native.heap_tool());
            assert!(!rt.name().contains("native"));
        }
    }

    /// A Ruby service whose heap grows is told about Ruby's tools, never heaptrack.
    #[test]
    fn a_ruby_heap_leak_gets_ruby_advice() {
        let leaking = vec!["rss_anon_bytes".to_string()];
        let d = diagnose(&Input {
            leaking: &leaking,
            runtime: Some(Runtime::Ruby),
            ..Input::default()
        });
        let all = d.suggestions.join("\n");
        assert!(all.contains("Ruby heap grows"), "{all}");
        assert!(all.contains("ObjectSpace"), "{all}");
        assert!(!all.contains("heaptrack"), "{all}");
    }

    #[test]
    fn new_processes_are_grouped_by_command_with_digits_folded() {
        let p = |pid: i32, start: u64, c: &str| ProcInfo {
            pid,
            starttime: start,
            command: c.into(),
            private_bytes: None,
            fds: None,
            threads: None,
        };
        let before = vec![
            p(1, 10, "postgres -D data"),
            p(2, 11, "postgres: checkpointer"),
        ];
        let mut now = before.clone();
        for i in 0..4 {
            now.push(p(
                100 + i,
                50 + i as u64,
                &format!("postgres: app db 127.0.0.1(5{i}012) idle"),
            ));
        }
        now.push(p(200, 90, "postgres: autovacuum worker"));
        // PID 2 reused by another process: new, not the checkpointer.
        now[1] = p(2, 99, "postgres: walwriter");
        let n = new_processes(&before, &now).expect("new processes");
        assert_eq!(n.count, 6);
        assert_eq!(n.groups[0].1, 4);
        assert_eq!(n.groups[0].2, vec![100, 101, 102, 103]);
        assert!(
            n.text.starts_with("+6 new processes since warm-up"),
            "{}",
            n.text
        );
        assert!(
            n.text
                .contains("4 × 'postgres: app db 127.0.0.1(50012) idle'"),
            "{}",
            n.text
        );
        assert_eq!(new_processes(&before, &before), None);
    }

    #[test]
    fn guarded_regions_are_stacks_only_when_threads_grow_and_advice_is_never_empty() {
        use maps::Totals;
        let mut before = MapsSummary::default();
        let mut now = MapsSummary::default();
        before.classes.insert(
            "thread_stack".into(),
            Totals {
                rss: 1 << 20,
                ..Totals::default()
            },
        );
        now.classes.insert(
            "thread_stack".into(),
            Totals {
                rss: 7 << 20,
                ..Totals::default()
            },
        );
        let leaking = vec!["rss_anon_bytes".to_string()];
        let inp = Input {
            maps_before: Some(&before),
            maps_now: Some(&now),
            threads: Some((12.0, 12.0)),
            runtime: Some(Runtime::Jvm),
            leaking: &leaking,
            ..Input::default()
        };
        let d = diagnose(&inp);
        assert!(
            d.memory.iter().all(|m| m.class != "thread_stack"),
            "{:?}",
            d.memory
        );
        assert!(
            d.findings.iter().any(|f| f.contains("Java heap")),
            "{:?}",
            d.findings
        );
        assert!(!d.suggestions.is_empty());
        let grew = Input {
            threads: Some((12.0, 18.0)),
            ..inp.clone()
        };
        assert!(
            diagnose(&grew)
                .memory
                .iter()
                .any(|m| m.class == "thread_stack")
        );
        // No inventory at all, a leak still gets a next step.
        let bare = Input {
            leaking: &leaking,
            runtime: Some(Runtime::Cpython),
            ..Input::default()
        };
        let d = diagnose(&bare);
        assert!(
            d.suggestions.iter().any(|s| s.contains("tracemalloc")),
            "{:?}",
            d.suggestions
        );
    }

    #[test]
    fn a_growing_gauge_of_the_target_is_told_as_its_own_count_not_per_process() {
        let leaking = vec!["gauge:go_goroutines".to_string()];
        let inp = Input {
            runtime: Some(Runtime::Go),
            leaking: &leaking,
            ..Input::default()
        };
        let d = diagnose(&inp);
        assert!(
            d.findings
                .iter()
                .any(|f| f.starts_with("go_goroutines grows: the target's own count")),
            "{:?}",
            d.findings
        );
        assert!(
            d.suggestions
                .iter()
                .any(|s| s.contains("/debug/pprof/goroutine")),
            "{:?}",
            d.suggestions
        );
        assert!(d.culprits.is_empty());
        let pool = vec!["gauge:app_sessions{pool=\"main\"}".to_string()];
        let d = diagnose(&Input {
            leaking: &pool,
            ..Input::default()
        });
        assert!(
            d.suggestions
                .iter()
                .any(|s| s.starts_with("app_sessions{pool=\"main\"} grows")),
            "{:?}",
            d.suggestions
        );
    }

    #[test]
    fn culprits_name_one_process_all_alike_and_ignore_recycled_workers() {
        let p = |pid: i32, start: u64, mib: u64| ProcInfo {
            pid,
            starttime: start,
            command: format!("worker {pid}"),
            private_bytes: Some(mib << 20),
            fds: Some(10),
            threads: Some(1),
        };
        let before = vec![p(1, 1, 10), p(2, 2, 10), p(3, 3, 10), p(4, 4, 10)];
        // One of four workers leaks 40 MiB in 10 minutes.
        let now = vec![p(1, 1, 10), p(2, 2, 50), p(3, 3, 11), p(4, 4, 10)];
        let c = culprits("rss_anon_bytes", &before, &now, 10.0).expect("culprits");
        assert_eq!(c.pattern, "one_process");
        assert_eq!(c.processes[0].0, 2);
        assert!(
            c.text.contains("PID 2 'worker 2' +40.0 MiB (4.0 MiB/min)"),
            "{}",
            c.text
        );
        // All grow alike.
        let now = vec![p(1, 1, 20), p(2, 2, 21), p(3, 3, 19), p(4, 4, 20)];
        let c = culprits("rss_anon_bytes", &before, &now, 10.0).expect("culprits");
        assert_eq!(c.pattern, "all_alike", "{}", c.text);
        // A recycled worker (same PID, new start time) is not growth.
        let now = vec![p(1, 1, 10), p(2, 99, 60), p(3, 3, 10), p(4, 4, 10)];
        assert_eq!(culprits("rss_anon_bytes", &before, &now, 10.0), None);
        let inp = Input {
            procs: Some((&before, &now)),
            leaking: &[],
            ..Input::default()
        };
        let d = diagnose(&inp);
        assert!(
            d.findings.iter().all(|f| !f.contains("new processes")),
            "a replaced worker is churn: {:?}",
            d.findings
        );
    }
}
