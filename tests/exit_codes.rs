//! Exit codes of errors (SPEC.md, command-line contract): what the user typed or wrote exits 2;
//! a state directory or store that cannot be used (corrupted, cannot be created) exits 70.
//! Each class is driven through the real binary; every error is one line on stderr.

mod common;

use common::ls;
use leak_sentinel::store::{DB_FILE, Store};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Runs `leak-sentinel --state-dir STATE ARGS…`.
fn run(state: &Path, args: &[&str]) -> Output {
    ls(state).args(args).output().expect("runs")
}

/// Exit `code`, one line on stderr that contains `needle`, no panic.
fn assert_error(o: &Output, code: i32, needle: &str, what: &str) {
    let err = common::assert_error(o, code, what);
    assert!(err.contains(needle), "{what}: '{needle}' in {err}");
}

/// A private state directory holding a real store with one finished run, `kept`.
fn state_with_a_run(root: &Path) -> PathBuf {
    let state = root.join("state");
    let store = Store::open(&state).expect("a new store");
    let id = store
        .create_run("kept", "{}", "{}", 1_700_000_000.0)
        .expect("a run");
    drop(store);
    assert!(id > 0);
    state
}

#[test]
fn what_the_user_typed_or_wrote_exits_2() {
    let d = tempfile::tempdir().expect("tempdir");
    let state = state_with_a_run(d.path());
    let config = d.path().join("bad.toml");
    std::fs::write(&config, "profile = \"quick\"\nduration = 90\n").expect("write");
    let csv = d.path().join("bad.csv");
    std::fs::write(&csv, "t_seconds,rss_bytes\n0,100\n1,lots\n2,102\n").expect("write");
    let (config, csv) = (config.display().to_string(), csv.display().to_string());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // A bad flag value.
        (
            vec!["run", "--duration", "soon", "--", "true"],
            "--duration",
        ),
        (
            vec!["analyze", &csv, "--fd-threshold", "many"],
            "--fd-threshold",
        ),
        // A bad config file: the key and its line are named.
        (vec!["run", "--config", &config, "--", "true"], "line 2"),
        // A malformed CSV given to analyze.
        (vec!["analyze", &csv], "lots"),
        // A bad cron expression, a bad URL.
        (
            vec![
                "schedule",
                "create",
                "n",
                "--cron",
                "61 * * * *",
                "--",
                "true",
            ],
            "--cron",
        ),
        (vec!["scan", "--url", "ftp://x", "--query", "up"], "--url"),
        // A run name that does not exist, in a store that holds another run.
        (vec!["status", "nope"], "no run named 'nope'"),
        (vec!["report", "nope"], "no run named 'nope'"),
        (
            vec!["report", "nope", "--html", "/dev/null"],
            "no run named",
        ),
        (vec!["resume", "nope"], "no run named 'nope'"),
        (vec!["compare", "kept", "nope"], "no run named 'nope'"),
    ];
    for (args, needle) in &cases {
        assert_error(&run(&state, args), 2, needle, &args.join(" "));
    }
    // Nothing recorded was touched: the run is still there.
    let o = run(&state, &["list", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("kept"));
}

#[test]
fn a_corrupted_store_exits_70_and_is_left_as_it_was() {
    let d = tempfile::tempdir().expect("tempdir");
    // A real store whose header was overwritten, and a file that never was a database.
    let damaged = state_with_a_run(&d.path().join("damaged"));
    let db = damaged.join(DB_FILE);
    let mut bytes = std::fs::read(&db).expect("read");
    bytes[..32].copy_from_slice(&[0x5a; 32]);
    std::fs::write(&db, &bytes).expect("write");
    let garbage = d.path().join("garbage");
    std::fs::create_dir(&garbage).expect("mkdir");
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::fs::write(
        garbage.join(DB_FILE),
        b"not a database at all\n".repeat(300),
    )
    .expect("write");
    std::fs::set_permissions(
        garbage.join(DB_FILE),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    for state in [&damaged, &garbage] {
        let before = std::fs::read(state.join(DB_FILE)).expect("read");
        for args in [
            vec!["status"],
            vec!["status", "kept"],
            vec!["list"],
            vec!["report", "kept", "--json"],
            vec!["resume", "kept"],
            vec!["run", "--name", "new", "--duration", "1s", "--", "true"],
        ] {
            let what = format!("{} {}", state.display(), args.join(" "));
            assert_error(&run(state, &args), 70, "store", &what);
        }
        assert_eq!(
            std::fs::read(state.join(DB_FILE)).expect("read"),
            before,
            "{}: the store is left as it was",
            state.display()
        );
    }
}

#[test]
fn a_state_dir_that_cannot_be_created_exits_70() {
    let d = tempfile::tempdir().expect("tempdir");
    // Its parent is a regular file: not even root can create it.
    let file = d.path().join("file");
    std::fs::write(&file, "x").expect("write");
    let state = file.join("state");
    let o = run(
        &state,
        &["run", "--name", "x", "--duration", "1s", "--", "true"],
    );
    assert_error(&o, 70, "cannot create", "run");
    let o = run(
        &state,
        &["schedule", "create", "n", "--cron", "@daily", "--", "true"],
    );
    assert_error(&o, 70, "cannot create", "schedule create");
    // Reading commands find no runs there: the wrong --state-dir, a usage error.
    assert_error(&run(&state, &["status"]), 2, "no runs under", "status");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "x");
}
