//! `analyze FILE`: the detector over a recorded CSV, as a table, the contract JSON or an HTML page.

use super::{rate, write_user_file};
use crate::analyze::{self, Settings};
use crate::cli::AnalyzeArgs;
use crate::exit::{Exit, usage};
use crate::render;
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
    let table = analyze::read_csv(&a.file).map_err(|e| usage(e.to_string()))?;
    let result = analyze::analyze_table(&table, &settings);
    if let Some(path) = &a.html {
        let name = a.file.display().to_string();
        let page =
            render::html::render(&super::report_data::analysis_report(&name, &table, &result))?;
        write_user_file(path, page.as_bytes())?;
    }
    if a.json {
        println!("{}", render::analysis::to_json(&result));
    } else {
        print!("{}", render::analysis::to_text(&result));
    }
    Ok(Exit::of_verdict(result.verdict))
}
