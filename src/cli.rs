//! The command line as the user typed it (clap derive). Values stay strings where they need
//! units; `config` resolves them into validated settings.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Soak-test a program for hours and tell, with evidence, whether its memory, file descriptors
/// or threads leak.
#[derive(Debug, Parser)]
#[command(name = "leak-sentinel", version, about, max_term_width = 100)]
pub struct Cli {
    /// Where runs, the database and reports live.
    #[arg(
        long,
        global = true,
        env = "LEAK_SENTINEL_DIR",
        default_value = ".leak-sentinel"
    )]
    pub state_dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of SPEC.md.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Judge a CSV of samples.
    Analyze(AnalyzeArgs),
}

/// `analyze FILE.csv`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// CSV with `t_seconds` or `timestamp` and metric columns.
    pub file: PathBuf,
    /// Memory threshold (e.g. 0.1, 100KiB/min, 2MiB/h).
    #[arg(long, default_value = "0.1")]
    pub memory_threshold: String,
    /// FD threshold per minute.
    #[arg(long, default_value = "0.1")]
    pub fd_threshold: String,
    /// Thread threshold per minute.
    #[arg(long, default_value = "0.1")]
    pub thread_threshold: String,
    /// Threshold for one column, `NAME=RATE` (repeatable).
    #[arg(long = "threshold", value_name = "NAME=RATE")]
    pub thresholds: Vec<String>,
    /// Warm-up not judged (default 10 % of the span).
    #[arg(long)]
    pub warmup: Option<String>,
    /// Confidence of the interval, in (0, 1).
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
