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
use std::time::Duration;

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
        Command::Analyze(a) => analyze_cmd(&a),
        Command::Run(a) => {
            let settings = crate::config::resolve(&a)?;
            runner::run(state, settings, a.plain)
        }
        Command::Resume { name } => runner::resume(state, &name, false),
        Command::Status { name, json } => status_cmd(state, name.as_deref(), json),
        Command::List { json } => list_cmd(state, json),
        Command::Report {
            name,
            json,
            csv,
            baseline,
            tolerance,
            html,
        } => {
            if let Some(path) = &html {
                let store = open_existing(state)?;
                let row = store
                    .find_run(&name)?
                    .ok_or_else(|| usage(format!("no run named '{name}'")))?;
                let page =
                    crate::render::html::render(&crate::report_data::run_report(&store, &row)?)?;
                write_user_file(path, page.as_bytes())?;
                store.append_event(
                    row.id,
                    runner::now_unix(),
                    "html_report",
                    &path.display().to_string(),
                )?;
                eprintln!("wrote {} ({} KiB)", path.display(), page.len() / 1024);
                if row.report_file.is_none() && !json && csv.is_none() {
                    // A live run has no final report yet; the HTML is its partial report.
                    return Ok(Exit::Passed);
                }
            }
            report_cmd(
                state,
                &name,
                json,
                csv.as_deref(),
                baseline.as_deref(),
                tolerance,
            )
        }
        Command::Compare { a, b, json } => {
            let store = open_existing(state)?;
            let ra = store
                .find_run(&a)?
                .ok_or_else(|| usage(format!("no run named '{a}'")))?;
            let rb = store
                .find_run(&b)?
                .ok_or_else(|| usage(format!("no run named '{b}'")))?;
            let c = crate::compare::compare(&store, &ra, &rb)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                print!("{}", crate::compare::to_text(&c));
            }
            Ok(Exit::Passed)
        }
        Command::Schedule(cmd) => schedule_cmd(state, cmd),
        Command::Scan(a) => scan_cmd(&a),
        Command::Annotate {
            text,
            tags,
            grafana_url,
            grafana_token_file,
        } => {
            let token = crate::publish::notify::grafana_token(grafana_token_file.as_deref())?;
            let tags: Vec<String> = tags
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            let v = crate::publish::notify::annotate(
                &grafana_url,
                token.as_deref(),
                &text,
                &tags,
                runner::now_unix(),
            )?;
            println!("annotation added: {v}");
            Ok(Exit::Passed)
        }
        Command::Grafana(g) => {
            let (doc, out) = match g {
                crate::cli::GrafanaCmd::Templates { output } => {
                    (render::grafana::templates(), output)
                }
                crate::cli::GrafanaCmd::Dashboard { output } => {
                    (render::grafana::dashboard(), output)
                }
            };
            let text = serde_json::to_string_pretty(&doc)?;
            match out {
                Some(p) => {
                    write_user_file(&p, text.as_bytes())?;
                    println!("wrote {}", p.display());
                }
                None => println!("{text}"),
            }
            Ok(Exit::Passed)
        }
        Command::Baseline(crate::cli::BaselineCmd::Save { run, output }) => {
            let store = open_existing(state)?;
            let row = store
                .find_run(&run)?
                .ok_or_else(|| usage(format!("no run named '{run}'")))?;
            let settings: crate::config::RunSettings =
                serde_json::from_str(&row.settings).context("reading the run's settings")?;
            let samples = store.samples(row.id)?;
            let b = crate::baseline::summarize(&settings, &samples, row.started_at);
            crate::baseline::save(&b, &output)?;
            println!(
                "baseline of {run} ({} samples after warm-up) written to {}",
                b.samples,
                output.display()
            );
            Ok(Exit::Passed)
        }
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
    if let Some(path) = &a.html {
        let name = a.file.display().to_string();
        let page =
            render::html::render(&crate::report_data::analysis_report(&name, &table, &result))?;
        write_user_file(path, page.as_bytes())?;
    }
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
    .ok_or_else(|| match name {
        Some(n) => usage(format!("no run named '{n}'")),
        None => usage(format!("no runs yet under '{}'", state.display())),
    })?;
    let path = runner::status_path(state, &row.name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let mut doc: serde_json::Value = serde_json::from_str(&text)
        .ok()
        .filter(|v: &serde_json::Value| v["run_name"].is_string())
        .ok_or_else(|| {
            usage(format!(
                "{} is not a leak-sentinel status file",
                path.display()
            ))
        })?;
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
        "  started {}, clean {} of {}, last check {}",
        g("start_time"),
        crate::detect::human_secs(doc["clean_hours_count"].as_f64().unwrap_or(0.0) * 3600.0),
        crate::detect::human_secs(doc["target_hours"].as_f64().unwrap_or(0.0) * 3600.0),
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

fn report_cmd(
    state: &Path,
    name: &str,
    json: bool,
    csv: Option<&Path>,
    baseline: Option<&Path>,
    tolerance: f64,
) -> Result<Exit> {
    let store = open_existing(state)?;
    let row = store
        .find_run(name)?
        .ok_or_else(|| usage(format!("no run named '{name}'")))?;
    let comparison = match baseline {
        Some(path) => {
            let b = crate::baseline::load(path)?;
            let settings: crate::config::RunSettings =
                serde_json::from_str(&row.settings).context("reading the run's settings")?;
            let cur =
                crate::baseline::summarize(&settings, &store.samples(row.id)?, row.started_at);
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
    let mut report: serde_json::Value = serde_json::from_str(&text)
        .ok()
        .filter(|v: &serde_json::Value| v["run_name"].is_string() && v["metrics"].is_object())
        .ok_or_else(|| usage(format!("'{file}' is not a leak-sentinel report")))?;
    if let (Some(c), Some(o)) = (comparison, report.as_object_mut()) {
        o.insert("baseline_comparison".into(), c);
    }
    let html: Vec<String> = store
        .events(row.id)?
        .into_iter()
        .filter(|e| e.kind == "html_report")
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

fn schedule_cmd(state: &Path, cmd: crate::cli::ScheduleCmd) -> Result<Exit> {
    use crate::cli::ScheduleCmd;
    use crate::schedule::{self as sch, Schedule};
    let exe = std::env::current_exe().context("locating this executable")?;
    match cmd {
        ScheduleCmd::Create {
            name,
            cron,
            systemd,
            run,
        } => {
            crate::config::validate_name(&name)?;
            let c = sch::parse_cron(&cron)?;
            let mut run = *run;
            // Validate the run now, under the name its first run will get.
            let mut probe = run.clone();
            probe.name = Some(format!("{name}-{}", chrono::Local::now().format("%Y%m%d")));
            let settings = crate::config::resolve(&probe)?;
            run.name = None;
            run.plain = true;
            crate::store::private_dir(state)?;
            let state_abs =
                std::fs::canonicalize(state).context("resolving the state directory")?;
            let env: std::collections::BTreeMap<String, String> =
                settings.env.iter().cloned().collect();
            let s = Schedule {
                name: name.clone(),
                schedule: [
                    ("cron".to_string(), c.text.clone()),
                    ("timezone".into(), "local".into()),
                ]
                .into(),
                max_run_time: run.timeout.clone(),
                notifications: [
                    ("on_start".to_string(), serde_json::json!(true)),
                    ("on_complete".into(), serde_json::json!(true)),
                    ("on_failure".into(), serde_json::json!(true)),
                    ("webhooks".into(), serde_json::json!(run.notify)),
                    ("grafana_url".into(), serde_json::json!(run.grafana_url)),
                ]
                .into(),
                environment: env,
                run,
                working_dir: std::env::current_dir().context("reading the working directory")?,
                state_dir: state_abs.clone(),
                created: render::report::rfc3339(runner::now_unix()),
            };
            let path = sch::schedule_path(&state_abs, &name);
            crate::publish::write_atomic(&path, serde_json::to_string_pretty(&s)?.as_bytes())?;
            println!("schedule {name} written to {}", path.display());
            print_schedule(&s, &c, &exe, settings.timeout_s, systemd.as_deref())?;
            Ok(Exit::Passed)
        }
        ScheduleCmd::List { json } => {
            let dir = state.join("schedules");
            let mut all = Vec::new();
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "json") {
                        match load_schedule(&p) {
                            Ok(s) => all.push(s),
                            Err(e) => {
                                eprintln!("warning: skipped {}: {}", p.display(), one_line(&e))
                            }
                        }
                    }
                }
            }
            all.sort_by(|a, b| a.name.cmp(&b.name));
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for s in &all {
                    let next = sch::parse_cron(s.schedule.get("cron").map_or("", String::as_str))
                        .ok()
                        .and_then(|c| c.next_fires(chrono::Local::now(), 1).first().copied())
                        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
                        .unwrap_or_default();
                    println!(
                        "{:<24} {:<16} next {}",
                        s.name,
                        s.schedule.get("cron").map_or("", String::as_str),
                        next
                    );
                }
            }
            Ok(Exit::Passed)
        }
        ScheduleCmd::Show { name } => {
            let s = load_schedule(&sch::schedule_path(state, &name))?;
            let c = sch::parse_cron(s.schedule.get("cron").map_or("", String::as_str))?;
            println!("{}", serde_json::to_string_pretty(&s)?);
            let timeout = match &s.run.timeout {
                Some(t) => Some(parse_duration(t).map_err(usage)?.as_secs_f64()),
                None => None,
            };
            print_schedule(&s, &c, &exe, timeout, None)?;
            Ok(Exit::Passed)
        }
        ScheduleCmd::Run { name } => {
            let s = load_schedule(&sch::schedule_path(state, &name))?;
            std::env::set_current_dir(&s.working_dir)
                .map_err(|e| usage(format!("cannot enter {}: {e}", s.working_dir.display())))?;
            let store = Store::open(&s.state_dir)?;
            let base = format!("{name}-{}", chrono::Local::now().format("%Y%m%d"));
            let mut run_name = base.clone();
            let mut n = 2;
            while store.find_run(&run_name)?.is_some() {
                run_name = format!("{base}-{n}");
                n += 1;
            }
            drop(store);
            let mut args = s.run.clone();
            args.name = Some(run_name);
            for (k, v) in &s.environment {
                if !args
                    .env
                    .iter()
                    .any(|kv| kv.split_once('=').is_some_and(|(kk, _)| kk == k))
                {
                    args.env.push(format!("{k}={v}"));
                }
            }
            let settings = crate::config::resolve(&args)?;
            runner::run(&s.state_dir, settings, true)
        }
    }
}

fn load_schedule(path: &Path) -> Result<crate::schedule::Schedule> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("no schedule at '{}': {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| usage(format!("schedule '{}' is not valid: {e}", path.display())))
}

fn print_schedule(
    s: &crate::schedule::Schedule,
    c: &crate::schedule::CronExpr,
    exe: &Path,
    timeout_s: Option<f64>,
    systemd: Option<&Path>,
) -> Result<()> {
    use crate::schedule as sch;
    println!("next fire times:");
    for t in c.next_fires(chrono::Local::now(), 3) {
        println!(
            "  {}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
        );
    }
    println!("crontab line (crontab -e):");
    println!("{}", sch::crontab_line(c, s, exe));
    let (service, timer) = sch::systemd_units(c, s, exe, timeout_s)?;
    match systemd {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| usage(format!("cannot create '{}': {e}", dir.display())))?;
            let unit = format!("leak-sentinel-{}", s.name);
            let sp = dir.join(format!("{unit}.service"));
            let tp = dir.join(format!("{unit}.timer"));
            std::fs::write(&sp, service).with_context(|| format!("writing {}", sp.display()))?;
            std::fs::write(&tp, timer).with_context(|| format!("writing {}", tp.display()))?;
            println!("systemd units: {} and {}", sp.display(), tp.display());
            println!(
                "  enable with: systemctl enable --now {unit}.timer (after copying them to /etc/systemd/system/)"
            );
        }
        None => {
            println!(
                "systemd timer OnCalendar: {}",
                sch::on_calendar(c)?.join(" | ")
            );
        }
    }
    Ok(())
}

/// Writes a file the user asked for (a report to attach somewhere): plain permissions, clear error.
fn write_user_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes)
        .map_err(|e| usage(format!("cannot write '{}': {e}", path.display())))
}

fn parse_time_arg(s: &str) -> Result<f64> {
    if s == "now" {
        return Ok(runner::now_unix());
    }
    if let Ok(v) = s.parse::<f64>() {
        return Ok(v);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_micros() as f64 / 1e6)
        .map_err(|_| {
            usage(format!(
                "--end: '{s}' is not RFC 3339, Unix seconds or 'now'"
            ))
        })
}

fn scan_cmd(a: &crate::cli::ScanArgs) -> Result<Exit> {
    use crate::fleet;
    let kind = match a.kind.as_str() {
        "memory" => analyze::MetricKind::Memory,
        "fds" => analyze::MetricKind::Fds,
        "threads" => analyze::MetricKind::Threads,
        "generic" => analyze::MetricKind::Other,
        other => {
            return Err(usage(format!(
                "--kind: '{other}' is not memory, fds, threads or generic"
            )));
        }
    };
    if !(a.url.starts_with("http://") || a.url.starts_with("https://")) {
        return Err(usage(format!("--url: '{}' is not an http(s) URL", a.url)));
    }
    if a.max_points < 2 {
        return Err(usage("--max-points must be at least 2"));
    }
    if a.concurrency == 0 {
        return Err(usage("--concurrency must be at least 1"));
    }
    let dur = |flag: &str, s: &str| -> Result<f64> {
        Ok(parse_duration(s)
            .map_err(|e| usage(format!("--{flag}: {e}")))?
            .as_secs_f64())
    };
    let range = dur("range", &a.range)?;
    let step = dur("step", &a.step)?;
    let threshold = match &a.threshold {
        Some(t) => rate(
            "threshold",
            t,
            if kind == analyze::MetricKind::Memory {
                RateKind::Memory
            } else {
                RateKind::Count
            },
        )?,
        None => 0.1,
    };
    let watch = match &a.watch {
        Some(w) => Some(dur("watch", w)?),
        None => None,
    };
    let mut previous: std::collections::BTreeMap<String, crate::detect::Verdict> =
        Default::default();
    let mut round = 0u64;
    loop {
        let end = match &a.end {
            Some(e) => parse_time_arg(e)?,
            None => runner::now_unix(),
        };
        let spec = fleet::Scan {
            url: a.url.clone(),
            query: a.query.clone(),
            start: end - range,
            end,
            step,
            threshold,
            kind,
            max_points: a.max_points.max(2),
            concurrency: a.concurrency,
            warmup_s: dur("warmup", &a.warmup)?,
        };
        let result = fleet::scan(&spec)?;
        let overall =
            crate::detect::Verdict::combine(result.iter().map(|s| s.result.judgement.verdict));
        if let Some(path) = &a.html {
            let page =
                render::html::render(&crate::report_data::scan_report(&a.query, &result, overall))?;
            write_user_file(path, page.as_bytes())?;
        }
        let Some(every) = watch else {
            if a.json {
                println!("{}", fleet::to_json(&result));
            } else {
                print!("{}", fleet::to_text(&result));
            }
            return Ok(Exit::of_verdict(overall));
        };
        // --watch: only what changed since the last round (everything on the first).
        let now: std::collections::BTreeMap<String, crate::detect::Verdict> = result
            .iter()
            .map(|s| (fleet::label_text(&s.labels), s.result.judgement.verdict))
            .collect();
        for (series, v) in &now {
            let before = previous.get(series);
            if before != Some(v) {
                let line = serde_json::json!({
                    "time": render::report::rfc3339(runner::now_unix()), "series": series,
                    "from": before.map(|b| b.as_str()), "to": v.as_str(),
                });
                if a.json {
                    println!("{line}");
                } else {
                    println!(
                        "{} {series}: {} → {}",
                        render::report::rfc3339(runner::now_unix()),
                        before.map_or("new", |b| b.as_str()),
                        v.as_str()
                    );
                }
            }
        }
        for gone in previous.keys().filter(|k| !now.contains_key(*k)) {
            println!(
                "{} {gone}: gone",
                render::report::rfc3339(runner::now_unix())
            );
        }
        previous = now;
        round += 1;
        if a.watch_count.is_some_and(|n| round >= n) {
            return Ok(Exit::of_verdict(overall));
        }
        std::thread::sleep(Duration::from_secs_f64(every));
    }
}
