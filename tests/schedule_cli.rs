//! Schedules, baselines and the Makefile fragment, end to end: cron validation, the crontab line
//! reproducing an awkward argv through `sh -c`, systemd units that `systemd-analyze verify`
//! accepts, a baseline flagging a memory regression, and the seed's make targets.

mod common;

use assert_cmd::cargo::cargo_bin;
use common::{WIDE_THRESHOLDS, assert_ran_to_its_end, fast_run, ls};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

#[test]
fn bad_cron_expressions_get_one_line_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    for cron in ["0 3 * *", "61 * * * *", "every night", "0 3 * * * *"] {
        let out = ls(dir.path())
            .args(["schedule", "create", "n", "--cron", cron, "--", "true"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{cron}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{cron}: {err}");
        assert!(err.contains("--cron"), "{err}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn crontab_line_and_systemd_units_carry_an_awkward_command_unchanged() {
    let top = tempfile::tempdir().expect("tempdir");
    // A working directory with a space, a quote, a dollar and a percent sign.
    let wd = top.path().join("soak it's $HOME 100%");
    std::fs::create_dir_all(&wd).expect("mkdir");
    let state = wd.join("state");
    let args = ["a b", "it's", "$HOME", "100%", "\"quoted\"", "back\\slash"];
    let script =
        "import sys, json, time; json.dump(sys.argv[1:], open('argv.json', 'w')); time.sleep(600)";
    let units = wd.join("units");
    let out = ls(&state)
        .current_dir(&wd)
        .args([
            "schedule",
            "create",
            "W3-Nightly",
            "--cron",
            "0 3 * * *",
            "--timeout",
            "7h",
        ])
        .args([
            "--env",
            "GOGC=50",
            "--duration",
            "3s",
            "--warmup",
            "1s",
            "--check-every",
            "1s",
        ])
        .args(["--sample-every", "200ms", "--systemd"])
        .arg(&units)
        .args(["--", "python3", "-c", script])
        .args(args)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Three next fire times at 03:00.
    let fires: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  20") && l.contains("T03:00:00"))
        .collect();
    assert_eq!(fires.len(), 3, "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("0 3 * * * "))
        .expect("a crontab line");
    assert!(
        !line.replace("\\%", "").contains('%'),
        "every % escaped for cron: {line}"
    );
    // What cron does: the command is the rest of the line, with \% turned back into %.
    let cmd = line
        .splitn(6, ' ')
        .nth(5)
        .expect("command")
        .replace("\\%", "%");
    // The scheduled run itself: three seconds of a sleeping Python prove no verdict; it must
    // run to its end (checked below, with its name).
    let status = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .status()
        .expect("sh runs");
    let argv: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(wd.join("argv.json")).expect("target ran"))
            .expect("json");
    assert_eq!(argv, args);
    let out = ls(&state).args(["list", "--json"]).output().expect("runs");
    let runs: Value = serde_json::from_slice(&out.stdout).expect("json");
    let name = runs[0]["name"].as_str().expect("name");
    assert!(name.starts_with("W3-Nightly-20"), "dated run name: {name}");
    assert_ran_to_its_end(&state, name, status.code(), &cmd);
    assert_eq!(runs[0]["exit_code"].as_i64(), status.code().map(i64::from));
    // The units: OnCalendar from the cron expression, RuntimeMaxSec from the timeout, and
    // systemd-analyze accepts them.
    let timer =
        std::fs::read_to_string(units.join("leak-sentinel-W3-Nightly.timer")).expect("timer");
    assert!(timer.contains("OnCalendar=*-*-* 03:00:00"), "{timer}");
    let service =
        std::fs::read_to_string(units.join("leak-sentinel-W3-Nightly.service")).expect("service");
    assert!(service.contains("RuntimeMaxSec=25500"), "{service}");
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(units.join("leak-sentinel-W3-Nightly.service"))
        .arg(units.join("leak-sentinel-W3-Nightly.timer"))
        .output()
        .expect("systemd-analyze is installed (.ci/run installs systemd)");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // schedule list and show.
    let out = ls(&state)
        .args(["schedule", "list"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains("W3-Nightly"));
    let out = ls(&state)
        .args(["schedule", "show", "W3-Nightly"])
        .output()
        .expect("runs");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("\"GOGC\": \"50\""), "{shown}");
}

/// A 6-second run of the clean workload, judged against [`WIDE_THRESHOLDS`]: its private memory
/// moves by a few pages, which 6 s cannot bound within 0.1 MiB/min. This test is about
/// baselines: the runs must run to their end, whichever verdict 6 s allow.
fn clean_run(state: &Path, name: &str, cache_mib: &str, extra: &[&str]) -> std::process::Output {
    fast_run(
        state,
        name,
        &[&["--duration", "6s"][..], &WIDE_THRESHOLDS, extra].concat(),
        &["clean", "--cache-mib", cache_mib],
    )
    .output()
    .expect("runs")
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn baseline_flags_a_run_that_uses_more_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = clean_run(dir.path(), "w2", "16", &[]);
    assert_ran_to_its_end(
        dir.path(),
        "w2",
        out.status.code(),
        &String::from_utf8_lossy(&out.stdout),
    );
    let file = dir.path().join("w2_gc_baseline.json");
    let out = ls(dir.path())
        .args(["baseline", "save", "w2", "-o"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("file")).expect("json");
    assert!(b["levels"]["rss_bytes"]["median"].as_f64().expect("median") > 16.0 * 1048576.0);
    assert!(b["rates"]["rss_bytes"]["slope_per_min"].is_number());
    // The same program with four times the working set, compared at run time and in report.
    let out = clean_run(
        dir.path(),
        "w3",
        "64",
        &["--baseline", file.to_str().expect("utf-8")],
    );
    assert_ran_to_its_end(
        dir.path(),
        "w3",
        out.status.code(),
        &String::from_utf8_lossy(&out.stdout),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("REGRESSION: rss_bytes median"));
    let out = ls(dir.path())
        .args(["report", "w3", "--json", "--baseline"])
        .arg(&file)
        .output()
        .expect("runs");
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    let changes = r["baseline_comparison"]["changes"]
        .as_array()
        .expect("changes");
    let rss = changes
        .iter()
        .find(|c| c["metric"] == "rss_bytes" && c["aspect"] == "level")
        .expect("rss level compared");
    assert_eq!(rss["regression"], true, "{rss}");
    assert!(rss["change_pct"].as_f64().expect("pct") > 100.0);
    // The baseline run against itself: no regression.
    let out = ls(dir.path())
        .args(["report", "w2", "--json", "--baseline"])
        .arg(&file)
        .output()
        .expect("runs");
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        r["baseline_comparison"]["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .all(|c| c["regression"] == false)
    );
    // A file that is not a baseline is refused at start.
    let out = clean_run(dir.path(), "w4", "16", &["--baseline", "/etc/hostname"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn makefile_targets_drive_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mk = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/leak-sentinel.mk");
    let bin = cargo_bin("leak-sentinel");
    let make = |args: &[&str]| {
        Command::new("make")
            .arg("-s")
            .arg("-f")
            .arg(&mk)
            .args(args)
            .arg(format!(
                "LEAK_SENTINEL={} --state-dir {}",
                bin.display(),
                dir.path().display()
            ))
            .arg(format!("SOAK_CMD={} workload clean", bin.display()))
            // make exits 2 for any failing recipe, so an inconclusive run (3) cannot be told
            // from an error: the runs are judged against thresholds that seconds of the clean
            // workload clear by a wide margin, and must pass.
            .arg(format!(
                "SENTINEL_ARGS=--plain --warmup 1s --check-every 1s --sample-every 200ms {}",
                WIDE_THRESHOLDS.join(" ")
            ))
            .current_dir(dir.path())
            .output()
            .expect("make is installed")
    };
    let out = make(&["w3-quick-test", "quick_duration=3s"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = make(&["w3-start-tagged", "run_name=W3-MyTest", "hours=0.001"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = make(&["w3-status", "run_name=W3-MyTest"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("W3-MyTest: completed"));
    let out = make(&["w3-schedule", "run_name=W3-Nightly", "cron=0 3 * * *"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 3 * * * cd "));
    let out = make(&["mem-health", &format!("PID={}", std::process::id())]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("limit soft"));
    // A missing run name is a make error, not a run.
    let out = make(&["w3-start-tagged"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("set run_name"));
}

#[test]
fn create_refuses_to_overwrite_without_force_and_checks_the_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let create = |name: &str, extra: &[&str], cmd: &[&str]| {
        ls(dir.path())
            .args(["schedule", "create", name, "--cron", "0 3 * * *"])
            .args(extra)
            .arg("--")
            .args(cmd)
            .output()
            .expect("runs")
    };
    let out = create("nightly", &[], &["sleep", "60"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = create("nightly", &[], &["sleep", "61"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exists") && err.contains("--force"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = create("nightly", &["--force"], &["sleep", "61"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = ls(dir.path())
        .args(["schedule", "show", "nightly"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&shown.stdout).contains("61"));
    for missing in [&["no-such-program-xyz"][..], &["/nonexistent/bin/app"][..]] {
        let out = create("other", &[], missing);
        assert_eq!(out.status.code(), Some(2), "{missing:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not an executable file"), "{err}");
    }
}
