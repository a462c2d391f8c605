//! The /metrics server survives running out of file descriptors (issue 14: it used to die for
//! good, silently). Alone in its own test binary because it exhausts this process's descriptor
//! table on purpose: a scrape that arrives while `accept` fails with EMFILE is answered once
//! descriptors are free again, and later scrapes work.

use leak_sentinel::publish::metrics::{Exporter, Format};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("answer");
    out
}

fn accept_errors(e: &Exporter) -> f64 {
    e.render_as(Format::Text)
        .lines()
        .find(|l| l.starts_with("leak_sentinel_exporter_errors_total{") && l.contains("\"accept\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("the accept error counter")
}

#[test]
fn metrics_survive_running_out_of_file_descriptors() {
    let e = Exporter::start("127.0.0.1:0", "emfile", "quick").expect("bind");
    assert!(scrape(e.addr).starts_with("HTTP/1.1 200"));
    // A small soft limit makes exhausting the table cheap; restored at the end.
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, 256.min(soft), hard).expect("setrlimit");
    // Twice: the server closes the first scrape's connection a moment after answering it.
    let mut hold = Vec::new();
    for _ in 0..2 {
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => hold.push(f),
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
                Err(e) => panic!("unexpected: {e}"),
            }
            assert!(hold.len() < 10_000, "no descriptor limit in effect");
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    // One slot for the client; the server's accept then has none.
    hold.pop();
    let mut client = TcpStream::connect(e.addr).expect("connect with the last descriptor");
    client
        .write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
        .expect("send");
    let t0 = Instant::now();
    while accept_errors(&e) < 3.0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "accept never failed with EMFILE"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The loop backs off rather than spinning: a handful of retries, not thousands, per second.
    let before = accept_errors(&e);
    std::thread::sleep(Duration::from_secs(1));
    let per_s = accept_errors(&e) - before;
    assert!(per_s <= 20.0, "{per_s} accept retries in one second");
    // The condition clears: the waiting scrape is answered, and new ones are too.
    drop(hold);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).expect("restore");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut out = String::new();
    client
        .read_to_string(&mut out)
        .expect("answer after the outage");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("leak_sentinel_exporter_errors_total"));
    for _ in 0..3 {
        assert!(scrape(e.addr).starts_with("HTTP/1.1 200"));
    }
}
