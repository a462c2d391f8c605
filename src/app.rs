//! Dispatches parsed commands to the library and returns the exit status.

use crate::analyze::{self, Settings};
use crate::cli::{AnalyzeArgs, Cli, Command};
use crate::exit::{Exit, usage};
use crate::render;
use crate::runner;
use crate::store::Store;
use crate::units::{RateKind, parse_duration, parse_rate};
use anyhow::{Context, Result};
use std::path::Path;

/// Runs one command.
pub fn main(cli: Cli) -> Result<Exit> {
    let state = cli.state_dir.as_path();
    match cli.command {
        Command::Analyze(a) => analyze_cmd(&a),
        Command::Run(a) => {
            let settings = crate::config::resolve(&a)?;
            runner::run(state, settings, a.plain)
        }
        Command::Resume { name } => runner::resume(state, &name, false),
        Command::Status { name, json } => status_cmd(state, name.as_deref(), json),
        Command::List { json } => list_cmd(state, json),
        Command::Report { name, json, csv } => report_cmd(state, &name, json, csv.as_deref()),
        Command::Workload(w) => {
            let code = crate::workload::run(
                &w.kind,
                w.seconds,
                w.mib_per_min,
                w.fds_per_min,
                w.exit_code,
                w.leak.as_deref(),
                w.per_min,
            )?;
            std::process::exit(code);
        }
        Command::Health { pid, cgroup, json } => {
            let target = match (pid, cgroup) {
                (Some(p), _) => crate::target::Target::attach(p, true, None)?,
                (None, Some(dir)) => crate::target::Target::cgroup(dir)?,
                (None, None) => return Err(usage("give --pid PID or --cgroup DIR")),
            };
            let h = crate::health::look(target)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&h.doc)?);
            } else {
                print!("{}", h.text);
            }
            Ok(Exit::Passed)
        }
        Command::Demo { duration } => {
            parse_duration(&duration).map_err(|e| usage(format!("--duration: {e}")))?;
            crate::demo::run(state, &duration)
        }
    }
}

/// An error chain on one line (`outer: inner: root`).
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

fn rate(flag: &str, s: &str, kind: RateKind) -> Result<f64> {
    parse_rate(s, kind).map_err(|e| usage(format!("--{flag}: {e}")))
}

fn analyze_cmd(a: &AnalyzeArgs) -> Result<Exit> {
    if !(a.confidence > 0.0 && a.confidence < 1.0) {
        return Err(usage(format!(
            "--confidence: '{}' must be between 0 and 1",
            a.confidence
        )));
    }
    let mut settings = Settings {
        memory_threshold: rate("memory-threshold", &a.memory_threshold, RateKind::Memory)?,
        fd_threshold: rate("fd-threshold", &a.fd_threshold, RateKind::Count)?,
        thread_threshold: rate("thread-threshold", &a.thread_threshold, RateKind::Count)?,
        confidence: a.confidence,
        ..Settings::default()
    };
    for spec in &a.thresholds {
        let Some((name, r)) = spec.split_once('=') else {
            return Err(usage(format!("--threshold: '{spec}' must be NAME=RATE")));
        };
        let kind = if analyze::MetricKind::of(name) == analyze::MetricKind::Memory {
            RateKind::Memory
        } else {
            RateKind::Count
        };
        settings
            .column_thresholds
            .push((name.to_string(), rate("threshold", r, kind)?));
    }
    if let Some(w) = &a.warmup {
        settings.warmup_s = Some(
            parse_duration(w)
                .map_err(|e| usage(format!("--warmup: {e}")))?
                .as_secs_f64(),
        );
    }
    let table = analyze::read_csv(&a.file).map_err(|e| usage(e.to_string()))?;
    let result = analyze::analyze_table(&table, &settings);
    if a.json {
        println!("{}", render::analysis::to_json(&result));
    } else {
        print!("{}", render::analysis::to_text(&result));
    }
    Ok(Exit::of_verdict(result.verdict))
}

fn open_existing(state: &Path) -> Result<Store> {
    if !state.join("leak-sentinel.db").exists() {
        return Err(usage(format!(
            "no runs under '{}' (set --state-dir or LEAK_SENTINEL_DIR)",
            state.display()
        )));
    }
    Store::open(state)
}

fn status_cmd(state: &Path, name: Option<&str>, json: bool) -> Result<Exit> {
    let store = open_existing(state)?;
    let row = match name {
        Some(n) => store.find_run(n)?,
        None => store.latest_run()?,
    }
    .ok_or_else(|| usage(format!("no run named '{}'", name.unwrap_or("(any)"))))?;
    let path = runner::status_path(state, &row.name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let mut doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let live = runner::run_is_live(state, &row.name);
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
        "  started {}, clean {:.2} h of {:.2} h, last check {}",
        g("start_time"),
        doc["clean_hours_count"].as_f64().unwrap_or(0.0),
        doc["target_hours"].as_f64().unwrap_or(0.0),
        g("last_check")
    );
    println!(
        "  memory {}, fds {}, threads {}; checks {} ({} failed)",
        g("memory_trend"),
        g("fd_trend"),
        g("thread_trend"),
        doc["checks_total"],
        doc["checks_failed"]
    );
    if let Some(p) = doc["passed"].as_bool() {
        println!("  passed: {p}");
    }
    if let Some(r) = doc["failure_reason"].as_str() {
        println!("  reason: {r}");
    }
    if let Some(r) = doc["report_file"].as_str() {
        println!("  report: {r}");
    }
    Ok(Exit::Passed)
}

fn list_cmd(state: &Path, json: bool) -> Result<Exit> {
    let store = open_existing(state)?;
    let runs = store.list_runs()?;
    if json {
        let v: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "status": r.status,
                    "live": r.status == "running" && runner::run_is_live(state, &r.name),
                    "start_time": render::report::rfc3339(r.started_at),
                    "end_time": r.ended_at.map(render::report::rfc3339),
                    "verdict": r.verdict,
                    "exit_code": r.exit_code,
                    "report_file": r.report_file,
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
        let status = if r.status == "running" && !runner::run_is_live(state, &r.name) {
            "stale".to_string()
        } else {
            r.status.clone()
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

fn report_cmd(state: &Path, name: &str, json: bool, csv: Option<&Path>) -> Result<Exit> {
    let store = open_existing(state)?;
    let row = store
        .find_run(name)?
        .ok_or_else(|| usage(format!("no run named '{name}'")))?;
    if let Some(path) = csv {
        let samples = store.samples(row.id)?;
        let text = render::report::samples_csv(&samples, row.started_at);
        std::fs::write(path, text)
            .map_err(|e| usage(format!("cannot write '{}': {e}", path.display())))?;
        eprintln!("wrote {} samples to {}", samples.len(), path.display());
        if !json {
            return Ok(Exit::Passed);
        }
    }
    let Some(file) = &row.report_file else {
        return Err(usage(format!(
            "run '{name}' has no final report yet ({}); see 'leak-sentinel status {name}'",
            row.status
        )));
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| usage(format!("cannot read report '{file}': {e}")))?;
    let report: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {file}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render::report::summary_text(&report));
    }
    Ok(Exit::Passed)
}
