//! `status` and `list`: the live status file (corrected from the store) and the runs in the
//! store.

use super::open_existing;
use crate::exit::{Exit, usage};
use crate::render;
use crate::rundir;
use anyhow::Result;
use std::path::Path;

/// Runs `status [NAME]`.
pub fn status(state: &Path, name: Option<&str>, json: bool) -> Result<Exit> {
    let store = open_existing(state)?;
    let row = match name {
        Some(n) => store.find_run(n)?,
        None => store.latest_run()?,
    }
    .ok_or_else(|| match name {
        Some(n) => usage(format!("no run named '{n}'")),
        None => usage(format!("no runs yet under '{}'", state.display())),
    })?;
    // status.json as the store has it: a sentinel killed while finishing (or one that could
    // not write) leaves the file behind the store, the single source of truth.
    let (doc, behind) = crate::session::status_from_store(state, &store, &row)?;
    let mut doc = serde_json::Value::Object(doc);
    let live = rundir::run_is_live(state, &row.name);
    if let Some(o) = doc.as_object_mut() {
        o.insert("sentinel_alive".into(), serde_json::json!(live));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Exit::Passed);
    }
    let g = |k: &str| doc[k].as_str().unwrap_or("-").to_string();
    println!(
        "{}: {}{}",
        g("run_name"),
        g("status"),
        if g("status") == "running" && !live {
            format!(
                " (sentinel gone — continue with 'leak-sentinel resume {}')",
                row.name
            )
        } else {
            String::new()
        }
    );
    println!(
        "  started {}, clean {} of {}, last check {}",
        g("start_time"),
        crate::detect::human_secs(doc["clean_hours_count"].as_f64().unwrap_or(0.0) * 3600.0),
        crate::detect::human_secs(doc["target_hours"].as_f64().unwrap_or(0.0) * 3600.0),
        g("last_check")
    );
    let human = crate::detect::human_secs;
    let elapsed = doc["elapsed_s"].as_f64().unwrap_or(0.0);
    let warmup = doc["warmup_s"].as_f64().unwrap_or(0.0);
    if g("status") == "running" && elapsed < warmup {
        println!(
            "  warming up: {} left of {}",
            human(warmup - elapsed),
            human(warmup)
        );
    }
    if let Some(w) = doc["check_words"].as_str() {
        println!("  last check: {w}");
    }
    println!(
        "  memory {}, fds {}, threads {}; checks {} ({} failed)",
        g("memory_trend"),
        g("fd_trend"),
        g("thread_trend"),
        doc["checks_total"],
        doc["checks_failed"]
    );
    // The latest values of the gate's figures, as sampled.
    let cur = &doc["current"];
    let mem = doc["memory_gate"].as_str().unwrap_or("rss_bytes");
    let mut now = Vec::new();
    if let Some(v) = cur[mem].as_f64() {
        now.push(format!("{mem} {:.1} MiB", v / crate::units::MIB));
    }
    if mem != "rss_bytes" {
        if let Some(v) = cur["rss_bytes"].as_f64() {
            now.push(format!("rss {:.1} MiB", v / crate::units::MIB));
        }
    }
    for (k, label) in [
        ("fds", "FDs"),
        ("threads", "threads"),
        ("processes", "processes"),
    ] {
        if let Some(v) = cur[k].as_f64() {
            now.push(format!("{v:.0} {label}"));
        }
    }
    if !now.is_empty() {
        println!("  now: {}", now.join(", "));
    }
    if let Some(why) = doc["memory_gate_reason"].as_str() {
        println!("  memory gate: {mem} — {why}");
    }
    if let (Some(m), Some(why)) = (doc["fd_gate"].as_str(), doc["fd_gate_reason"].as_str()) {
        println!("  fd gate: {m} — {why}");
    }
    if let Some(p) = doc["passed"].as_bool() {
        println!("  passed: {p}");
    }
    if let Some(r) = doc["failure_reason"].as_str() {
        println!("  reason: {r}");
    }
    if let Some(r) = doc["report_file"].as_str() {
        println!("  report: {r}");
    }
    if behind && !live {
        println!(
            "  (shown from the store: {} is behind it; 'leak-sentinel resume {}' rewrites it)",
            rundir::status_path(state, &row.name).display(),
            row.name
        );
    }
    Ok(Exit::Passed)
}

/// Runs `list`.
pub fn list(state: &Path, json: bool) -> Result<Exit> {
    let store = open_existing(state)?;
    let runs = store.list_runs()?;
    if json {
        let v: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "status": r.status,
                    "live": r.status == crate::store::RunStatus::Running && rundir::run_is_live(state, &r.name),
                    "start_time": render::report::rfc3339(r.started_at),
                    "end_time": r.ended_at.map(render::report::rfc3339),
                    "verdict": r.verdict,
                    "exit_code": r.exit_code,
                    "report_file": r.report_file,
                    "failure_reason": r.failure_reason,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(Exit::Passed);
    }
    println!(
        "{:<32} {:<12} {:<13} {:<26} exit",
        "name", "status", "verdict", "started"
    );
    for r in runs {
        let status = if r.status == crate::store::RunStatus::Running
            && !rundir::run_is_live(state, &r.name)
        {
            "stale".to_string()
        } else {
            r.status.to_string()
        };
        println!(
            "{:<32} {:<12} {:<13} {:<26} {}",
            r.name,
            status,
            r.verdict.as_deref().unwrap_or("-"),
            render::report::rfc3339(r.started_at),
            r.exit_code.map_or("-".into(), |c| c.to_string())
        );
    }
    Ok(Exit::Passed)
}
