//! `health`: one look at a process (and its descendants) or a cgroup now — the seed's
//! `make mem-health`: memory, FDs by kind against RLIMIT_NOFILE, threads, largest mappings and
//! the biggest FD groups.

use crate::target::Target;
use anyhow::Result;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Share of the soft FD limit above which `health` warns.
pub const FD_WARN_FRACTION: f64 = 0.8;

/// A limit value: a number or unlimited (`None`).
fn limit(v: &procfs::process::LimitValue) -> Option<u64> {
    match v {
        procfs::process::LimitValue::Value(n) => Some(*n),
        procfs::process::LimitValue::Unlimited => None,
    }
}

/// What `health` found.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// The document, as printed by `--json`.
    pub doc: Value,
    /// Lines for people.
    pub text: String,
}

/// Takes the look.
pub fn look(mut target: Target) -> Result<Health> {
    let t = crate::clock::now_unix();
    let (sample, _) = target.sample(t, true);
    let inv = target.inventory();
    let maps = target.maps(t);
    let pids = target.pids();
    let root = target.info.pid.or_else(|| pids.first().copied());
    let (soft, hard) = root
        .and_then(|p| procfs::process::Process::new(p).ok())
        .and_then(|p| p.limits().ok())
        .map(|l| {
            (
                limit(&l.max_open_files.soft_limit),
                limit(&l.max_open_files.hard_limit),
            )
        })
        .unwrap_or((None, None));
    // The limit is per process: compare it with the busiest process of the tree.
    let mut per_pid: BTreeMap<i32, usize> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    for e in &inv.entries {
        *per_pid.entry(e.pid).or_default() += 1;
        let k = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        *by_kind.entry(k).or_default() += 1;
        *groups.entry(e.group.clone()).or_default() += 1;
    }
    let root_fds = root.and_then(|p| per_pid.get(&p).copied()).unwrap_or(0);
    let percent = soft.map(|s| 100.0 * root_fds as f64 / s.max(1) as f64);
    let warning = percent.filter(|p| *p >= FD_WARN_FRACTION * 100.0).map(|p| {
        format!(
            "PID {} uses {p:.0} % of its soft FD limit",
            root.unwrap_or(0)
        )
    });
    let mut top_groups: Vec<(String, usize)> = groups.into_iter().collect();
    top_groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top_groups.truncate(8);
    let mut largest: Vec<(String, u64)> = maps
        .by_path
        .iter()
        .map(|(p, t)| (p.clone(), t.rss))
        .chain(
            maps.regions
                .iter()
                .map(|r| (format!("[{} {:#x}]", r.class, r.start), r.rss)),
        )
        .collect();
    largest.sort_by_key(|l| std::cmp::Reverse(l.1));
    largest.truncate(8);
    let runtime = root.map(|p| crate::probe::runtime::detect_runtime(p, Some(&maps)));
    let get = |m: crate::sample::Metric| sample.get(m);
    use crate::sample::Metric as M;
    let doc = json!({
        "schema_version": 1,
        "time": crate::clock::rfc3339(t),
        "pid": root,
        "pids": pids,
        "processes": pids.len(),
        "runtime": runtime,
        "memory": {
            "rss_bytes": get(M::RssBytes), "pss_bytes": get(M::PssBytes), "uss_bytes": get(M::UssBytes),
            "swap_bytes": get(M::SwapBytes), "anon_bytes": get(M::AnonBytes), "file_bytes": get(M::FileBytes),
            "cgroup_memory_bytes": get(M::CgroupMemoryBytes),
            "classes": maps.classes,
        },
        "fds": {
            "total": inv.entries.len(),
            "of_pid": root_fds,
            "by_kind": by_kind,
            "soft_limit": soft,
            "hard_limit": hard,
            "percent_of_soft_limit": percent,
            "warning": warning,
            "top_groups": top_groups.iter().map(|(g, n)| json!({"group": g, "count": n})).collect::<Vec<_>>(),
        },
        "threads": get(M::Threads),
        "largest_mappings": largest.iter().map(|(w, r)| json!({"mapping": w, "rss_bytes": r})).collect::<Vec<_>>(),
        "partial": inv.partial || maps.partial,
    });
    let mib =
        |v: Option<f64>| v.map_or("-".into(), |b| format!("{:.1} MiB", b / crate::units::MIB));
    let mut text = String::new();
    text.push_str(&format!(
        "health of {} ({} process{}{})\n",
        root.map_or("cgroup".into(), |p| format!("PID {p}")),
        pids.len(),
        if pids.len() == 1 { "" } else { "es" },
        runtime
            .map(|r| format!(", {}", r.name()))
            .unwrap_or_default()
    ));
    text.push_str(&format!(
        "  memory   RSS {}  PSS {}  USS {}  swap {}  (anonymous {}, file-backed {})\n",
        mib(get(M::RssBytes)),
        mib(get(M::PssBytes)),
        mib(get(M::UssBytes)),
        mib(get(M::SwapBytes)),
        mib(get(M::AnonBytes)),
        mib(get(M::FileBytes))
    ));
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    text.push_str(&format!(
        "  fds      {} open ({}); limit soft {} / hard {}{}\n",
        inv.entries.len(),
        kinds.join(", "),
        soft.map_or("unlimited".into(), |v| v.to_string()),
        hard.map_or("unlimited".into(), |v| v.to_string()),
        percent
            .map(|p| format!(", {p:.1} % used by PID {}", root.unwrap_or(0)))
            .unwrap_or_default()
    ));
    if let Some(w) = &warning {
        text.push_str(&format!("  WARNING  {w}\n"));
    }
    text.push_str(&format!(
        "  threads  {}\n",
        get(M::Threads).map_or("-".into(), |v| format!("{v:.0}"))
    ));
    if !top_groups.is_empty() {
        text.push_str("  top FD groups:\n");
        for (g, n) in &top_groups {
            text.push_str(&format!("    {n:>6}  {g}\n"));
        }
    }
    if !largest.is_empty() {
        text.push_str("  largest mappings (resident):\n");
        for (w, r) in &largest {
            text.push_str(&format!(
                "    {:>8.1} MiB  {w}\n",
                *r as f64 / crate::units::MIB
            ));
        }
    }
    if inv.partial || maps.partial {
        text.push_str("  (partial: a process vanished while it was read)\n");
    }
    Ok(Health { doc, text })
}

/// Runs `health (--pid PID | --cgroup DIR)`.
pub fn health(
    pid: Option<i32>,
    cgroup: Option<std::path::PathBuf>,
    json: bool,
) -> Result<crate::exit::Exit> {
    let target = match (pid, cgroup) {
        (Some(p), _) => Target::attach(p, true, None)?,
        (None, Some(dir)) => Target::cgroup(dir)?,
        (None, None) => return Err(crate::exit::usage("give --pid PID or --cgroup DIR")),
    };
    let h = look(target)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&h.doc)?);
    } else {
        print!("{}", h.text);
    }
    Ok(crate::exit::Exit::Passed)
}
