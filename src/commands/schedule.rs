//! `schedule create|list|show|run|remove…`: schedule files, crontab lines and systemd units.

use crate::clock::now_unix;
use crate::exit::{Exit, usage};
use crate::render;
use crate::session;
use crate::store::Store;
use crate::units::parse_duration;
use anyhow::{Context, Result};
use std::path::Path;

/// Runs one `schedule` subcommand.
pub fn schedule(state: &Path, cmd: crate::cli::ScheduleCmd) -> Result<Exit> {
    use crate::cli::ScheduleCmd;
    use crate::schedule::{self as sch, Schedule};
    let exe = std::env::current_exe().context("locating this executable")?;
    match cmd {
        ScheduleCmd::Create {
            name,
            cron,
            systemd,
            force,
            run,
        } => {
            crate::settings::validate_name(&name)?;
            let c = sch::parse_cron(&cron)?;
            let mut run = *run;
            // Validate the run now, under the name its first run will get.
            let mut probe = run.clone();
            probe.name = Some(format!("{name}-{}", chrono::Local::now().format("%Y%m%d")));
            let settings = crate::config::resolve(&probe)?;
            if let crate::settings::TargetSpec::Spawn(cmd) = &settings.target {
                check_program(cmd.first().map_or("", String::as_str), &settings.env)?;
            }
            let existing = sch::schedule_path(state, &name);
            if !force && existing.exists() {
                return Err(usage(format!(
                    "schedule '{name}' exists ({}); pass --force to replace it",
                    existing.display()
                )));
            }
            run.name = None;
            run.plain = true;
            // A private state directory of the user's own (refused otherwise; see `files`).
            crate::files::Dir::open_private(state, true)?;
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
                created: render::report::rfc3339(now_unix()),
            };
            let path = sch::schedule_path(&state_abs, &name);
            crate::files::Dir::open_private(&state_abs, false)?
                .sub("schedules", true)?
                .write_atomic(
                    &format!("{name}.json"),
                    serde_json::to_string_pretty(&s)?.as_bytes(),
                    0o600,
                )?;
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
                                eprintln!(
                                    "warning: skipped {}: {}",
                                    p.display(),
                                    crate::exit::one_line(&e)
                                )
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
            crate::settings::validate_name(&name)?;
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
            crate::settings::validate_name(&name)?;
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
            session::run(&s.state_dir, settings, true)
        }
    }
}

/// Largest schedule file read, bytes (a real one is about 2 KiB).
const MAX_SCHEDULE_BYTES: u64 = 1 << 20;

fn load_schedule(path: &Path) -> Result<crate::schedule::Schedule> {
    if !path.exists() {
        return Err(usage(format!("no schedule at '{}'", path.display())));
    }
    let text = crate::files::read_bounded(path, MAX_SCHEDULE_BYTES, "schedule")?;
    let s: crate::schedule::Schedule = serde_json::from_str(&text).map_err(|e| {
        usage(format!(
            "schedule '{}' is not valid: {}",
            path.display(),
            e.to_string().replace('\n', " ")
        ))
    })?;
    // A schedule file is input like any other: its cron expression and time limit are checked
    // again when read, never trusted.
    crate::schedule::parse_cron(s.schedule.get("cron").map_or("", String::as_str)).map_err(
        |e| {
            usage(format!(
                "schedule '{}': {}",
                path.display(),
                crate::exit::one_line(&e)
            ))
        },
    )?;
    if let Some(t) = &s.run.timeout {
        parse_duration(t)
            .map_err(|e| usage(format!("schedule '{}': timeout: {e}", path.display())))?;
    }
    Ok(s)
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

/// A scheduled command must exist when the schedule is written, not fail at 3 a.m.: a path must
/// name an executable file, a bare name must be found on PATH (the schedule's own, if it sets
/// one).
fn check_program(prog: &str, env: &[(String, String)]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if prog.contains('/') {
        executable(Path::new(prog))
    } else {
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_default();
        path.split(':')
            .filter(|d| !d.is_empty())
            .any(|d| executable(&Path::new(d).join(prog)))
    };
    if found {
        Ok(())
    } else {
        Err(usage(format!(
            "the scheduled command '{prog}' is not an executable file{}",
            if prog.contains('/') { "" } else { " on PATH" }
        )))
    }
}
