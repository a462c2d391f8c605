//! Commands: one small module per command family. Each parses what the user typed, calls the
//! layers below, renders and returns the exit status; [`main`] only dispatches.

mod analyze;
pub mod demo;
mod docs;
pub mod health;
mod history;
mod monitoring;
mod report;
pub mod report_data;
mod runs;
mod scan;
mod schedule;

use crate::cli::{Cli, Command};
use crate::exit::{Exit, usage};
use crate::store::Store;
use crate::units::{RateKind, parse_duration, parse_rate};
use anyhow::Result;
use std::path::Path;

/// Runs one command.
pub fn main(cli: Cli) -> Result<Exit> {
    let state = cli.state_dir.as_path();
    // Commands that only print end quietly when their reader goes away (`… | head`). A soak run
    // must not: it keeps SIGPIPE ignored (Rust's default) and survives a closed stdout.
    let prints_only = !matches!(
        cli.command,
        Command::Run(_)
            | Command::Resume { .. }
            | Command::Demo { .. }
            | Command::Workload(_)
            | Command::Schedule(crate::cli::ScheduleCmd::Run { .. })
    );
    if prints_only {
        // SAFETY: restoring the default disposition of one signal before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        Command::Analyze(a) => analyze::analyze(&a),
        Command::Run(a) => crate::session::run(state, crate::config::resolve(&a)?, a.plain),
        Command::Resume { name } => crate::session::resume(state, &name, false),
        Command::Status { name, json } => runs::status(state, name.as_deref(), json),
        Command::List { json } => runs::list(state, json),
        Command::Report {
            name,
            json,
            attribute: true,
            ..
        } => report::live_attribution(state, &name, json),
        Command::Report {
            name,
            json,
            csv,
            baseline,
            tolerance,
            html,
            attribute: false,
        } => report::report(
            state,
            &name,
            json,
            csv.as_deref(),
            html.as_deref(),
            baseline.as_deref(),
            tolerance,
        ),
        Command::Compare { a, b, json } => report::compare(state, &a, &b, json),
        Command::History {
            tag,
            json,
            html,
            last,
            url: None,
            ..
        } => history::history(state, &tag, json, html.as_deref(), last),
        Command::History {
            tag,
            json,
            html,
            last,
            url: Some(url),
            range,
            ca_file,
        } => {
            let range = parse_duration(&range)
                .map_err(|e| usage(format!("history: --range '{range}': {e}")))?;
            history::history_url(
                &url,
                &tag,
                range.as_secs_f64(),
                ca_file.as_deref(),
                json,
                html.as_deref(),
                last,
            )
        }
        Command::Baseline(crate::cli::BaselineCmd::Save { run, output }) => {
            report::baseline_save(state, &run, &output)
        }
        Command::Schedule(cmd) => schedule::schedule(state, cmd),
        Command::Scan(a) => scan::scan(&a),
        Command::Annotate {
            text,
            tags,
            grafana_url,
            grafana_token_file,
            ca_file,
        } => monitoring::annotate(
            &text,
            &tags,
            &grafana_url,
            grafana_token_file.as_deref(),
            ca_file.as_deref(),
        ),
        Command::Grafana(g) => monitoring::grafana(g),
        Command::Workload(w) => {
            let code = crate::workload::run(
                &w.kind,
                w.seconds,
                w.mib_per_min,
                w.fds_per_min,
                w.exit_code,
                w.leak.as_deref(),
                w.per_min,
                w.cache_mib,
            )?;
            std::process::exit(code);
        }
        Command::Health { pid, cgroup, json } => health::health(pid, cgroup, json),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { output } => docs::man(output.as_deref()),
        Command::Demo { duration } => {
            parse_duration(&duration).map_err(|e| usage(format!("--duration: {e}")))?;
            demo::run(state, &duration)
        }
    }
}

fn rate(flag: &str, s: &str, kind: RateKind) -> Result<f64> {
    parse_rate(s, kind).map_err(|e| usage(format!("--{flag}: {e}")))
}

/// Opens the store of a command that only reads it (read-only: works on a read-only state
/// directory and never writes to it). No store there is a usage error (the wrong --state-dir);
/// one that is there but cannot be read is the environment's (`Path::exists` would say "no
/// runs" for a directory that cannot be searched).
fn open_existing(state: &Path) -> Result<Store> {
    use std::io::ErrorKind;
    match std::fs::symlink_metadata(state.join(crate::store::DB_FILE)) {
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            Err(usage(format!(
                "no runs under '{}' (set --state-dir or LEAK_SENTINEL_DIR)",
                state.display()
            )))
        }
        _ => Store::open_read_only(state),
    }
}

/// Writes a file the user asked for (a report to attach somewhere): only that file, plain
/// permissions (0644 before the umask), never through a symlink; one-line error.
fn write_user_file(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_user_file(path, bytes, 0o644)
}
