//! `report`, `compare` and `baseline save`: a stored run's final report (terminal, JSON, CSV,
//! HTML), two runs side by side, and a run's steady state saved as a baseline.

use super::{open_existing, write_user_file};
use crate::clock::now_unix;
use crate::compare::RunData;
use crate::exit::{Exit, usage};
use crate::render;
use crate::store::{RunRow, Store};
use anyhow::{Context, Result};
use std::path::Path;

/// Runs `report NAME` (terminal, `--json`, `--csv`, `--html`).
pub fn report(
    state: &Path,
    name: &str,
    json: bool,
    csv: Option<&Path>,
    html: Option<&Path>,
    baseline: Option<&Path>,
    tolerance: f64,
) -> Result<Exit> {
    if let Some(path) = html {
        if html_report(state, name, path)? && !json && csv.is_none() {
            // A live run has no final report yet; the HTML is its partial report.
            return Ok(Exit::Passed);
        }
    }
    let store = open_existing(state)?;
    let row = store
        .find_run(name)?
        .ok_or_else(|| usage(format!("no run named '{name}'")))?;
    let comparison = match baseline {
        Some(path) => {
            let b = crate::files::load_baseline(path)?;
            let settings: crate::settings::RunSettings =
                serde_json::from_str(&row.settings).context("reading the run's settings")?;
            let cur = crate::baseline::summarize(
                &settings,
                &store.samples(row.id)?,
                row.started_at,
                crate::clock::rfc3339(now_unix()),
            );
            Some(serde_json::json!({
                "baseline_file": path,
                "baseline_run": b.run_name,
                "tolerance_pct": tolerance,
                "changes": crate::baseline::compare(&b, &cur, tolerance),
            }))
        }
        None => None,
    };
    if let Some(path) = csv {
        let samples = store.samples(row.id)?;
        let gauges = store.gauges(row.id)?;
        let text = render::report::samples_csv(&samples, &gauges, row.started_at);
        write_user_file(path, text.as_bytes())?;
        eprintln!("wrote {} samples to {}", samples.len(), path.display());
        if !json {
            return Ok(Exit::Passed);
        }
    }
    // The final report as the store holds it (the report file is a copy written after it); a
    // run ended by an older version has only the file.
    let stored = match row.status {
        crate::store::RunStatus::Running => None,
        _ => store.final_report(row.id)?,
    };
    let file = row
        .report_file
        .as_deref()
        .filter(|_| row.status != crate::store::RunStatus::Running);
    let text = match (stored, file) {
        (Some(text), _) => Some(text),
        (None, Some(file)) if Path::new(file).exists() => Some(crate::files::read_own_bounded(
            Path::new(file),
            256 << 20,
            "report",
        )?),
        _ => None,
    };
    let Some(text) = text else {
        // A live run, or one stopped without a final report (interrupted by a full disk, its
        // report file lost): the report as it stands, from the store.
        let mut report = partial_report(&store, &row)?;
        if let (Some(c), Some(o)) = (comparison, report.as_object_mut()) {
            o.insert("baseline_comparison".into(), c);
        }
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", render::report::summary_text(&report));
            match file {
                Some(f) => println!("  (partial: the report file {f} is missing)"),
                None if row.status == crate::store::RunStatus::Running => {
                    println!("  (partial: the run is running; the final report comes at its end)")
                }
                None => println!(
                    "  (partial: the run is {}; the final report comes at its end, after 'leak-sentinel resume {}')",
                    row.status, row.name
                ),
            }
        }
        return Ok(Exit::Passed);
    };
    let mut report: serde_json::Value = serde_json::from_str(&text)
        .ok()
        .filter(|v: &serde_json::Value| v["run_name"].is_string() && v["metrics"].is_object())
        // Written by the sentinel itself: one that does not parse is a damaged store, not input.
        .ok_or_else(|| {
            anyhow::anyhow!(
                "'{}' is not a leak-sentinel report",
                file.unwrap_or("the stored report")
            )
        })?;
    if let (Some(c), Some(o)) = (comparison, report.as_object_mut()) {
        o.insert("baseline_comparison".into(), c);
    }
    let html: Vec<String> = store
        .events(row.id)?
        .into_iter()
        .filter(|e| e.kind == crate::store::EventKind::HtmlReport)
        .map(|e| e.detail)
        .collect();
    if let Some(o) = report.as_object_mut() {
        if !html.is_empty() {
            o.insert("html_files".into(), serde_json::json!(html));
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render::report::summary_text(&report));
        for h in &html {
            println!("  html: {h}");
        }
    }
    Ok(Exit::Passed)
}

/// `report NAME --attribute`: on a live run with `--attribute`, a snapshot now diffed with the
/// run's baseline, printed (terminal or `{"attribution": …}` JSON). The run is only read; the
/// snapshot is the same as the run's own (a JVM's class histogram, a tracemalloc snapshot).
pub fn live_attribution(state: &Path, name: &str, json: bool) -> Result<Exit> {
    use crate::attribution::{Attribution, Snapshot};
    let store = open_existing(state)?;
    let row = store
        .find_run(name)?
        .ok_or_else(|| usage(format!("no run named '{name}'")))?;
    if row.status != crate::store::RunStatus::Running || !crate::rundir::run_is_live(state, name) {
        return Err(usage(format!(
            "run '{name}' is not live ({}): its attribution, if it had one, is in 'leak-sentinel report {name}'",
            row.status
        )));
    }
    let settings: crate::settings::RunSettings =
        serde_json::from_str(&row.settings).context("reading the run's settings")?;
    if !settings.attribute {
        return Err(usage(format!(
            "run '{name}' was started without --attribute: it has no baseline to compare with"
        )));
    }
    let threshold = settings.memory_threshold * crate::units::MIB;
    let target: crate::target::TargetInfo =
        serde_json::from_str(&row.target).context("reading the run's target")?;
    let base: Option<Snapshot> = store
        .latest_snapshot(row.id, "attribution")?
        .and_then(|(_, j)| serde_json::from_str(&j).ok());
    let a = match base {
        None => Attribution::failed(
            "none",
            "no baseline yet: it is taken right after warm-up (or could not be taken: see the run's warnings)".into(),
            threshold,
        ),
        Some(base) => match crate::profiler::runtime_of(&base.mechanism) {
            None => Attribution::failed(&base.mechanism, "unknown mechanism".into(), threshold),
            Some(runtime) => {
                let dir = crate::rundir::run_dir(state, name).join(crate::profiler::python::DIR);
                let place = crate::profiler::Place {
                    pid: base.pid,
                    runtime,
                    dir: std::path::absolute(&dir).unwrap_or(dir),
                    spawned: target.kind == crate::target::TargetKind::Spawn,
                    pprof: settings.pprof.clone(),
                    ca_file: settings.ca_file.clone(),
                };
                let now = now_unix();
                let tag = format!("report-{}", now.floor() as i64);
                let limit = std::time::Duration::from_secs_f64(settings.attribute_timeout_s);
                match crate::profiler::snapshot(&place, &tag, now, limit) {
                    Ok(snap) => Attribution::from_snapshots(&base, &snap, threshold),
                    Err(e) => Attribution::failed(
                        &base.mechanism,
                        crate::exit::one_line(&e),
                        threshold,
                    ),
                }
            }
        },
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"run_name": name, "attribution": a}))?
        );
    } else {
        for (i, l) in a.lines().iter().enumerate() {
            println!("{}{l}", if i == 0 { "" } else { "  " });
        }
    }
    Ok(Exit::Passed)
}

/// Writes the HTML report of run `name` to `path`; true when the run has no final report yet.
fn html_report(state: &Path, name: &str, path: &Path) -> Result<bool> {
    let store = open_existing(state)?;
    let row = store
        .find_run(name)?
        .ok_or_else(|| usage(format!("no run named '{name}'")))?;
    let page = crate::render::html::render(&super::report_data::run_report(&store, &row)?)?;
    write_user_file(path, page.as_bytes())?;
    // Where the HTML went is recorded when the store can be written; on a read-only state
    // directory the page is still written, just not remembered.
    drop(store);
    if let Ok(rw) = Store::open(state) {
        let _ = rw.append_event(
            row.id,
            now_unix(),
            crate::store::EventKind::HtmlReport,
            &path.display().to_string(),
        );
    }
    eprintln!("wrote {} ({} KiB)", path.display(), page.len() / 1024);
    Ok(row.report_file.is_none())
}

/// A run's stored data for `compare`.
fn run_data(store: &Store, row: &RunRow) -> Result<RunData> {
    Ok(RunData {
        name: row.name.clone(),
        settings: serde_json::from_str(&row.settings).context("reading settings")?,
        started_at: row.started_at,
        samples: store.samples(row.id)?,
    })
}

/// Runs `compare RUN_A RUN_B`.
pub fn compare(state: &Path, a: &str, b: &str, json: bool) -> Result<Exit> {
    let store = open_existing(state)?;
    let ra = store
        .find_run(a)?
        .ok_or_else(|| usage(format!("no run named '{a}'")))?;
    let rb = store
        .find_run(b)?
        .ok_or_else(|| usage(format!("no run named '{b}'")))?;
    let c = crate::compare::compare(&run_data(&store, &ra)?, &run_data(&store, &rb)?)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        print!("{}", render::compare::to_text(&c));
    }
    Ok(Exit::Passed)
}

/// Runs `baseline save RUN -o FILE`.
pub fn baseline_save(state: &Path, run: &str, output: &Path) -> Result<Exit> {
    let store = open_existing(state)?;
    let row = store
        .find_run(run)?
        .ok_or_else(|| usage(format!("no run named '{run}'")))?;
    let settings: crate::settings::RunSettings =
        serde_json::from_str(&row.settings).context("reading the run's settings")?;
    let samples = store.samples(row.id)?;
    let b = crate::baseline::summarize(
        &settings,
        &samples,
        row.started_at,
        crate::clock::rfc3339(now_unix()),
    );
    crate::files::save_baseline(&b, output)?;
    println!(
        "baseline of {run} ({} samples after warm-up) written to {}",
        b.samples,
        output.display()
    );
    Ok(Exit::Passed)
}

/// The report of a run that has not finished: every metric judged on the samples so far, the
/// checks and events, marked `"partial": true`.
fn partial_report(store: &Store, row: &RunRow) -> Result<serde_json::Value> {
    use crate::detect::Verdict;
    use crate::sample::Metric;
    let s: crate::settings::RunSettings =
        serde_json::from_str(&row.settings).context("reading the run's settings")?;
    // Judged as the run's checks judge: on the series thinned to bounded memory.
    let all = store.samples(row.id)?;
    let samples = crate::thinned::samples(&all);
    let readings = crate::sample::Readings::of(&samples);
    let gate = crate::gate::gate_metrics(&s, &readings);
    let gauges = crate::thinned::gauges(&store.gauges(row.id)?);
    let mut results = crate::gate::judge_gate(&samples, &gauges, row.started_at, &s);
    // The run-level rule as a check would apply it now: a leak it holds back is not reported
    // as a leak here either, and the clean streak is the gate's own.
    let checks = store.checks(row.id)?;
    let pairs: Vec<(f64, bool)> = checks.iter().map(|c| (c.t, c.failed)).collect();
    let mut check_gate = crate::gate::CheckGate::new(&s, row.started_at, &all, &pairs);
    let streak = check_gate.streak();
    let last_t = samples.last().map_or(row.started_at, |x| x.t);
    if last_t > check_gate.warmup_end {
        check_gate.record(last_t, &results).apply(&mut results);
    }
    let (check_state, check_words) = match checks.last() {
        Some(c) => {
            let detail = serde_json::from_str(&c.detail).unwrap_or_default();
            let (state, words) = crate::gate::check_words(c.failed, &detail);
            (serde_json::json!(state), serde_json::json!(words))
        }
        None => (serde_json::Value::Null, serde_json::Value::Null),
    };
    let others: Vec<Metric> = Metric::ALL
        .into_iter()
        .filter(|m| !gate.contains(m) && m.judged())
        .collect();
    results.extend(crate::gate::judge_run(
        &samples,
        row.started_at,
        &s,
        &others,
    ));
    let verdict = Verdict::combine(
        results
            .iter()
            .filter(|r| crate::gate::in_gate(&gate, &r.name))
            .map(|r| r.judgement.verdict),
    );
    let mut metrics = render::report::metrics_json(&results);
    for (name, v) in metrics.iter_mut() {
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "gate".into(),
                serde_json::json!(crate::gate::in_gate(&gate, name)),
            );
        }
    }
    let target: serde_json::Value = serde_json::from_str(&row.target).unwrap_or_default();
    let (memory, why) = crate::gate::memory_gate(s.memory_metric, &readings);
    let (fds, fds_why) = crate::gate::fd_gate(s.memory_metric, &readings);
    Ok(serde_json::json!({
        "schema_version": render::report::SCHEMA_VERSION,
        "partial": true,
        "run_name": row.name,
        "status": row.status,
        "verdict": verdict.as_str(),
        "failure_reason": row.failure_reason,
        "start_time": render::report::rfc3339(row.started_at),
        "elapsed_s": last_t - row.started_at,
        "target_hours": s.duration_s / 3600.0,
        "final_clean_hours": serde_json::Value::Null,
        "clean_hours_count": streak / 3600.0,
        "check_state": check_state,
        "check_words": check_words,
        "profile": s.profile.name(),
        "memory_gate": {"metric": memory.name(), "reason": why},
        "fd_gate": {"metric": fds.name(), "reason": fds_why},
        "settings": s,
        "target": target,
        "samples": samples.len(),
        "metrics": metrics,
        "checks": {
            "total": checks.len(),
            "failed": checks.iter().filter(|c| c.failed).count(),
            "list": render::report::checks_json(&checks),
        },
        "events": render::report::events_json(&store.events(row.id)?),
    }))
}
