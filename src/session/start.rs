//! Starting a session: `run` spawns or attaches to a new target and records a new run; `resume`
//! re-attaches to the target of a run whose sentinel was killed or interrupted and carries on
//! with its samples, checks and diagnosis state, recording the gap (or, when that sentinel died
//! while finishing, completes the end it had decided).

use super::driver::{End, Session};
use super::view::View;
use crate::clock::{Clock, SystemClock, Wake};
use crate::exit::{Exit, usage};
use crate::gate::CheckGate;
use crate::render::report as rr;
use crate::rundir::{lock_run, status_path};
use crate::settings::{RunSettings, TargetSpec};
use crate::store::{RunRow, RunStatus, Store};
use crate::target::{Target, TargetExit, TargetInfo, TargetKind, read_pid_file};
use anyhow::{Context, Result};
use serde_json::json;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::diagnosis::DiagnosisTracker;
use super::publishers::Publishers;

/// Forwards SIGINT/SIGTERM/SIGHUP to the loop as [`Wake`] messages.
fn signal_channel() -> Result<mpsc::Receiver<Wake>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let (tx, rx) = mpsc::channel();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(Wake::Signal(sig)).is_err() {
                    break;
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(rx)
}

impl<'a, C: Clock> Session<'a, C> {
    /// A session over what the store already holds (nothing for a new run).
    #[allow(clippy::too_many_arguments)]
    fn new(
        state: &'a Path,
        clock: C,
        store: Store,
        run_id: i64,
        s: RunSettings,
        target: Target,
        started_at: f64,
        history: History,
        checks: &[crate::store::CheckRow],
        view: View,
    ) -> Self {
        let last_check_words = checks.last().map(|c| {
            let detail = serde_json::from_str(&c.detail).unwrap_or_default();
            crate::gate::check_words(c.failed, &detail)
        });
        // Never before the last stored sample, whatever the wall clock says now.
        let wall = clock
            .wall()
            .max(history.last_t.map_or(f64::MIN, |t| t + 1e-3));
        let anchor = (wall, clock.mono());
        let last_awake = clock.awake();
        Session {
            state,
            anchor,
            wall_offset: clock.wall() - wall,
            last_awake,
            was_running: true,
            resumed: history.last_t.is_some(),
            clock,
            store,
            run_id,
            gate: history.gate,
            diag: DiagnosisTracker::new(run_id, started_at + s.warmup_s, s.detail_every_s),
            attrib: Default::default(),
            s,
            target,
            started_at,
            recent: history.recent,
            last_results: Vec::new(),
            last_check_words,
            publishers: Publishers::default(),
            view,
            warned: Default::default(),
            stop_signal: nix::sys::signal::Signal::SIGTERM,
            write_failures: 0,
            reserve: None,
            scraper: None,
            last_gauges: Vec::new(),
        }
    }

    /// Before the loop (run or resume, the run's lock held): what an earlier sentinel of the
    /// run left half written goes, and the reserve taken before (`reserve`) is kept; one that
    /// could not be taken (a disk already too full) costs a warning: the run goes on without.
    fn prepare_files(&mut self, reserve: Result<crate::rundir::Reserve>) {
        crate::rundir::remove_stale_temps(self.state, &self.s.name, self.started_at);
        match reserve {
            Ok(r) => self.reserve = Some(r),
            Err(e) => self.view.log(&format!(
                "warning: no room kept for recording a full disk: {}",
                crate::exit::one_line(&e)
            )),
        }
    }

    /// Starts the publishers the settings ask for.
    fn start_publishers(&mut self) -> Result<()> {
        self.publishers = Publishers::start(&self.s, self.state, &self.target.info)?;
        if let Some(url) = &self.s.target_metrics {
            let ca = crate::publish::tls::CaBundle::load_opt(self.s.ca_file.as_deref())?;
            let every = std::time::Duration::from_secs_f64(self.s.sample_every_s);
            self.scraper = Some(
                crate::probe::scrape::Scraper::start(
                    url,
                    self.s.target_gauges.clone(),
                    every,
                    ca.as_ref(),
                )
                .context("starting the thread that reads --target-metrics")?,
            );
            let names: Vec<String> = self.s.target_gauges.iter().map(|g| g.column()).collect();
            self.view.log(&format!(
                "target gauges from {}: {}",
                crate::publish::notify::redact_url(url),
                names.join(", ")
            ));
        }
        if let Some(e) = &self.publishers.exporter {
            self.view
                .log(&format!("metrics on http://{}/metrics", e.addr));
        }
        Ok(())
    }
}

/// Makes large, short-lived buffers go back to the OS when freed. A check reads the run's samples
/// back and drops them; glibc raises its mmap threshold after the first large free (up to 32 MiB),
/// so later buffers of that size come from the heap and stay resident: sampling every 50 ms, the
/// sentinel's private memory grew by ~330 bytes per sample taken although it held none of them
/// (0.9 → 10.5 MiB in 25 minutes). Pinning the threshold at glibc's own starting value
/// (128 KiB) keeps such buffers mapped and returned (2.4 MiB after 11 minutes). A long-running
/// process is where this matters, so only `run` and `resume` do it. Other C libraries have no
/// sliding threshold and nothing to set.
fn give_large_frees_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets one allocator parameter under glibc's own lock; no memory is touched.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// `run`: starts a new run on the system clock.
pub fn run(state: &Path, s: RunSettings, plain: bool) -> Result<Exit> {
    give_large_frees_back();
    run_with(state, s, plain, SystemClock::new(), signal_channel()?)
}

/// `run` on a given clock, woken early by `wake` (tests drive it with a fake clock).
pub fn run_with<C: Clock>(
    state: &Path,
    s: RunSettings,
    plain: bool,
    clock: C,
    wake: mpsc::Receiver<Wake>,
) -> Result<Exit> {
    let store = Store::open(state)?;
    let _lock = lock_run(state, &s.name)?;
    if let Some(old) = store.find_run(&s.name)? {
        if matches!(old.status, RunStatus::Running | RunStatus::Interrupted) {
            return Err(usage(format!(
                "run '{}' exists and is {} (its sentinel is gone); continue it with 'leak-sentinel resume {}' or pick another --name",
                s.name, old.status, s.name
            )));
        }
        return Err(usage(format!(
            "run '{}' already exists ({}); pick another --name",
            s.name, old.status
        )));
    }
    // The reserve is written before the target starts, so that its I/O is not part of the run.
    let reserve = crate::rundir::Reserve::take(state, &s.name);
    // Attribution of a spawned CPython, Node.js or native target needs its hook from the start:
    // it goes into the environment (other runtimes ignore it). One that cannot be written costs a note.
    let mut hook_note = None;
    let env = match (&s.target, s.attribute) {
        (TargetSpec::Spawn(cmd), true) => match crate::profiler::prepare(state, &s.name) {
            Ok(dir) => crate::profiler::spawn_env(
                &dir,
                &s.env,
                cmd.first().map(String::as_str).unwrap_or(""),
                s.pprof.is_some(),
            ),
            Err(e) => {
                hook_note = Some(format!(
                    "attribution: the hooks for spawned targets could not be written: {}",
                    crate::exit::one_line(&e)
                ));
                s.env.clone()
            }
        },
        _ => s.env.clone(),
    };
    let mut target = match &s.target {
        TargetSpec::Spawn(cmd) => Target::spawn(cmd, &env, s.target_output.as_deref())?,
        TargetSpec::Pid(pid) => Target::attach(*pid, s.include_children, None)?,
        TargetSpec::PidFile(p) => {
            let pid = read_pid_file(p)?;
            let mut t = Target::attach(pid, s.include_children, None)?;
            t.info.kind = TargetKind::PidFile;
            t.info.pid_file = Some(p.clone());
            t
        }
        TargetSpec::Cgroup(dir) => Target::cgroup(dir.clone())?,
    };
    let started_at = clock.wall();
    let run_id = match store.create_run(
        &s.name,
        &serde_json::to_string(&s)?,
        &serde_json::to_string(&target.info)?,
        started_at,
    ) {
        Ok(id) => id,
        Err(e) => {
            // Never leave a spawned target behind when the run cannot even be recorded.
            target.stop(
                Duration::from_secs_f64(s.grace_s),
                nix::sys::signal::Signal::SIGTERM,
            );
            return Err(e);
        }
    };
    let view = View::new(plain, &s);
    let history = History::empty(&s, started_at);
    let mut live = Session::new(
        state,
        clock,
        store,
        run_id,
        s,
        target,
        started_at,
        history,
        &[],
        view,
    );
    if let Err(e) = live.start_publishers() {
        // Nothing ran yet: stop a spawned target, forget the run, report the bad setting.
        live.target
            .stop(Duration::from_secs(1), nix::sys::signal::Signal::SIGTERM);
        let _ = live.store.delete_run(live.run_id);
        return Err(e);
    }
    live.prepare_files(reserve);
    live.event(
        crate::store::EventKind::Start,
        &serde_json::to_string(&live.target.info)?,
    );
    live.notify(
        "start",
        format!(
            "started: {} (profile {}, {})",
            crate::hook::shell_line(&live.target.info.command),
            live.s.profile_words(),
            live.s.cadence_words()
        ),
        json!({"pid": live.target.info.pid, "target_hours": live.s.duration_s / 3600.0}),
    );
    live.view.log(&format!(
        "{} started: {} (PID {}), profile {}, {}; status {}",
        live.s.name,
        if live.target.info.command.is_empty() {
            live.target.info.kind.to_string()
        } else {
            crate::hook::shell_line(&live.target.info.command)
        },
        live.target.info.pid.map_or("-".into(), |p| p.to_string()),
        live.s.profile_words(),
        live.s.cadence_words(),
        status_path(state, &live.s.name).display()
    ));
    for w in live.target.access_warnings() {
        live.warn_once(&w.clone(), &w);
    }
    if let Some(n) = hook_note {
        live.warn_once(&n.clone(), &n);
    }
    live.write_status(&live.status_doc(started_at, RunStatus::Running));
    live.drive(&wake)
}

/// `resume NAME`: continues a run whose sentinel was killed or interrupted.
pub fn resume(state: &Path, name: &str, plain: bool) -> Result<Exit> {
    give_large_frees_back();
    resume_with(state, name, plain, SystemClock::new(), signal_channel()?)
}

/// `resume` on a given clock, woken early by `wake`.
pub fn resume_with<C: Clock>(
    state: &Path,
    name: &str,
    plain: bool,
    clock: C,
    wake: mpsc::Receiver<Wake>,
) -> Result<Exit> {
    let store = Store::open(state)?;
    let row: RunRow = store
        .find_run(name)?
        .ok_or_else(|| usage(format!("no run named '{name}'")))?;
    let _lock = lock_run(state, name)?;
    let row = store.find_run(name)?.unwrap_or(row);
    if !matches!(row.status, RunStatus::Running | RunStatus::Interrupted) {
        // Its sentinel may have been killed while finishing: its files follow the store.
        let fixed = super::endings::repair_files(state, &store, &row)?;
        let fixed = match fixed.is_empty() {
            true => String::new(),
            false => format!(
                " (rewrote {} from the store: its sentinel died while finishing)",
                fixed
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        };
        return Err(usage(format!(
            "run '{name}' has already finished ({}); nothing to resume{fixed}",
            row.status
        )));
    }
    let s: RunSettings =
        serde_json::from_str(&row.settings).context("reading the run's settings")?;
    let info: TargetInfo = serde_json::from_str(&row.target).context("reading the run's target")?;
    let checks = store.checks(row.id)?;
    let history = History::read(state, &store, &row, &s, &checks)?;
    let now = clock
        .wall()
        .max(history.last_t.map_or(f64::MIN, |t| t + 1e-3));
    // A sentinel killed while finishing had decided the end: resume completes that end.
    let unfinished = match row.status {
        RunStatus::Running => End::unfinished(&store.events(row.id)?),
        _ => None,
    };
    let last_t = history.last_t.unwrap_or(row.started_at);
    let attached = match info.kind {
        TargetKind::Cgroup => info
            .cgroup
            .clone()
            .ok_or_else(|| anyhow::anyhow!("stored cgroup target has no directory"))
            .and_then(Target::cgroup),
        _ => match info.pid {
            Some(pid) => Target::attach(pid, info.include_children, info.starttime),
            None => Err(anyhow::anyhow!("stored target has no PID")),
        },
    };
    let view = View::new(plain, &s);
    let gap = format!(
        "no samples from {} to {} ({})",
        rr::rfc3339(last_t),
        rr::rfc3339(now),
        crate::detect::human_secs(now - last_t)
    );
    // Running again: the earlier end (an interrupt, a full disk) is forgotten in the store, and
    // its report file goes with it (the run's next end writes the same file anew).
    store.reopen_run(row.id, now, &gap)?;
    if let Ok(reports) =
        crate::files::Dir::open_private(state, false).and_then(|d| d.sub("reports", false))
    {
        let _ = reports.remove_own_file(&crate::rundir::report_name(name, row.started_at));
    }
    let (target, gone) = match attached {
        Ok(mut t) => {
            t.info = TargetInfo {
                command: info.command.clone(),
                ..t.info
            };
            t.info.kind = info.kind;
            t.info.pid_file = info.pid_file.clone();
            if info.kind == TargetKind::Spawn {
                // It was ours: stop it at the end as if we had spawned it.
                t.adopt_process_group();
            }
            t.refresh_tree();
            (t, None)
        }
        // The target did not survive the sentinel's absence: the run fails, clearly.
        Err(e) => (
            Target::detached(info),
            Some(TargetExit {
                code: None,
                signal: None,
                description: format!("the target is gone: {}", crate::exit::one_line(&e)),
            }),
        ),
    };
    let lost = history.losses.iter().map(Loss::words).collect::<Vec<_>>();
    let mut live = Session::new(
        state,
        clock,
        store,
        row.id,
        s,
        target,
        row.started_at,
        history,
        &checks,
        view,
    );
    for msg in &lost {
        if msg.contains("were lost") {
            live.view.log(&format!("warning: {msg}"));
            live.event(crate::store::EventKind::Warning, msg);
        } else {
            live.view.log(msg);
        }
    }
    // The attribution baseline an earlier sentinel took (an end completed here diffs with it).
    if let Err(e) = live.attrib.restore(&live.store, live.run_id) {
        live.view.log(&format!(
            "warning: attribution baseline not read back: {e:#}"
        ));
    }
    if let Some(end) = unfinished {
        live.view.log(&format!(
            "{name}: its sentinel died while finishing; finishing it as decided then"
        ));
        return live.finish(end);
    }
    if let Some(exit) = gone {
        live.event(crate::store::EventKind::TargetExit, &exit.description);
        return live.finish(End::TargetExited(exit));
    }
    live.prepare_files(crate::rundir::Reserve::take(state, name));
    live.diag.restore(&live.store)?;
    live.start_publishers()?;
    live.write_status(&live.status_doc(live.now(), RunStatus::Running));
    live.notify("resume", format!("resumed after a gap: {gap}"), json!({}));
    live.view.log(&format!("{name} resumed: {gap}"));
    live.drive(&wake)
}

/// What a run's store already holds, read in one pass that keeps no sample: the session's
/// in-memory series (the last few samples, the thinned series the checks judge), the check gate
/// replayed over every sample, the last sample's time, and what each remote-write queue of the
/// sentinel that stopped had not delivered. A run of a week resumes in the same memory as a run
/// of a minute.
struct History {
    recent: super::driver::Recent,
    gate: CheckGate,
    last_t: Option<f64>,
    losses: Vec<Loss>,
}

impl History {
    /// A new run's: nothing yet.
    fn empty(s: &RunSettings, started_at: f64) -> History {
        History {
            recent: super::driver::Recent::new(s.target_gauges.iter().map(|g| g.column())),
            gate: CheckGate::new(s, started_at, &[], &[]),
            last_t: None,
            losses: Vec::new(),
        }
    }

    /// A stored run's, from its samples, gauge readings and `checks`.
    fn read(
        state: &Path,
        store: &Store,
        row: &RunRow,
        s: &RunSettings,
        checks: &[crate::store::CheckRow],
    ) -> Result<History> {
        let pairs: Vec<(f64, bool)> = checks.iter().map(|c| (c.t, c.failed)).collect();
        let mut h = History::empty(s, row.started_at);
        h.gate = CheckGate::resuming(s, row.started_at, &pairs);
        h.losses = Loss::of_queues(state, s);
        let mut fails = pairs.iter().filter(|c| c.1).map(|c| c.0).peekable();
        store.for_each_sample(row.id, |x| {
            h.gate.replay(&x, &mut fails);
            for l in &mut h.losses {
                l.sample(x.t);
            }
            h.last_t = Some(x.t);
            h.recent.push(x);
        })?;
        store.for_each_gauge(row.id, |column, t, v| {
            h.recent.push_gauges(t, &[(column.to_string(), v)]);
        })?;
        Ok(h)
    }
}

/// What a sentinel that died took with it of one remote-write queue: the samples it had
/// recorded after the last one the queue's progress file says was delivered (a killed sentinel
/// cannot send them; the store keeps them).
struct Loss {
    shown: String,
    until: Option<f64>,
    lost: usize,
    first: Option<f64>,
    last: Option<f64>,
}

impl Loss {
    /// One per remote-write URL of the run, from its progress file.
    fn of_queues(state: &Path, s: &RunSettings) -> Vec<Loss> {
        use crate::publish::remote_write::{progress_path, read_progress};
        s.remote_write
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let shown = crate::publish::notify::redact_url(url);
                let until = match read_progress(&progress_path(state, &s.name, i)) {
                    Some((u, until)) if u == shown => until,
                    _ => None,
                };
                Loss {
                    shown,
                    until,
                    lost: 0,
                    first: None,
                    last: None,
                }
            })
            .collect()
    }

    /// Counts a stored sample at `t` if it came after the last delivery.
    fn sample(&mut self, t: f64) {
        if self.until.is_none_or(|u| t > u + 1e-3) {
            self.lost += 1;
            self.first.get_or_insert(t);
            self.last = Some(t);
        }
    }

    /// The message `resume` prints (a warning when samples were lost).
    fn words(&self) -> String {
        let shown = &self.shown;
        let since = match self.until {
            Some(u) => format!("after {}", rr::rfc3339(u)),
            None => "at all (it recorded no delivery)".to_string(),
        };
        match (self.first, self.last) {
            (Some(a), Some(b)) => format!(
                "remote write to {shown}: the sentinel that stopped had delivered nothing {since}; {} samples recorded from {} to {} (and the checks with them) were lost with its queue; they stay in the store (report --csv)",
                self.lost,
                rr::rfc3339(a),
                rr::rfc3339(b)
            ),
            _ => format!(
                "remote write to {shown}: nothing was lost while the sentinel was stopped (every recorded sample had been delivered)"
            ),
        }
    }
}
