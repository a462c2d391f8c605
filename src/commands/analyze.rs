//! `analyze FILE`: the detector over a recorded CSV, as a table, the contract JSON or an HTML page;
//! with `--as-run`, a soak run replayed over the recording through the live runner's check gate.

use super::{rate, write_user_file};
use crate::analyze::{self, Settings};
use crate::cli::AnalyzeArgs;
use crate::detect::Verdict;
use crate::exit::{Exit, usage};
use crate::gate::{self, Outcome, Schedule};
use crate::render;
use crate::settings::Profile;
use crate::units::{RateKind, parse_duration};
use anyhow::Result;

/// Runs `analyze`.
pub fn analyze(a: &AnalyzeArgs) -> Result<Exit> {
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
    let table = crate::recording::read(&a.file).map_err(|e| usage(e.to_string()))?;
    let schedule = if a.as_run {
        Some(schedule(a, &mut settings)?)
    } else {
        None
    };
    let mut result = analyze::analyze_table(&table, &settings);
    // The overall verdict comes from the gate columns only (SPEC.md): sparse detail columns
    // (PSS/USS, FD kinds) are reported but never decide it.
    let gate_cols = gate::gate_columns(analyze::gating_names(
        table
            .columns
            .iter()
            .map(|(n, v)| (n.as_str(), v.iter().filter(|x| x.is_finite()).count())),
    ));
    if !gate_cols.is_empty() {
        result.verdict = Verdict::combine(
            result
                .metrics
                .iter()
                .filter(|m| gate_cols.contains(&m.name))
                .map(|m| m.judgement.verdict),
        );
    }
    // CI outputs: a bad path is a usage error before anything is written.
    let junit = crate::config::ci_output("junit", a.junit.as_ref())?;
    let summary_md = crate::config::ci_output("summary-md", a.summary_md.as_ref())?;
    let replay = schedule.as_ref().map(|schedule| {
        let columns: Vec<(String, Vec<f64>)> = table
            .columns
            .iter()
            .filter(|(n, _)| gate_cols.contains(n))
            .cloned()
            .collect();
        gate::replay(&table.t, &columns, &settings, schedule)
    });
    // With --as-run the CI outputs report the replayed run (its last check's verdicts after the
    // run-level rule, its outcome), not the whole-file verdicts.
    let ci_result = match &replay {
        Some(r) => replay_as_analysis(&result, r),
        None => result.clone(),
    };
    {
        let (file, html) = (
            a.file.display().to_string(),
            a.html.as_ref().map(|p| p.display().to_string()),
        );
        for w in crate::session::ci::write_outputs(
            junit.as_deref(),
            summary_md.as_deref(),
            || render::junit::from_analysis(&file, &ci_result, html.as_deref()),
            || render::markdown::from_analysis(&file, &ci_result, html.as_deref()),
        ) {
            eprintln!("warning: {w}");
        }
    }
    if let Some(path) = &a.html {
        let name = a.file.display().to_string();
        let page =
            render::html::render(&super::report_data::analysis_report(&name, &table, &result))?;
        write_user_file(path, page.as_bytes())?;
    }
    if let (Some(schedule), Some(replay)) = (schedule, replay) {
        if a.json {
            let mut doc = render::analysis::to_json(&result);
            render::analysis::add_replay_json(&mut doc, &replay, &gate_cols);
            println!("{doc}");
        } else {
            print!("{}", render::analysis::replay_text(&replay, &schedule));
        }
        return Ok(match replay.outcome {
            Some(Outcome::Passed) => Exit::Passed,
            Some(Outcome::Leak(_)) => Exit::Leak,
            Some(Outcome::Inconclusive(_)) | None => Exit::Inconclusive,
        });
    }
    if a.json {
        let mut doc = render::analysis::to_json(&result);
        doc["gate_metrics"] = serde_json::json!(gate_cols);
        println!("{doc}");
    } else {
        print!("{}", render::analysis::to_text(&result));
    }
    Ok(Exit::of_verdict(result.verdict))
}

/// The analysis as the replayed run ended: the gate columns' results of its last check (verdicts
/// after the run-level rule) and the verdict of its outcome (passed → clean, failed → leak,
/// inconclusive or unfinished → inconclusive), for the CI outputs.
fn replay_as_analysis(result: &analyze::Analysis, replay: &gate::Replay) -> analyze::Analysis {
    let mut out = result.clone();
    match replay.checks.last() {
        Some(last) => {
            for m in &last.metrics {
                if let Some(slot) = out.metrics.iter_mut().find(|x| x.name == m.name) {
                    *slot = m.clone();
                }
            }
        }
        None => {
            for m in out
                .metrics
                .iter_mut()
                .filter(|m| out.gate.contains(&m.name))
            {
                m.judgement.verdict = Verdict::Inconclusive;
                m.judgement.reason =
                    "the recording ended before the run's first check (its warm-up and a check interval)"
                        .into();
            }
        }
    }
    out.verdict = match replay.outcome {
        Some(Outcome::Passed) => Verdict::Clean,
        Some(Outcome::Leak(_)) => Verdict::Leak,
        Some(Outcome::Inconclusive(_)) | None => Verdict::Inconclusive,
    };
    out
}

/// The run schedule of `--as-run`: the profile's defaults, overridden by the flags; the
/// warm-up a run would use (10 % of the duration, at most 30 minutes) unless `--warmup` is given.
fn schedule(a: &AnalyzeArgs, settings: &mut Settings) -> Result<Schedule> {
    let profile = Profile::parse(a.profile.as_deref().unwrap_or("standard"))?;
    let (d_duration, d_check, _, _) = profile.defaults();
    let secs = |flag: &str, v: &Option<String>, default: f64| -> Result<f64> {
        match v {
            Some(text) => {
                let d = parse_duration(text).map_err(|e| usage(format!("--{flag}: {e}")))?;
                Ok(d.as_secs_f64())
            }
            None => Ok(default),
        }
    };
    let duration_s = secs("duration", &a.duration, d_duration)?;
    let check_every_s = secs("check-every", &a.check_every, d_check)?;
    if check_every_s <= 0.0 {
        return Err(usage(format!(
            "--check-every: '{}' must be longer than zero",
            a.check_every.as_deref().unwrap_or("")
        )));
    }
    let warmup_s = *settings
        .warmup_s
        .get_or_insert((0.1 * duration_s).min(1800.0));
    Ok(Schedule {
        warmup_s,
        check_every_s,
        duration_s,
        max_failed: a.max_failed_checks,
        confidence: settings.confidence,
    })
}
