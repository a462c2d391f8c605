//! The live session runs on an injected clock: with a fake clock a 60-second soak test of a real
//! process runs to its verdict without waiting a minute, and its timestamps are the fake clock's.

use clap::Parser;
use leak_sentinel::cli::{Cli, Command};
use leak_sentinel::clock::{Clock, FakeClock};
use leak_sentinel::exit::Exit;
use std::time::Instant;

#[test]
fn a_fake_clock_drives_a_whole_run_without_sleeping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cli = Cli::try_parse_from([
        "leak-sentinel",
        "run",
        "--name",
        "fake-clock",
        "--duration",
        "60s",
        "--warmup",
        "5s",
        "--check-every",
        "10s",
        "--sample-every",
        "1s",
        "--plain",
        "--",
        "sleep",
        "600",
    ])
    .expect("valid flags");
    let Command::Run(args) = cli.command else {
        panic!("a run command");
    };
    let settings = leak_sentinel::config::resolve(&args).expect("settings");
    let start_wall = 1_700_000_000.0;
    let clock = FakeClock::new(start_wall);
    let (_tx, wake) = std::sync::mpsc::channel();
    let real = Instant::now();
    let exit = leak_sentinel::session::run_with(dir.path(), settings, true, clock.clone(), wake)
        .expect("the run ends");
    assert_eq!(exit, Exit::Passed);
    // 5 s warm-up + 60 s clean on the fake clock; far less than that really passed.
    let simulated = clock.wall() - start_wall;
    assert!((65.0..=67.0).contains(&simulated), "{simulated}");
    assert!(real.elapsed().as_secs_f64() < simulated / 2.0);
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("runs/fake-clock/status.json"))
            .expect("status file"),
    )
    .expect("json");
    assert_eq!(status["status"], "completed");
    assert_eq!(status["passed"], true);
    assert!(
        status["start_time"]
            .as_str()
            .is_some_and(|t| t.starts_with("2023-11-1")),
        "timestamps come from the injected wall clock: {}",
        status["start_time"]
    );
    assert!(
        status["samples"]
            .as_u64()
            .is_some_and(|n| (60..=70).contains(&n))
    );
}
