//! Fleet scan cost: 10,000 series × 720 points (6 h at 30 s) loaded into a VictoriaMetrics
//! started here on loopback, scanned in-process; prints scan time and peak memory.
//! `cargo bench --bench scan` (needs Debian's victoria-metrics).

use leak_sentinel::analyze::MetricKind;
use leak_sentinel::fleet::{Scan, scan};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERIES: usize = 10_000;
const POINTS: i64 = 720;
const STEP: i64 = 30;

fn max_rss_mib() -> f64 {
    // SAFETY: getrusage fills the struct we hand it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as f64 / 1024.0
}

fn main() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vm = Command::new("victoria-metrics")
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!("-storageDataPath={}", dir.path().display()))
        .arg("-retentionPeriod=100y")
        .arg("-search.maxPointsPerTimeseries=30000")
        .arg("-search.maxSeries=100000")
        .arg("-search.maxUniqueTimeseries=100000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("victoria-metrics is installed");
    let url = format!("http://127.0.0.1:{port}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into();
    let t0 = Instant::now();
    while agent.get(&format!("{url}/health")).call().is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "victoria-metrics did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let end = (now - 600) / STEP * STEP;
    let start = end - (POINTS - 1) * STEP;
    let t0 = Instant::now();
    for batch in 0..(SERIES / 1000) {
        let mut body = String::new();
        for k in 0..1000 {
            let id = batch * 1000 + k;
            // One in ten leaks 0.5 MiB/min; the rest are flat with noise.
            let leak = if id % 10 == 0 { 0.5 } else { 0.0 };
            let values: Vec<f64> = (0..POINTS)
                .map(|i| {
                    (100.0 + leak * (i * STEP) as f64 / 60.0 + ((i as f64 * 1.7 + id as f64).sin()))
                        * 1_048_576.0
                })
                .map(f64::round)
                .collect();
            let ts: Vec<i64> = (0..POINTS).map(|i| (start + i * STEP) * 1000).collect();
            body.push_str(&serde_json::json!({"metric": {"__name__": "bench_rss_bytes", "instance": format!("host-{id}")}, "values": values, "timestamps": ts}).to_string());
            body.push('\n');
        }
        agent
            .post(&format!("{url}/api/v1/import"))
            .send(body.as_str())
            .expect("import");
    }
    agent
        .get(&format!("{url}/internal/force_flush"))
        .call()
        .expect("flush");
    println!(
        "loaded {SERIES} series × {POINTS} points in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let before = max_rss_mib();
    let spec = Scan {
        url,
        query: "bench_rss_bytes".into(),
        start: start as f64,
        end: end as f64,
        step: STEP as f64,
        threshold: 0.1,
        kind: MetricKind::Memory,
        max_points: 11_000,
        concurrency: 4,
        warmup_s: 0.0,
        ca: None,
    };
    for round in 0..2 {
        let t0 = Instant::now();
        let r = scan(&spec).expect("scan");
        let leaks = r
            .iter()
            .filter(|s| s.result.judgement.verdict.as_str() == "leak")
            .count();
        println!(
            "round {}: scanned {} series in {:.2} s ({leaks} leak, expected {}); peak RSS {:.0} MiB (before scanning {:.0} MiB)",
            round + 1,
            r.len(),
            t0.elapsed().as_secs_f64(),
            SERIES / 10,
            max_rss_mib(),
            before
        );
    }
    let _ = vm.kill();
    let _ = vm.wait();
}
