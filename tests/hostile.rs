//! Hostile ground (issue 14): the sentinel runs as root on shared hosts, next to other users'
//! files, and is fed any input. One test per case: planted symlinks, shared directories,
//! panicking inputs, unbounded reads, concurrent starts on a new state directory, a read-only
//! state directory, webhooks that redirect, credentials in URLs and `scan` answers that never
//! end. The tests run as root in CI and use `setpriv` (util-linux) to act as another user.

mod common;

use common::{bin, ls};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The unprivileged user other users' actions are played as.
const NOBODY: &str = "65534";

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A command run as user 65534.
fn as_nobody(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
        "--",
    ])
    .arg(program);
    c
}

/// A temporary directory that user 65534 can traverse (the tests' own are 0700).
fn shared_tempdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    chmod(d.path(), 0o755);
    d
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

/// A world-writable sticky directory like /tmp.
fn sticky_dir(parent: &Path) -> PathBuf {
    let d = parent.join("scratch");
    std::fs::create_dir(&d).expect("mkdir");
    chmod(&d, 0o1777);
    d
}

/// Plants a symlink as user 65534.
fn plant_symlink(target: &Path, at: &Path) {
    let st = as_nobody(Path::new("ln"))
        .arg("-s")
        .arg(target)
        .arg(at)
        .status()
        .expect("setpriv runs (util-linux)");
    assert!(st.success(), "planting {}", at.display());
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What the user typed or wrote is wrong: exit 2.
fn assert_usage_error(o: &Output, what: &str) -> String {
    common::assert_error(o, 2, what)
}

/// The state directory or its store cannot be used as found (not the user's own, not private, a
/// planted link): an environment failure, exit 70 — never 2, which tells CI to fix its command.
fn assert_environment_error(o: &Output, what: &str) -> String {
    common::assert_error(o, 70, what)
}

/// A finished tiny run (about one second).
fn quick_run(state: &Path, name: &str) {
    let o = ls(state)
        .args([
            "run",
            "--name",
            name,
            "--plain",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--check-every",
            "500ms",
            "--sample-every",
            "100ms",
            "--",
            "sleep",
            "30",
        ])
        .output()
        .expect("runs");
    assert!(
        matches!(o.status.code(), Some(0) | Some(3)),
        "run {name}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
}

fn quick_run_args(name: &str) -> Vec<String> {
    [
        "run",
        "--name",
        name,
        "--plain",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--check-every",
        "500ms",
        "--sample-every",
        "100ms",
        "--",
        "sleep",
        "30",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

// ---- 1. files ----------------------------------------------------------------------------

#[test]
fn a_shared_world_writable_state_dir_is_refused_and_keeps_its_mode() {
    let d = tempfile::tempdir().expect("tempdir");
    let scratch = sticky_dir(d.path());
    let o = ls(&scratch)
        .args(quick_run_args("x"))
        .output()
        .expect("runs");
    let err = assert_environment_error(&o, "state dir 1777");
    assert!(err.contains("writable by group or others"), "{err}");
    assert_eq!(
        mode(&scratch),
        0o1777,
        "an existing directory keeps its mode"
    );
    assert!(!scratch.join("leak-sentinel.db").exists());
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: plays other users and mounts (bash .ci/run runs as root)"
)]
fn a_state_dir_owned_by_another_user_is_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    let state = d.path().join("state");
    std::fs::create_dir(&state).expect("mkdir");
    chmod(&state, 0o700);
    nix::unistd::chown(&state, Some(65534.into()), Some(65534.into())).expect("chown");
    let o = ls(&state).args(quick_run_args("x")).output().expect("runs");
    let err = assert_environment_error(&o, "foreign state dir");
    assert!(err.contains("owned by another user"), "{err}");
    assert!(!state.join("leak-sentinel.db").exists());
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: plays other users and mounts (bash .ci/run runs as root)"
)]
fn a_symlink_planted_at_the_state_dir_by_another_user_is_not_followed() {
    let d = shared_tempdir();
    let scratch = sticky_dir(d.path());
    // Root's own private directory, which the planted link points at.
    let victim = d.path().join("victim");
    std::fs::create_dir(&victim).expect("mkdir");
    chmod(&victim, 0o700);
    let predicted = scratch.join(".leak-sentinel");
    plant_symlink(&victim, &predicted);
    let o = ls(&predicted)
        .args(quick_run_args("x"))
        .output()
        .expect("runs");
    let err = assert_environment_error(&o, "planted state dir link");
    assert!(err.contains("symbolic link owned by another user"), "{err}");
    assert_eq!(std::fs::read_dir(&victim).expect("ls").count(), 0);
    // The user's own link is followed (a state directory on another disk).
    let own = d.path().join("own-link");
    std::os::unix::fs::symlink(&victim, &own).expect("symlink");
    quick_run(&own, "x");
    assert!(victim.join("leak-sentinel.db").is_file());
}

#[test]
fn the_database_is_not_opened_through_a_planted_symlink() {
    let d = tempfile::tempdir().expect("tempdir");
    let state = d.path().join("state");
    std::fs::create_dir(&state).expect("mkdir");
    chmod(&state, 0o700);
    let victim = d.path().join("precious");
    std::fs::write(&victim, "do not touch").expect("write");
    chmod(&victim, 0o644);
    std::os::unix::fs::symlink(&victim, state.join("leak-sentinel.db")).expect("symlink");
    for args in [quick_run_args("x"), vec!["list".to_string()]] {
        let o = ls(&state).args(&args).output().expect("runs");
        let err = assert_environment_error(&o, "db symlink");
        assert!(err.contains("symbolic link"), "{err}");
    }
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read"),
        "do not touch"
    );
    assert_eq!(mode(&victim), 0o644, "not chmod-ed");
}

#[test]
fn the_run_lock_is_not_opened_through_a_planted_symlink() {
    let d = tempfile::tempdir().expect("tempdir");
    let state = d.path().join("state");
    let run_dir = state.join("runs").join("x");
    std::fs::create_dir_all(&run_dir).expect("mkdir");
    chmod(&state, 0o700);
    chmod(&state.join("runs"), 0o700);
    chmod(&run_dir, 0o700);
    let victim = d.path().join("precious");
    std::fs::write(&victim, "do not touch").expect("write");
    std::os::unix::fs::symlink(&victim, run_dir.join("lock")).expect("symlink");
    let o = ls(&state).args(quick_run_args("x")).output().expect("runs");
    let err = assert_environment_error(&o, "lock symlink");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read"),
        "do not touch"
    );
}

#[test]
fn a_run_dir_writable_by_others_is_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    let state = d.path().join("state");
    let run_dir = state.join("runs").join("x");
    std::fs::create_dir_all(&run_dir).expect("mkdir");
    chmod(&state, 0o700);
    chmod(&state.join("runs"), 0o700);
    chmod(&run_dir, 0o777);
    let o = ls(&state).args(quick_run_args("x")).output().expect("runs");
    let err = assert_environment_error(&o, "run dir 0777");
    assert!(err.contains("writable by group or others"), "{err}");
    assert_eq!(mode(&run_dir), 0o777, "not chmod-ed");
}

#[test]
fn status_json_replaces_a_planted_symlink_instead_of_writing_through_it() {
    let d = tempfile::tempdir().expect("tempdir");
    let state = d.path().join("state");
    let run_dir = state.join("runs").join("x");
    std::fs::create_dir_all(&run_dir).expect("mkdir");
    for p in [&state, &state.join("runs"), &run_dir] {
        chmod(p, 0o700);
    }
    let victim = d.path().join("precious");
    std::fs::write(&victim, "do not touch").expect("write");
    std::os::unix::fs::symlink(&victim, run_dir.join("status.json")).expect("symlink");
    quick_run(&state, "x");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read"),
        "do not touch"
    );
    let st = std::fs::symlink_metadata(run_dir.join("status.json")).expect("stat");
    assert!(st.is_file(), "status.json is now a regular file");
    assert_eq!(st.permissions().mode() & 0o777, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(&run_dir)
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files left");
}

#[test]
fn output_files_write_only_the_file_and_never_through_a_symlink() {
    let d = shared_tempdir();
    let state = d.path().join("state");
    quick_run(&state, "r");
    let scratch = sticky_dir(d.path());
    // -o into a shared 1777 directory: the file is written, the directory keeps its mode.
    let out = scratch.join("b.json");
    let o = ls(&state)
        .args(["baseline", "save", "r", "-o"])
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        mode(&scratch),
        0o1777,
        "the shared directory keeps its mode"
    );
    assert_eq!(mode(&out), 0o600);
    // A symlink planted at the output path (by another user, when root) is refused.
    let victim = d.path().join("precious");
    std::fs::write(&victim, "do not touch").expect("write");
    chmod(&victim, 0o644);
    let link = scratch.join("planted.json");
    if is_root() {
        plant_symlink(&victim, &link);
    } else {
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    }
    for args in [
        vec!["baseline", "save", "r", "-o"],
        vec!["report", "r", "--html"],
        vec!["report", "r", "--csv"],
    ] {
        let o = ls(&state).args(&args).arg(&link).output().expect("runs");
        let err = assert_usage_error(&o, &args.join(" "));
        assert!(err.contains("symbolic link"), "{err}");
    }
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read"),
        "do not touch"
    );
    assert_eq!(mode(&victim), 0o644);
}

// ---- 2. bounded parsing, never a panic ------------------------------------------------------

#[test]
fn out_of_range_numbers_are_one_line_errors_not_panics() {
    let d = tempfile::tempdir().expect("tempdir");
    let state = d.path().join("state");
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "run",
            "--name",
            "a",
            "--duration",
            "99999999999999999999h",
            "--",
            "true",
        ],
        vec!["run", "--name", "a", "--check-every", "1e300", "--", "true"],
        vec!["run", "--name", "a", "--sample-every", "1e30", "--", "true"],
        vec!["run", "--name", "a", "--warmup", "inf", "--", "true"],
        vec!["run", "--name", "a", "--timeout", "NaN", "--", "true"],
        vec![
            "run",
            "--name",
            "a",
            "--memory-threshold",
            "1e300GiB/s",
            "--",
            "true",
        ],
        vec![
            "run",
            "--name",
            "a",
            "--fd-threshold",
            "1e400",
            "--",
            "true",
        ],
        vec!["analyze", "--warmup", "1e20", "/dev/null"],
        vec![
            "schedule",
            "create",
            "n",
            "--cron",
            "@daily",
            "--timeout",
            "1e30",
            "--",
            "true",
        ],
        vec![
            "schedule",
            "create",
            "n",
            "--cron",
            "*/4294967295 * * * *",
            "--",
            "true",
        ],
        vec![
            "schedule",
            "create",
            "n",
            "--cron",
            "99999999999 * * * *",
            "--",
            "true",
        ],
        vec![
            "scan",
            "--url",
            "http://127.0.0.1:1",
            "--query",
            "up",
            "--range",
            "1e30",
        ],
        vec![
            "scan",
            "--url",
            "http://127.0.0.1:1",
            "--query",
            "up",
            "--step",
            "1e-300",
        ],
        vec!["demo", "--duration", "1e300"],
    ];
    for args in &cases {
        let o = ls(&state).args(args).output().expect("runs");
        assert_usage_error(&o, &args.join(" "));
    }
    let long = "9".repeat(100_000);
    let o = ls(&state)
        .args(["run", "--name", "a", "--duration", &long, "--", "true"])
        .output()
        .expect("runs");
    assert_usage_error(&o, "a 100,000-digit duration");
}

#[test]
fn config_files_are_bounded_and_checked() {
    let d = tempfile::tempdir().expect("tempdir");
    let state = d.path().join("state");
    let c = d.path().join("c.toml");
    std::fs::write(&c, "duration = \"1e30\"\npid = 1\n").expect("write");
    let o = ls(&state)
        .args(["run", "--name", "a", "--config"])
        .arg(&c)
        .output()
        .expect("runs");
    let err = assert_usage_error(&o, "TOML duration 1e30");
    assert!(err.contains("1e30"), "{err}");
    let big = d.path().join("big.toml");
    std::fs::write(&big, format!("name = \"{}\"\n", "x".repeat(2 << 20))).expect("write");
    for cfg in [big.as_path(), Path::new("/dev/zero")] {
        let o = ls(&state)
            .args(["run", "--name", "a", "--config"])
            .arg(cfg)
            .output()
            .expect("runs");
        assert_usage_error(&o, &cfg.display().to_string());
    }
}

#[test]
fn pid_files_are_small_regular_files_with_one_pid() {
    let d = tempfile::tempdir().expect("tempdir");
    let state = d.path().join("state");
    let fifo = d.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let big = d.path().join("big.pid");
    std::fs::write(&big, format!("{}1\n", " ".repeat(100))).expect("write");
    let two = d.path().join("two.pid");
    std::fs::write(&two, "12 13\n").expect("write");
    let zero = d.path().join("zero.pid");
    std::fs::write(&zero, "0\n").expect("write");
    let start = std::time::Instant::now();
    for (p, why) in [
        (Path::new("/dev/zero"), "not a regular file"),
        (fifo.as_path(), "not a regular file"),
        (big.as_path(), "larger than 64 bytes"),
        (two.as_path(), "does not hold one positive PID"),
        (zero.as_path(), "does not hold one positive PID"),
    ] {
        let o = ls(&state)
            .args(["run", "--name", "a", "--pid-file"])
            .arg(p)
            .output()
            .expect("runs");
        let err = assert_usage_error(&o, &p.display().to_string());
        assert!(err.contains(why), "{}: {err}", p.display());
    }
    assert!(start.elapsed().as_secs() < 20, "nothing is read forever");
}

#[test]
fn schedule_files_are_checked_when_read() {
    let d = tempfile::tempdir().expect("tempdir");
    let state = d.path().join("state");
    let sched = state.join("schedules");
    std::fs::create_dir_all(&sched).expect("mkdir");
    for p in [&state, &sched] {
        chmod(p, 0o700);
    }
    std::fs::write(sched.join("bad.json"), "{\"name\": ").expect("write");
    std::fs::write(sched.join("huge.json"), vec![b' '; 2 << 20]).expect("write");
    for name in ["bad", "huge", "../../etc/passwd"] {
        let o = ls(&state)
            .args(["schedule", "show", name])
            .output()
            .expect("runs");
        assert_usage_error(&o, name);
    }
}

// Seeded random inputs over the parsers: none may panic (a panic fails the test). The number
// of inputs tried is printed (`cargo test -- --nocapture` shows it).

fn fuzz_inputs(seed: u64, n: usize) -> Vec<String> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let atoms = [
        "0",
        "1",
        "9",
        ".",
        "-",
        "+",
        "e",
        "E",
        "e308",
        "e-308",
        "1e300",
        "99999999999999999999",
        "inf",
        "NaN",
        "ms",
        "s",
        "m",
        "h",
        "d",
        "y",
        "us",
        "ns",
        "min",
        "hours",
        "KiB",
        "MiB",
        "GiB",
        "kB",
        "B",
        "/",
        "/s",
        "/min",
        "/h",
        "/d",
        "fd",
        " ",
        "*",
        ",",
        "@daily",
        "L",
        "#",
        "W",
        "?",
        "\u{0}",
        "\n",
        "é",
        "٣",
        "\u{202e}",
        "4294967295",
        "18446744073709551616",
    ];
    (0..n)
        .map(|_| {
            let len = rng.random_range(0..8);
            let mut s = String::new();
            for _ in 0..len {
                if rng.random_bool(0.8) {
                    s.push_str(atoms[rng.random_range(0..atoms.len())]);
                } else {
                    s.push(char::from_u32(rng.random_range(0..0x3000)).unwrap_or('x'));
                }
            }
            s
        })
        .collect()
}

#[test]
fn fuzz_durations_and_rates() {
    use leak_sentinel::units::{MAX_DURATION_S, RateKind, parse_duration, parse_rate};
    let inputs = fuzz_inputs(14, 200_000);
    let mut ok = 0;
    for s in &inputs {
        if let Ok(d) = parse_duration(s) {
            assert!(d.as_secs_f64() <= MAX_DURATION_S, "{s:?}");
            ok += 1;
        }
        for kind in [RateKind::Memory, RateKind::Count] {
            if let Ok(r) = parse_rate(s, kind) {
                assert!(r.is_finite() && r >= 0.0, "{s:?}");
            }
        }
    }
    println!(
        "fuzz: {} inputs tried on parse_duration and parse_rate ({ok} valid durations)",
        inputs.len()
    );
}

#[test]
fn fuzz_cron_expressions() {
    use leak_sentinel::schedule::parse_cron;
    let inputs = fuzz_inputs(1414, 20_000);
    let mut tried = 0;
    for s in &inputs {
        let _ = parse_cron(s);
        tried += 1;
    }
    // Five fields of random but plausible pieces.
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let pieces = [
        "*",
        "*/0",
        "*/1",
        "*/7",
        "*/4294967295",
        "0",
        "59",
        "60",
        "1-5",
        "5-1",
        "1-5/2",
        "mon",
        "jan-dec",
        "sun-sat",
        "7",
        "0,30",
        "1,,2",
        "-",
        "/",
        "L",
        "?",
        "31",
        "2",
        "3-",
    ];
    for _ in 0..20_000 {
        let expr: Vec<&str> = (0..5)
            .map(|_| pieces[rng.random_range(0..pieces.len())])
            .collect();
        let _ = parse_cron(&expr.join(" "));
        tried += 1;
    }
    println!("fuzz: {tried} inputs tried on parse_cron");
}

#[test]
fn fuzz_config_resolution() {
    use leak_sentinel::cli::RunArgs;
    use leak_sentinel::config::resolve;
    use rand::{RngExt, SeedableRng};
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("c.toml");
    let keys = [
        "duration",
        "check_every",
        "sample_every",
        "detail_every",
        "warmup",
        "memory_threshold",
        "fd_threshold",
        "thread_threshold",
        "timeout",
        "on_leak_timeout",
        "profile",
        "name",
    ];
    let values = fuzz_inputs(2014, 4_000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut tried = 0;
    for chunk in values.chunks(4) {
        let mut text = String::new();
        for v in chunk {
            let k = keys[rng.random_range(0..keys.len())];
            // Debug formatting is a valid TOML basic string for these inputs (or a TOML error).
            text.push_str(&format!("{k} = {v:?}\n"));
        }
        if rng.random_bool(0.5) {
            text.push_str(&format!("pid = {}\n", rng.random_range(-5..5)));
        }
        if rng.random_bool(0.2) {
            text.push_str(&format!(
                "max_failed_checks = {}\n",
                rng.random_range(-1i64..5_000_000_000)
            ));
        }
        std::fs::write(&path, &text).expect("write");
        let args = RunArgs {
            config: Some(path.clone()),
            ..RunArgs::default()
        };
        let _ = resolve(&args);
        tried += 1;
    }
    println!("fuzz: {tried} config files tried on config::resolve");
}

// ---- 5. concurrency ---------------------------------------------------------------------------

#[test]
fn ten_runs_start_at_once_on_a_new_state_dir() {
    let d = tempfile::tempdir().expect("tempdir");
    let state = d.path().join("fresh");
    let children: Vec<_> = (0..10)
        .map(|i| {
            ls(&state)
                .args(quick_run_args(&format!("r{i}")))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    // Readers at the same moment.
    let readers: Vec<_> = (0..5)
        .map(|_| {
            ls(&state)
                .arg("list")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().expect("wait");
        let err = stderr(&o);
        assert!(!err.contains("locked"), "{err}");
        assert!(matches!(o.status.code(), Some(0) | Some(3)), "{err}");
    }
    for r in readers {
        let o = r.wait_with_output().expect("wait");
        let err = stderr(&o);
        assert!(!err.contains("locked"), "{err}");
        // Before the first run created the database, "no runs" (exit 2) is a fair answer.
        assert!(
            o.status.success() || err.contains("no runs") || err.contains("no state directory"),
            "{err}"
        );
    }
    let o = ls(&state).args(["list", "--json"]).output().expect("runs");
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(runs.as_array().map(Vec::len), Some(10));
}

// ---- 6. read-only use -------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: plays other users and mounts (bash .ci/run runs as root)"
)]
fn a_read_only_state_dir_can_be_read() {
    let d = shared_tempdir();
    let state = d.path().join("state");
    std::thread::scope(|s| {
        s.spawn(|| quick_run(&state, "a"));
        s.spawn(|| quick_run(&state, "b"));
    });
    // Hand it to user 65534, then take away every write bit.
    let st = Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}")])
        .arg(&state)
        .status()
        .expect("chown");
    assert!(st.success());
    let st = Command::new("chmod")
        .args(["-R", "a-w"])
        .arg(&state)
        .status()
        .expect("chmod");
    assert!(st.success());
    let out_dir = d.path().join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    nix::unistd::chown(&out_dir, Some(65534.into()), Some(65534.into())).expect("chown");
    let listing = |p: &Path| -> Vec<(String, u64, i64)> {
        let mut v: Vec<_> = walk(p)
            .into_iter()
            .map(|f| {
                let m = std::fs::symlink_metadata(&f).expect("stat");
                (f.display().to_string(), m.len(), m.mtime())
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(&state);
    let baseline = out_dir.join("b.json");
    let html = out_dir.join("a.html");
    let cases: Vec<Vec<String>> = vec![
        vec!["list".into()],
        vec!["list".into(), "--json".into()],
        vec!["status".into(), "a".into()],
        vec!["status".into(), "--json".into()],
        vec!["report".into(), "a".into(), "--json".into()],
        vec!["report".into(), "b".into()],
        vec![
            "report".into(),
            "a".into(),
            "--html".into(),
            html.display().to_string(),
        ],
        vec!["compare".into(), "a".into(), "b".into()],
        vec![
            "baseline".into(),
            "save".into(),
            "a".into(),
            "-o".into(),
            baseline.display().to_string(),
        ],
    ];
    for args in &cases {
        let o = as_nobody(&bin())
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .output()
            .expect("setpriv runs (util-linux)");
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {}",
            args.join(" "),
            stderr(&o)
        );
    }
    assert!(baseline.is_file() && html.is_file());
    assert_eq!(listing(&state), before, "nothing written to the state dir");
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

// ---- 7. webhooks ------------------------------------------------------------------------------

/// A loopback HTTP server answering every request with `answer(request head)`; it records the
/// request lines and stops when dropped.
struct TinyServer {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TinyServer {
    fn start(answer: fn(&mut std::net::TcpStream, &str)) -> TinyServer {
        use std::io::Read;
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !stop2.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_millis(500)));
                let mut buf = vec![0u8; 65536];
                let n = conn.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                if let Ok(mut s) = seen2.lock() {
                    s.push(head.lines().next().unwrap_or("").to_string());
                }
                let stop3 = stop2.clone();
                std::thread::spawn(move || {
                    if !stop3.load(Ordering::Relaxed) {
                        answer(&mut conn, &head);
                    }
                });
            }
        });
        TinyServer { port, seen, stop }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for TinyServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_redirected_webhook_is_not_a_delivery_and_credentials_are_redacted() {
    use std::io::Write;
    let server = TinyServer::start(|conn, _| {
        let _ = conn.write_all(
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    });
    let d = tempfile::tempdir().expect("tempdir");
    let state = d.path().join("state");
    let url = format!("http://hook:S3CRETPASS@127.0.0.1:{}/hook", server.port);
    let mut args = quick_run_args("w");
    args.splice(1..1, ["--notify".to_string(), url]);
    let o = ls(&state).args(&args).output().expect("runs");
    assert!(
        matches!(o.status.code(), Some(0) | Some(3)),
        "{}",
        stderr(&o)
    );
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    let events = ls(&state)
        .args(["report", "w", "--json"])
        .output()
        .expect("runs");
    let report: serde_json::Value = serde_json::from_slice(&events.stdout).expect("json");
    let events = report["events"].to_string();
    assert!(
        events.contains("HTTP 302 redirect not followed"),
        "{events}"
    );
    assert!(!events.contains("notified HTTP"), "{events}");
    assert!(!out.contains("S3CRETPASS") && !events.contains("S3CRETPASS"));
    let seen = server.seen();
    assert!(!seen.is_empty(), "the webhook was tried");
    assert!(
        seen.iter().all(|l| l.starts_with("POST /hook")),
        "the redirect was not followed: {seen:?}"
    );
    // A bad URL is refused without echoing its password.
    let o = ls(&state)
        .args([
            "run",
            "--name",
            "v",
            "--notify",
            "ftp://u:S3CRETPASS@host/x",
            "--",
            "true",
        ])
        .output()
        .expect("runs");
    let err = assert_usage_error(&o, "ftp notify URL");
    assert!(!err.contains("S3CRETPASS"), "{err}");
}

// ---- 3. scan ----------------------------------------------------------------------------------

#[test]
fn a_scan_answer_that_never_ends_stops_at_the_byte_cap() {
    use std::io::Write;
    let server = TinyServer::start(|conn, _| {
        let _ = conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":[",
        );
        let chunk = "[1,\"1\"],".repeat(4096);
        let start = std::time::Instant::now();
        // Streams forever (bounded here at 60 s): the client must stop reading.
        while start.elapsed() < std::time::Duration::from_secs(60) {
            if conn.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
    });
    let d = tempfile::tempdir().expect("tempdir");
    let start = std::time::Instant::now();
    let o = ls(d.path())
        .env("LEAK_SENTINEL_SCAN_MAX_BYTES", "4MiB")
        .args([
            "scan",
            "--url",
            &format!("http://u:S3CRETPASS@127.0.0.1:{}", server.port),
            "--query",
            "up",
            "--range",
            "1h",
            "--step",
            "1m",
        ])
        .output()
        .expect("runs");
    let err = assert_usage_error(&o, "endless answer");
    assert!(
        err.contains("max-bytes") && err.contains("4194304"),
        "{err}"
    );
    assert!(!err.contains("S3CRETPASS"), "{err}");
    assert!(start.elapsed().as_secs() < 30, "stopped at the cap");
}

#[test]
fn a_scan_answer_that_stalls_hits_the_deadline() {
    use std::io::Write;
    let server = TinyServer::start(|conn, _| {
        let _ = conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"status\":",
        );
        std::thread::sleep(std::time::Duration::from_secs(20));
    });
    let d = tempfile::tempdir().expect("tempdir");
    let start = std::time::Instant::now();
    let o = ls(d.path())
        .env("LEAK_SENTINEL_SCAN_TIMEOUT", "2s")
        .args([
            "scan",
            "--url",
            &format!("http://127.0.0.1:{}", server.port),
            "--query",
            "up",
            "--range",
            "1h",
            "--step",
            "1m",
        ])
        .output()
        .expect("runs");
    let err = assert_usage_error(&o, "stalled answer");
    assert!(err.contains("deadline"), "{err}");
    assert!(start.elapsed().as_secs() < 15, "{err}");
}

#[test]
fn scan_never_echoes_a_password_in_its_url() {
    let d = tempfile::tempdir().expect("tempdir");
    let port = common::free_port();
    for url in [
        format!("http://user:S3CRETPASS@127.0.0.1:{port}"),
        "ftp://user:S3CRETPASS@host".to_string(),
    ] {
        let o = ls(d.path())
            .args(["scan", "--url", &url, "--query", "up", "--range", "10m"])
            .output()
            .expect("runs");
        let err = assert_usage_error(&o, &url);
        assert!(!err.contains("S3CRETPASS"), "{err}");
        assert!(err.contains("***"), "{err}");
    }
    // Too many points per series are refused before asking.
    let o = ls(d.path())
        .args([
            "scan",
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--query",
            "up",
            "--range",
            "3650d",
            "--step",
            "1ms",
        ])
        .output()
        .expect("runs");
    let err = assert_usage_error(&o, "3650d at 1ms");
    assert!(err.contains("max-points"), "{err}");
}

#[test]
fn a_kernel_thread_is_refused_and_pid_1_is_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("leak-sentinel"))
        .arg("--state-dir")
        .arg(&state)
        .args(["run", "--name", "kthread", "--duration", "2s", "--pid", "2"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kernel thread"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("leak-sentinel"))
        .arg("--state-dir")
        .arg(&state)
        .args([
            "run",
            "--name",
            "init",
            "--plain",
            "--warmup",
            "1s",
            "--check-every",
            "1s",
        ])
        .args(["--sample-every", "500ms", "--duration", "2s", "--pid", "1"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("the target is PID 1"), "{text}");
}

// ---- 9. endings: a full disk, a kill -9 while finishing --------------------------------------

/// A private mount namespace with a small tmpfs at `dir`, held by a sleeping process: commands
/// run inside it through `nsenter`, the test reaches its files through `/proc/PID/root`. The
/// namespace and its tmpfs go with the last process inside.
struct SmallDisk {
    holder: std::process::Child,
    dir: PathBuf,
}

impl SmallDisk {
    /// `None` (the test skips) where mount namespaces cannot be made.
    fn new(dir: &Path, size: &str) -> Option<SmallDisk> {
        use std::io::BufRead;
        std::fs::create_dir_all(dir).expect("mkdir");
        let script = format!(
            "mount -t tmpfs -o size={size},mode=0700 tmpfs \"$0\" && echo ready && exec sleep 300"
        );
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        let ready = holder.stdout.take().map(std::io::BufReader::new);
        if ready.is_none_or(|mut r| r.read_line(&mut line).is_err()) || line.trim() != "ready" {
            let _ = holder.kill();
            let _ = holder.wait();
            return None;
        }
        Some(SmallDisk {
            holder,
            dir: dir.to_path_buf(),
        })
    }

    /// `leak-sentinel --state-dir DIR/state …` inside the namespace.
    fn ls(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["-m", "--"])
            .arg(bin())
            .arg("--state-dir")
            .arg(self.dir.join("state"));
        c
    }

    /// A path inside the tmpfs, as the test (outside the namespace) reaches it.
    fn outside(&self, rel: &str) -> PathBuf {
        let mut p = PathBuf::from(format!("/proc/{}/root", self.holder.id()));
        p.push(self.dir.strip_prefix("/").expect("absolute"));
        p.push(rel);
        p
    }

    /// `--json` output of a reading command, which must succeed.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let o = self.ls().args(args).output().expect("nsenter runs");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).expect("json")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Kills a process by PID when the test ends (a target left running on purpose).
struct KillPid(i32);

impl Drop for KillPid {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// Every file under `dir` whose name ends in `.tmp`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect()
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: plays other users and mounts (bash .ci/run runs as root)"
)]
fn a_full_disk_stops_the_run_resumable_with_the_reason_recorded() {
    let d = tempfile::tempdir().expect("tempdir");
    let Some(disk) = SmallDisk::new(&d.path().join("disk"), "6m") else {
        eprintln!("SKIPPED: a private mount namespace with a tmpfs cannot be made here");
        return;
    };
    let (out, err) = (d.path().join("out"), d.path().join("err"));
    let file = |p: &Path| std::fs::File::create(p).expect("create");
    let mut run = disk
        .ls()
        // Samples every 100 ms, against a target that outlives the test.
        .args(
            "run --name full --plain --warmup 1s --check-every 1s --sample-every 100ms --duration 1h -- sleep 120"
                .split(' '),
        )
        .stdout(file(&out))
        .stderr(file(&err))
        .spawn()
        .expect("nsenter runs");
    let samples = || disk.json(&["report", "full", "--json"])["samples"].as_u64();
    common::wait_for("10 samples", std::time::Duration::from_secs(20), || {
        disk.outside("state/runs/full/status.json").exists() && samples() >= Some(10)
    });
    let status = disk.json(&["status", "full", "--json"]);
    let pid = status["pid"].as_i64().expect("the target's PID") as i32;
    let _target = KillPid(pid);
    assert!(
        disk.outside("state/runs/full/reserve").is_file(),
        "a live run keeps its reserve"
    );
    // The disk fills up mid-run.
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(disk.outside("filler")).expect("filler");
        let chunk = vec![0x5a_u8; 64 << 10];
        while filler.write_all(&chunk).is_ok() {}
    }
    let started = std::time::Instant::now();
    let code = loop {
        if let Some(st) = run.try_wait().expect("wait") {
            break st.code();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the sentinel did not stop on a full disk"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let err_text = std::fs::read_to_string(&err).expect("stderr");
    let out_text = std::fs::read_to_string(&out).expect("stdout");
    assert_eq!(code, Some(5), "exit 5, interrupted: {err_text}\n{out_text}");
    assert_eq!(
        err_text.trim_end().lines().count(),
        1,
        "one line: {err_text}"
    );
    assert!(
        err_text.contains("disk full") && err_text.contains("leak-sentinel resume full"),
        "{err_text}"
    );
    // The store says why, and every reader says what the store says.
    let list = disk.json(&["list", "--json"]);
    let listed = &list[0];
    assert_eq!(listed["status"], "interrupted", "{list}");
    assert!(
        listed["failure_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("disk full")),
        "{list}"
    );
    let status = disk.json(&["status", "full", "--json"]);
    assert_eq!(status["status"], "interrupted", "{status}");
    assert_eq!(
        status["failure_reason"], listed["failure_reason"],
        "{status}"
    );
    assert_eq!(status["sentinel_alive"], false, "{status}");
    let report = disk.json(&["report", "full", "--json"]);
    assert_eq!(report["status"], "interrupted", "{report}");
    assert_eq!(report["partial"], true, "no final report: {report}");
    assert_eq!(report["failure_reason"], listed["failure_reason"]);
    let events = report["events"].as_array().expect("events");
    assert!(
        events.iter().any(|e| e["kind"] == "write_failed"),
        "{events:?}"
    );
    // No partial files: no temporary file, no report file, the reserve given back.
    let state = disk.outside("state");
    assert_eq!(temp_files(&state), Vec::<PathBuf>::new());
    let reports = walk(&state.join("reports"));
    assert!(reports.len() <= 1, "no report file: {reports:?}");
    assert!(!disk.outside("state/runs/full/reserve").exists());
    // The target was left running; once there is room again, resume carries the run on.
    assert!(alive(pid), "the target still lives");
    let before = samples().expect("samples");
    std::fs::remove_file(disk.outside("filler")).expect("make room");
    let mut resumed = disk
        .ls()
        .args(["resume", "full"])
        .stdout(file(&out))
        .stderr(file(&err))
        .spawn()
        .expect("nsenter runs");
    common::wait_for(
        "samples after the resume",
        std::time::Duration::from_secs(20),
        || samples().is_some_and(|n| n >= before + 10),
    );
    let status = disk.json(&["status", "full", "--json"]);
    assert_eq!(status["status"], "running", "{status}");
    assert_eq!(status["sentinel_alive"], true, "{status}");
    assert!(status.get("failure_reason").is_none(), "{status}");
    assert_eq!(disk.json(&["list", "--json"])[0]["status"], "running");
    assert!(alive(pid), "the same target");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(resumed.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let st = resumed.wait().expect("wait");
    assert_eq!(
        st.code(),
        Some(5),
        "{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    assert_eq!(temp_files(&state), Vec::<PathBuf>::new());
}

/// What the three readers say of a run: `status --json`, its `list --json` entry and
/// `report --json`. They must agree on its state, and once it ended, on its verdict and exit code.
fn readers_agree(state: &Path, name: &str, when: &str) -> serde_json::Value {
    let status: serde_json::Value = {
        let o = ls(state)
            .args(["status", name, "--json"])
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(0), "{when}: status: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).expect("status json")
    };
    let list: serde_json::Value = {
        let o = ls(state).args(["list", "--json"]).output().expect("runs");
        assert_eq!(o.status.code(), Some(0), "{when}: list: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).expect("list json")
    };
    let listed = list
        .as_array()
        .and_then(|v| v.iter().find(|r| r["name"] == name))
        .cloned()
        .expect("listed");
    let report = common::report_json(state, name);
    let brief = |v: &serde_json::Value| -> String {
        let keys = [
            "status",
            "verdict",
            "exit_code",
            "failure_reason",
            "partial",
        ];
        keys.iter().map(|k| format!("{k}={} ", v[*k])).collect()
    };
    let said = format!(
        "{when}:\nstatus {}\nlist   {}\nreport {}",
        brief(&status),
        brief(&listed),
        brief(&report)
    );
    assert_eq!(status["status"], listed["status"], "{said}");
    assert_eq!(report["status"], listed["status"], "{said}");
    if listed["status"] != "running" {
        assert_eq!(report["partial"], serde_json::Value::Null, "{said}");
        for k in ["verdict", "exit_code", "failure_reason"] {
            assert_eq!(status[k], listed[k], "{k}: {said}");
            assert_eq!(report[k], listed[k], "{k}: {said}");
        }
        assert_eq!(status["report_file"], listed["report_file"], "{said}");
        assert_eq!(report["report_file"], listed["report_file"], "{said}");
    }
    listed
}

/// The run's report files (not temporary ones) under STATE/reports.
fn report_files(state: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!("leak_sentinel_{name}_");
    std::fs::read_dir(state.join("reports"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_kill_9_while_finishing_leaves_status_store_and_report_agreeing() {
    use std::time::{Duration, Instant};
    let d = tempfile::tempdir().expect("tempdir");
    let state = d.path().join("state");
    // Where to kill: a moment of finishing seen from outside, then a delay. Finishing a spawned
    // target stops it (seen: the target is gone), records the end in the store, writes the
    // report file (seen: it appears), then status.json (seen: it says how the run ended),
    // then the report once more; here it takes some 30 to 70 ms in all.
    #[derive(Debug, Clone, Copy)]
    enum Seen {
        TargetGone,
        ReportFile,
        FinalStatus,
    }
    let plan: [(Seen, u64); 11] = [
        (Seen::TargetGone, 0),
        (Seen::TargetGone, 10_000),
        (Seen::TargetGone, 20_000),
        (Seen::TargetGone, 30_000),
        (Seen::TargetGone, 45_000),
        (Seen::ReportFile, 0),
        (Seen::ReportFile, 1_000),
        (Seen::ReportFile, 3_000),
        (Seen::FinalStatus, 0),
        (Seen::FinalStatus, 2_000),
        (Seen::FinalStatus, 10_000),
    ];
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for (i, (at, delay)) in plan.iter().enumerate() {
        let name = format!("k{i}");
        let mut run = ls(&state)
            .args(quick_run_args(&name))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let status_file = state.join("runs").join(&name).join("status.json");
        common::wait_for("status.json", Duration::from_secs(20), || {
            status_file.exists()
        });
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&status_file).expect("status"))
                .expect("json");
        let pid = doc["pid"].as_i64().expect("pid") as i32;
        let _target = KillPid(pid);
        let reached = || match at {
            Seen::TargetGone => !alive(pid),
            Seen::ReportFile => !report_files(&state, &name).is_empty(),
            Seen::FinalStatus => {
                std::fs::read_to_string(&status_file).is_ok_and(|t| t.contains("completion_time"))
            }
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !reached() && Instant::now() < deadline {
            if run.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        let from = Instant::now();
        while from.elapsed() < Duration::from_micros(*delay) {
            std::hint::spin_loop();
        }
        let _ = run.kill();
        let code = run.wait().expect("wait").code();
        // What the kill left, as the store has it.
        let listed = readers_agree(
            &state,
            &name,
            &format!("{name}: killed {delay} µs after {at:?}"),
        );
        let reports = report_files(&state, &name);
        assert!(reports.len() <= 1, "{name}: {reports:?}");
        let files_left = format!(
            "{}{}",
            if reports.is_empty() {
                "no report"
            } else {
                "report"
            },
            if temp_files(&state).is_empty() {
                ""
            } else {
                ", temp file"
            }
        );
        *seen
            .entry(format!(
                "{at:?}: {} ({files_left}{})",
                listed["status"].as_str().unwrap_or("?"),
                if code.is_some() { ", not killed" } else { "" }
            ))
            .or_default() += 1;
        // The next sentinel of the run (resume) finishes what the killed one left.
        let o = ls(&state).args(["resume", &name]).output().expect("runs");
        let said = format!("{name}: resume: {}", stderr(&o));
        match listed["status"].as_str() {
            Some("running") => assert!(
                matches!(o.status.code(), Some(0) | Some(3) | Some(4)),
                "{said}"
            ),
            _ => {
                assert_eq!(o.status.code(), Some(2), "{said}");
                assert!(stderr(&o).contains("nothing to resume"), "{said}");
            }
        }
        let after = readers_agree(&state, &name, &format!("{name}: after resume"));
        // The end decided before the kill stands (a clean sleep: passed or inconclusive), even
        // when the kill came after its target was stopped.
        assert_eq!(after["status"], "completed", "{name}: {after}");
        assert!(
            after["exit_code"] == 0 || after["exit_code"] == 3,
            "{name}: {after}"
        );
        let reports = report_files(&state, &name);
        assert_eq!(reports.len(), 1, "{name}: one report file: {reports:?}");
        let on_disk: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&reports[0]).expect("report"))
                .expect("json");
        let status_on_disk: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&status_file).expect("status"))
                .expect("json");
        for k in ["status", "verdict", "exit_code"] {
            assert_eq!(on_disk[k], after[k], "{name}: the report file's {k}");
            assert_eq!(status_on_disk[k], after[k], "{name}: status.json's {k}");
        }
        assert_eq!(temp_files(&state), Vec::<PathBuf>::new(), "{name}");
        assert!(!state.join("runs").join(&name).join("reserve").exists());
        assert!(!alive(pid), "{name}: the target was stopped");
    }
    eprintln!("kill -9 while finishing, what each kill left: {seen:?}");
}
