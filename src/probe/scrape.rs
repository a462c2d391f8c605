//! Reading the target's own metrics endpoint (`--target-metrics URL`) in a thread of its own:
//! a slow or dead endpoint must never delay a sample of /proc. The thread reads the endpoint
//! every sample interval (its answer bounded to [`gauges::MAX_BODY`], each request to
//! [`REQUEST_TIMEOUT`]) and keeps the latest reading; each sample takes the reading that came
//! since the one before, if any, and records it at the sample's time.

use crate::gauges::{self, GaugeSpec};
use crate::publish::tls::{self, CaBundle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest one read of the endpoint may take, all included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the thread last read.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// Each gauge's value (`None`: the endpoint has no such series).
    Values(Vec<Option<f64>>),
    /// Why the endpoint could not be read, in one line.
    Failed(String),
}

/// The reading thread; stopped and joined when dropped.
pub struct Scraper {
    latest: Arc<Mutex<Option<Reading>>>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Scraper {
    /// Starts reading `url` every `every` for `specs`.
    pub fn start(
        url: &str,
        specs: Vec<GaugeSpec>,
        every: Duration,
        ca: Option<&CaBundle>,
    ) -> std::io::Result<Scraper> {
        let latest = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let agent = tls::agent(ca, REQUEST_TIMEOUT.min(every.max(Duration::from_secs(1))));
        let (l, st, url) = (latest.clone(), stop.clone(), url.to_string());
        let every = every.max(Duration::from_millis(100));
        let handle = std::thread::Builder::new()
            .name("target-metrics".into())
            .spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let r = match fetch(&agent, &url) {
                        Ok(text) => Reading::Values(gauges::read_values(&text, &specs)),
                        Err(e) => Reading::Failed(e),
                    };
                    if let Ok(mut g) = l.lock() {
                        *g = Some(r);
                    }
                    // Sleep out the interval in short steps, so a stop is quick.
                    while !st.load(Ordering::Relaxed) && started.elapsed() < every {
                        std::thread::sleep(
                            (every.saturating_sub(started.elapsed()))
                                .min(Duration::from_millis(50)),
                        );
                    }
                }
            })?;
        Ok(Scraper {
            latest,
            stop,
            handle: Some(handle),
        })
    }

    /// The reading that came since the last call, if any.
    pub fn take(&self) -> Option<Reading> {
        self.latest.lock().ok()?.take()
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The endpoint's page as text, or why not (credentials in the URL never shown).
pub fn fetch(agent: &ureq::Agent, url: &str) -> Result<String, String> {
    let shown = crate::publish::notify::redact_url(url);
    let mut resp = agent
        .get(url)
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.9,*/*;q=0.1",
        )
        .call()
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("{shown} answered HTTP {}", status.as_u16()));
    }
    let (body, over) = tls::body_bounded(&mut resp, gauges::MAX_BODY)
        .map_err(|e| format!("reading {shown}: {e}"))?;
    if over {
        return Err(format!(
            "the page of {shown} is larger than {} MiB: not read",
            gauges::MAX_BODY >> 20
        ));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Checks a `--target-metrics` URL: http or https, a host, no fragment.
pub fn validate_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("--target-metrics '{url}': the URL must start with http:// or https://")
        })?;
    let host = rest.split(['/', '?']).next().unwrap_or("");
    if host.is_empty() || url.contains(char::is_whitespace) || url.contains('#') {
        return Err(format!(
            "--target-metrics '{}': not a URL of a metrics endpoint (e.g. http://127.0.0.1:9100/metrics)",
            crate::publish::notify::redact_url(url)
        ));
    }
    // The URL is stored with the run's settings (and shown by `report`): no secrets in it.
    if host.contains('@') {
        return Err(
            "--target-metrics: the URL carries credentials, which would be stored with the run: serve the metrics on a loopback or private address instead"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves each of `answers` (status line and body) to one connection, in order.
    fn serve(answers: Vec<(&'static str, String)>) -> String {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        std::thread::spawn(move || {
            for (status, body) in answers {
                let Ok((mut c, _)) = l.accept() else { return };
                let mut head = [0u8; 4096];
                let _ = c.read(&mut head);
                let _ = write!(
                    c,
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = c.write_all(body.as_bytes());
            }
        });
        format!("http://{addr}/metrics")
    }

    #[test]
    fn a_page_is_read_and_errors_are_one_line() {
        let t = gauges::KindThresholds {
            memory: 1.0,
            fds: 1.0,
            threads: 1.0,
        };
        let specs = gauges::specs(&["go_goroutines".into()], t).expect("specs");
        let big = "x".repeat(gauges::MAX_BODY as usize + 10);
        let url = serve(vec![
            (
                "200 OK",
                "# TYPE go_goroutines gauge\ngo_goroutines 17\n".into(),
            ),
            ("503 Service Unavailable", "down".into()),
            ("200 OK", big),
        ]);
        let agent = tls::agent(None, REQUEST_TIMEOUT);
        let page = fetch(&agent, &url).expect("read");
        assert_eq!(gauges::read_values(&page, &specs), vec![Some(17.0)]);
        let e = fetch(&agent, &url).expect_err("503");
        assert!(e.contains("HTTP 503") && !e.contains('\n'), "{e}");
        let e = fetch(&agent, &url).expect_err("too big");
        assert!(e.contains("larger than"), "{e}");
        // Nothing listens there any more: a one-line error, not a hang.
        let e = fetch(&agent, &url).expect_err("closed");
        assert!(e.starts_with("cannot read"), "{e}");
    }

    #[test]
    fn the_thread_keeps_the_latest_reading_until_taken() {
        let t = gauges::KindThresholds {
            memory: 1.0,
            fds: 1.0,
            threads: 1.0,
        };
        let specs = gauges::specs(&["go_goroutines".into()], t).expect("specs");
        let url = serve(vec![("200 OK", "go_goroutines 5\n".into())]);
        let sc = Scraper::start(&url, specs, Duration::from_secs(60), None).expect("starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        let first = loop {
            if let Some(r) = sc.take() {
                break r;
            }
            assert!(Instant::now() < deadline, "no reading within 10 s");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(first, Reading::Values(vec![Some(5.0)]));
        assert_eq!(sc.take(), None, "a reading is taken once");
        // Dropped mid-interval: stops without waiting the minute out.
        let t0 = Instant::now();
        drop(sc);
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn urls_of_endpoints_are_checked() {
        assert!(validate_url("http://127.0.0.1:9100/metrics").is_ok());
        assert!(validate_url("https://svc.internal/metrics?x=1").is_ok());
        for bad in [
            "127.0.0.1:9100",
            "ftp://x/metrics",
            "http:///metrics",
            "http://a b/",
            "http://x/#m",
            "http://user:pw@x/metrics",
        ] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
    }
}
