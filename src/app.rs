//! Dispatches parsed commands to the library and returns the exit status.

use crate::analyze::{self, Settings};
use crate::cli::{AnalyzeArgs, Cli, Command};
use crate::exit::{Exit, usage};
use crate::render;
use crate::units::{RateKind, parse_duration, parse_rate};
use anyhow::Result;

/// Runs one command.
pub fn main(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Analyze(a) => analyze_cmd(&a),
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
