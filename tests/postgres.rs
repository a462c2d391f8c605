//! A real PostgreSQL server (Debian's package, started here on loopback as the `postgres` user)
//! soak-tested as its users would: under pgbench its tree's RSS climbs as backends touch shared
//! buffers, but its private memory does not, so the run never fails; a client that opens a
//! connection every second and never closes it fails the run, and the report names the new
//! backends.

mod common;

use common::{bin, free_port, report_json, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The directory of the server's programs (initdb, postgres, pgbench).
fn pg_bin() -> PathBuf {
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(base)
        .expect("PostgreSQL is installed (.ci/run installs the postgresql package)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("postgres").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("a PostgreSQL server under /usr/lib/postgresql")
}

/// A command run as the `postgres` user (the server refuses to run as root).
fn as_postgres(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=postgres",
        "--regid=postgres",
        "--clear-groups",
        "--",
    ])
    .arg(program);
    c
}

/// A server in a temporary directory; stopped (fast shutdown) when dropped.
struct Server {
    _dir: tempfile::TempDir,
    child: std::process::Child,
    port: u16,
}

impl Server {
    fn start() -> Server {
        let bin = pg_bin();
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir(&sock).expect("socket dir");
        let own = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(own.success());
        let init = as_postgres(&bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .stdout(Stdio::null())
            .status()
            .expect("initdb");
        assert!(init.success(), "initdb failed");
        let port = free_port();
        let child = as_postgres(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&sock)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args([
                "-c",
                "shared_buffers=256MB",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres");
        let s = Server {
            _dir: dir,
            child,
            port,
        };
        wait_for(
            "the server to accept connections",
            Duration::from_secs(60),
            || {
                Command::new("pg_isready")
                    .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                    .status()
                    .is_ok_and(|st| st.success())
            },
        );
        s
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn pgbench(&self) -> Command {
        let mut c = as_postgres(&pg_bin().join("pgbench"));
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ]);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGINT: fast shutdown (backends are told to exit, the server waits for them).
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let _ = self.child.wait();
    }
}

fn soak(state: &Path, name: &str, pid: &str, warmup: &str, duration: &str) -> std::process::Output {
    Command::new(bin())
        .arg("--state-dir")
        .arg(state)
        .args(["run", "--name", name, "--plain", "--pid", pid])
        .args([
            "--warmup",
            warmup,
            "--check-every",
            "5s",
            "--sample-every",
            "500ms",
        ])
        .args(["--detail-every", "2s", "--duration", duration])
        .output()
        .expect("runs")
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_clean_server_under_pgbench_never_fails() {
    let server = Server::start();
    let init = server
        .pgbench()
        .args(["-i", "-s", "10"])
        .status()
        .expect("pgbench -i");
    assert!(init.success(), "pgbench -i failed");
    // A server soaked in production has long touched every table: a first pass of the load
    // fills pgbench_history and the HOT updates, and VACUUM then creates the free-space and
    // visibility maps of every table. Without it, each backend opens a table's new map when
    // autovacuum first creates it (+1 FD in every backend at once, a fill, not a leak).
    let warm = server
        .pgbench()
        .args(["-c", "8", "-j", "2", "-T", "8"])
        .status()
        .expect("pgbench warm pass");
    assert!(warm.success(), "pgbench warm pass failed");
    let vacuum = as_postgres(Path::new("/usr/bin/psql"))
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-U", "postgres", "-qAt", "-c", "VACUUM"])
        .stdout(Stdio::null())
        .status()
        .expect("psql VACUUM");
    assert!(vacuum.success(), "VACUUM failed");
    let mut load = common::Kill(
        server
            .pgbench()
            .args(["-c", "8", "-j", "2", "-T", "70", "-P", "60"])
            .spawn()
            .expect("pgbench"),
    );
    let state = tempfile::tempdir().expect("tempdir");
    let out = soak(state.path(), "pg-clean", &server.pid(), "15s", "40s");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "a clean server must pass or end inconclusive:\n{text}"
    );
    let r = report_json(state.path(), "pg-clean");
    assert_eq!(r["memory_gate"]["metric"], "rss_anon_bytes");
    assert_ne!(
        r["metrics"]["rss_anon_bytes"]["verdict"], "leak",
        "{}",
        r["metrics"]
    );
    let _ = load.0.kill();
    let _ = load.0.wait();
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn connections_never_closed_fail_the_run_and_name_the_backends() {
    let server = Server::start();
    let port = server.port.to_string();
    // One new connection a second, each held open by a sleeping query.
    let opener = format!(
        "while :; do psql -h 127.0.0.1 -p {port} -U postgres -qAt -c 'select pg_sleep(600)' >/dev/null 2>&1 & sleep 1; done"
    );
    let mut clients = common::Kill(
        Command::new("setsid")
            .args(["sh", "-c", &opener])
            .stdout(Stdio::null())
            .spawn()
            .expect("clients"),
    );
    let state = tempfile::tempdir().expect("tempdir");
    let out = soak(state.path(), "pg-leak", &server.pid(), "4s", "60s");
    // The clients' process group (the loop and its psql children).
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(clients.0.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = clients.0.wait();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let r = report_json(state.path(), "pg-leak");
    let d = r["diagnosis"].to_string();
    assert!(
        d.contains("new processes") && d.contains("postgres: postgres postgres"),
        "the diagnosis names the growing backends: {d}"
    );
}
