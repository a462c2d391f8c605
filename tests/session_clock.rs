//! The live session runs on an injected clock and counts only observed time. With a fake clock,
//! soak tests of real processes run to their verdict without waiting: a whole run, a kill and a
//! resume after a long outage, wall-clock steps, a suspend, and a target stopped with SIGSTOP.

mod common;

use clap::Parser;
use leak_sentinel::cli::{Cli, Command};
use leak_sentinel::clock::{Clock, FakeClock, FakeEvent, Wake};
use leak_sentinel::exit::Exit;
use leak_sentinel::settings::RunSettings;
use leak_sentinel::store::Store;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const START: f64 = 1_700_000_000.0;

/// The sessions run inside this test process: a spawned target's tree adopts the process's other
/// children (orphans reparented to a subreaper), so runs here never overlap.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Settings of a 60 s soak test (warm-up 5 s, a check every 10 s, a sample every 1 s).
fn settings(name: &str, target: &[&str]) -> RunSettings {
    let mut argv = vec![
        "leak-sentinel",
        "run",
        "--name",
        name,
        "--duration",
        "60s",
        "--warmup",
        "5s",
        "--check-every",
        "10s",
        "--sample-every",
        "1s",
        // These tests are about time: FDs and threads, flat whole counts over a minute, cannot
        // be proven to grow by less than about one per minute, so they do not decide here.
        "--fd-threshold",
        "10000",
        "--thread-threshold",
        "10000",
        "--plain",
    ];
    argv.extend_from_slice(target);
    let cli = Cli::try_parse_from(argv).expect("valid flags");
    let Command::Run(args) = cli.command else {
        panic!("a run command");
    };
    leak_sentinel::config::resolve(&args).expect("settings")
}

fn run(state: &Path, s: RunSettings, clock: &FakeClock) -> Exit {
    let (_tx, wake) = std::sync::mpsc::channel();
    leak_sentinel::session::run_with(state, s, true, clock.clone(), wake).expect("the run ends")
}

/// (kind, detail) of every event of run `name`.
fn events(state: &Path, name: &str) -> Vec<(String, String)> {
    let store = Store::open(state).expect("store");
    let row = store.find_run(name).expect("query").expect("the run");
    store
        .events(row.id)
        .expect("events")
        .into_iter()
        .map(|e| (e.kind.to_string(), e.detail))
        .collect()
}

fn status(state: &Path, name: &str) -> serde_json::Value {
    let p = state.join("runs").join(name).join("status.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("status file")).expect("json")
}

/// A process the runs attach to (left running by them), killed when the test ends.
fn sleeper() -> common::Kill {
    common::Kill(
        std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("sleep"),
    )
}

#[test]
fn a_fake_clock_drives_a_whole_run_without_sleeping() {
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = FakeClock::new(START);
    let real = Instant::now();
    let exit = run(
        dir.path(),
        settings("fake-clock", &["--", "sleep", "600"]),
        &clock,
    );
    assert_eq!(exit, Exit::Passed);
    // 5 s warm-up + 60 s clean on the fake clock; far less than that really passed.
    let simulated = clock.wall() - START;
    assert!((65.0..=67.0).contains(&simulated), "{simulated}");
    assert!(real.elapsed().as_secs_f64() < simulated / 2.0);
    let st = status(dir.path(), "fake-clock");
    assert_eq!(st["status"], "completed");
    assert_eq!(st["passed"], true);
    assert!(
        st["start_time"]
            .as_str()
            .is_some_and(|t| t.starts_with("2023-11-1")),
        "timestamps come from the injected wall clock: {}",
        st["start_time"]
    );
    assert!(
        st["samples"]
            .as_u64()
            .is_some_and(|n| (60..=70).contains(&n))
    );
    assert_eq!(st["memory_gate"], "rss_anon_bytes");
}

#[test]
fn an_outage_longer_than_the_remaining_duration_does_not_count_as_clean() {
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let target = sleeper();
    let pid = target.0.id().to_string();
    let clock = FakeClock::new(START);
    // Killed 25 s in (20 s observed after warm-up), then away for 120 s.
    clock.at(Duration::from_secs(25), FakeEvent::Wake(Wake::Signal(15)));
    let exit = run(dir.path(), settings("outage", &["--pid", &pid]), &clock);
    assert_eq!(exit, Exit::Interrupted);
    clock.advance(Duration::from_secs(120));
    let resumed_at = clock.mono();
    let (_tx, wake) = std::sync::mpsc::channel();
    let exit = leak_sentinel::session::resume_with(dir.path(), "outage", true, clock.clone(), wake)
        .expect("resume ends");
    assert_eq!(exit, Exit::Passed);
    // 40 more observed seconds were needed after the resume, not one check.
    let after = (clock.mono() - resumed_at).as_secs_f64();
    assert!(
        (38.0..=56.0).contains(&after),
        "passed {after} s after the resume"
    );
    let st = status(dir.path(), "outage");
    let clean_h = st["final_clean_hours"].as_f64().expect("clean hours");
    assert!((55.0..75.0).contains(&(clean_h * 3600.0)), "{clean_h}");
    let ev = events(dir.path(), "outage");
    assert!(
        ev.iter()
            .any(|(k, d)| k == "gap" && d.contains("sentinel not running (resumed)")),
        "{ev:?}"
    );
}

#[test]
fn wall_clock_steps_change_nothing() {
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = FakeClock::new(START);
    clock.at(Duration::from_secs(20), FakeEvent::StepWall(-3600.0));
    clock.at(Duration::from_secs(40), FakeEvent::StepWall(7200.0));
    let exit = run(
        dir.path(),
        settings("steps", &["--", "sleep", "600"]),
        &clock,
    );
    assert_eq!(exit, Exit::Passed);
    assert!(clock.mono().as_secs_f64() <= 67.0, "{:?}", clock.mono());
    let store = Store::open(dir.path()).expect("store");
    let row = store.find_run("steps").expect("query").expect("run");
    let t: Vec<f64> = store
        .samples(row.id)
        .expect("samples")
        .iter()
        .map(|s| s.t)
        .collect();
    assert!(
        t.windows(2).all(|w| w[1] > w[0]),
        "sample times only go forward"
    );
    assert!(t.last().is_some_and(|l| l - START < 70.0), "{t:?}");
    let steps = events(dir.path(), "steps")
        .into_iter()
        .filter(|(k, _)| k == "clock_step")
        .count();
    assert_eq!(steps, 2);
}

#[test]
fn a_suspend_is_a_gap_not_clean_time() {
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = FakeClock::new(START);
    clock.at(
        Duration::from_secs(30),
        FakeEvent::Suspend(Duration::from_secs(120)),
    );
    let exit = run(
        dir.path(),
        settings("suspend", &["--", "sleep", "600"]),
        &clock,
    );
    assert_eq!(exit, Exit::Passed);
    let total = clock.mono().as_secs_f64();
    assert!((183.0..=197.0).contains(&total), "{total}");
    let ev = events(dir.path(), "suspend");
    assert!(
        ev.iter()
            .any(|(k, d)| k == "gap" && d.starts_with("machine suspended for 2m")),
        "{ev:?}"
    );
}

#[test]
fn a_stopped_target_is_a_recorded_gap() {
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let target = sleeper();
    let pid = target.0.id() as i32;
    let clock = FakeClock::new(START);
    let signal = |sig: nix::sys::signal::Signal| {
        Arc::new(move || {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
            // Let the kernel settle the state before the next sample reads it.
            std::thread::sleep(Duration::from_millis(50));
        }) as Arc<dyn Fn() + Send + Sync>
    };
    clock.at(
        Duration::from_secs(20),
        FakeEvent::Call(signal(nix::sys::signal::Signal::SIGSTOP)),
    );
    clock.at(
        Duration::from_secs(50),
        FakeEvent::Call(signal(nix::sys::signal::Signal::SIGCONT)),
    );
    let exit = run(
        dir.path(),
        settings("stopped", &["--pid", &pid.to_string()]),
        &clock,
    );
    assert_eq!(exit, Exit::Passed);
    let total = clock.mono().as_secs_f64();
    assert!(
        (93.0..=107.0).contains(&total),
        "30 s stopped is not clean: {total}"
    );
    let ev = events(dir.path(), "stopped");
    assert!(ev.iter().any(|(k, _)| k == "target_stopped"), "{ev:?}");
    assert!(
        ev.iter()
            .any(|(k, d)| k == "gap" && d.starts_with("target stopped for 3")),
        "{ev:?}"
    );
}
