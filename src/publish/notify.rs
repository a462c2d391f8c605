//! Notifications that leave the machine — webhooks (`--notify URL`, JSON or Slack-compatible
//! bodies) and Grafana annotations — sent by one background worker with retries and backoff, so
//! a receiver that is down or hangs never stalls sampling. Outcomes come back over a channel and
//! the runner records them as events. The Grafana token is held in memory only: it is never
//! written to the store, a report or a log line.

use super::tls::{self, CaBundle};
use serde_json::{Value, json};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

/// Attempts per request (the first plus retries).
const ATTEMPTS: u32 = 3;
/// Time limit of one attempt.
const TIMEOUT: Duration = Duration::from_secs(5);

pub use crate::settings::NotifyFormat as Format;

/// Where to send.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Webhook URLs.
    pub webhooks: Vec<String>,
    /// Their body format.
    pub format: Option<Format>,
    /// Grafana base URL (`http://grafana:3000`).
    pub grafana_url: Option<String>,
    /// Grafana API token (from `GRAFANA_TOKEN` or a token file; never persisted).
    pub grafana_token: Option<String>,
    /// Certificate authorities trusted beyond the built-in roots (`--ca-file`).
    pub ca: Option<CaBundle>,
}

impl Targets {
    /// Whether anything is configured.
    pub fn any(&self) -> bool {
        !self.webhooks.is_empty() || self.grafana_url.is_some()
    }
}

/// A run event to announce.
#[derive(Debug, Clone)]
pub struct Note {
    /// start, check_failed, completed, failed, interrupted, target_exit.
    pub event: String,
    /// Run name.
    pub run: String,
    /// Profile.
    pub profile: String,
    /// One line for people.
    pub text: String,
    /// Unix seconds.
    pub t: f64,
    /// Extra fields for the JSON body.
    pub extra: Value,
}

enum Job {
    Note(Note),
    Flush(Sender<()>),
}

/// What happened to one delivery (recorded as an event by the runner).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// webhook or grafana.
    pub channel: String,
    /// The event delivered.
    pub event: String,
    /// Delivered (2xx).
    pub ok: bool,
    /// Status or error, attempts used.
    pub detail: String,
}

/// The background sender.
pub struct Notifier {
    jobs: Sender<Job>,
    /// Outcomes to record.
    pub outcomes: Receiver<Outcome>,
}

/// The agent every notification uses: a time limit per attempt, HTTP errors as answers, no
/// redirects — a redirected POST would arrive as a GET without its body (or go to another
/// host), so a 3xx is reported as a failed delivery instead — and the shared TLS setup.
fn agent(ca: Option<&CaBundle>) -> ureq::Agent {
    tls::agent(ca, TIMEOUT)
}

/// `url` with its credentials (`user:password@`) replaced by `***@`, for messages and events.
pub fn redact_url(url: &str) -> String {
    match userinfo(url) {
        Some((start, end)) => format!("{}***{}", &url[..start], &url[end..]),
        None => url.to_string(),
    }
}

/// `text` with every trace of the credentials in `url` removed (the whole userinfo, and the
/// password alone, since an error may quote either).
pub fn redact_in(text: &str, url: &str) -> String {
    let Some((start, end)) = userinfo(url) else {
        return text.to_string();
    };
    let info = &url[start..end];
    let mut out = text.replace(info, "***");
    if let Some((_, password)) = info.split_once(':') {
        if !password.is_empty() {
            out = out.replace(password, "***");
        }
    }
    out
}

/// Byte range of the userinfo (before the `@` of the authority), when there is one.
fn userinfo(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some((start, start + at))
}

fn post(
    agent: &ureq::Agent,
    ca: Option<&CaBundle>,
    url: &str,
    token: Option<&str>,
    method: &str,
    body: &Value,
) -> (bool, String, Option<Value>) {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // Backoff: 0.5 s, 1 s.
            std::thread::sleep(Duration::from_millis(500 << (attempt - 1)));
        }
        let req = match method {
            "PATCH" => agent.patch(url),
            _ => agent.post(url),
        };
        let req = match token {
            Some(t) => req.header("Authorization", &format!("Bearer {t}")),
            None => req,
        };
        match req
            .header("Content-Type", "application/json")
            .send_json(body)
        {
            Ok(mut r) if r.status().is_success() => {
                let v = r.body_mut().read_json::<Value>().ok();
                return (
                    true,
                    format!(
                        "HTTP {} after {} attempt(s)",
                        r.status().as_u16(),
                        attempt + 1
                    ),
                    v,
                );
            }
            Ok(r) if r.status().is_redirection() => {
                // Not a delivery, and asking again gets the same answer.
                let to = r
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .map(|l| format!(" (to {})", redact_url(l)))
                    .unwrap_or_default();
                return (
                    false,
                    redact_in(
                        &format!("HTTP {} redirect not followed{to}", r.status().as_u16()),
                        url,
                    ),
                    None,
                );
            }
            Ok(r) => last = format!("HTTP {}", r.status().as_u16()),
            // The same certificate gets the same judgement: not worth another attempt.
            Err(e) => match tls::untrusted(&e, url, ca) {
                Some(u) => return (false, u.to_string(), None),
                None => last = redact_in(&e.to_string(), url),
            },
        }
    }
    (false, format!("{last} after {ATTEMPTS} attempts"), None)
}

fn webhook_body(n: &Note, f: Format) -> Value {
    match f {
        Format::Slack => json!({"text": format!("leak-sentinel {}: {}", n.run, n.text)}),
        Format::Json => json!({
            "source": "leak-sentinel", "event": n.event, "run": n.run, "profile": n.profile,
            "text": n.text, "time": crate::clock::rfc3339(n.t), "details": n.extra,
        }),
    }
}

impl Notifier {
    /// Starts the worker.
    pub fn start(targets: Targets) -> Notifier {
        let (jobs, rx) = channel::<Job>();
        let (out_tx, outcomes) = channel::<Outcome>();
        std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || {
                let ca = targets.ca.as_ref();
                let agent = agent(ca);
                let mut region: Option<(u64, f64)> = None;
                for job in rx {
                    let n = match job {
                        Job::Note(n) => n,
                        Job::Flush(done) => {
                            let _ = done.send(());
                            continue;
                        }
                    };
                    for url in &targets.webhooks {
                        let body = webhook_body(&n, targets.format.unwrap_or(Format::Json));
                        let (ok, detail, _) = post(&agent, ca, url, None, "POST", &body);
                        let _ = out_tx.send(Outcome { channel: "webhook".into(), event: n.event.clone(), ok, detail });
                    }
                    let Some(base) = &targets.grafana_url else { continue };
                    let base = base.trim_end_matches('/');
                    let token = targets.grafana_token.as_deref();
                    let ms = (n.t * 1000.0) as i64;
                    let tags = json!(["leak-sentinel", n.run, n.profile]);
                    let (ok, detail) = match n.event.as_str() {
                        // The run's region starts as a point and gets its end on completion.
                        "start" => {
                            let body = json!({"time": ms, "tags": tags, "text": n.text});
                            let (ok, d, v) = post(&agent, ca, &format!("{base}/api/annotations"), token, "POST", &body);
                            if let Some(id) = v.and_then(|v| v["id"].as_u64()) {
                                region = Some((id, n.t));
                            }
                            (ok, d)
                        }
                        "completed" | "failed" | "interrupted" | "target_exit" => {
                            let verdict = n.extra["verdict"].as_str().unwrap_or(&n.event).to_string();
                            let mut tags = tags.clone();
                            if let Some(a) = tags.as_array_mut() {
                                a.push(json!(verdict));
                            }
                            let mut results = Vec::new();
                            if let Some((id, _)) = region {
                                let body = json!({"timeEnd": ms, "tags": tags, "text": format!("leak-sentinel {}: {}", n.run, n.text)});
                                results.push(post(&agent, ca, &format!("{base}/api/annotations/{id}"), token, "PATCH", &body));
                            }
                            let body = json!({"time": ms, "tags": tags, "text": n.text});
                            results.push(post(&agent, ca, &format!("{base}/api/annotations"), token, "POST", &body));
                            (
                                results.iter().all(|r| r.0),
                                results.iter().map(|r| r.1.clone()).collect::<Vec<_>>().join("; "),
                            )
                        }
                        _ => {
                            let body = json!({"time": ms, "tags": tags, "text": n.text});
                            let (ok, d, _) = post(&agent, ca, &format!("{base}/api/annotations"), token, "POST", &body);
                            (ok, d)
                        }
                    };
                    let _ = out_tx.send(Outcome { channel: "grafana".into(), event: n.event.clone(), ok, detail });
                }
            })
            .expect("spawning the notification thread");
        Notifier { jobs, outcomes }
    }

    /// Queues a note (never blocks).
    pub fn send(&self, n: Note) {
        let _ = self.jobs.send(Job::Note(n));
    }

    /// Waits up to `limit` for everything queued to be sent (at the end of a run).
    pub fn flush(&self, limit: Duration) -> bool {
        let (tx, rx) = channel();
        if self.jobs.send(Job::Flush(tx)).is_err() {
            return false;
        }
        rx.recv_timeout(limit).is_ok()
    }
}

/// Posts one annotation now (the `annotate` command), returning Grafana's answer.
pub fn annotate(
    url: &str,
    token: Option<&str>,
    text: &str,
    tags: &[String],
    t: f64,
    ca: Option<&CaBundle>,
) -> anyhow::Result<Value> {
    let agent = agent(ca);
    let body = json!({"time": (t * 1000.0) as i64, "tags": tags, "text": text});
    let (ok, detail, v) = post(
        &agent,
        ca,
        &format!("{}/api/annotations", url.trim_end_matches('/')),
        token,
        "POST",
        &body,
    );
    if ok {
        Ok(v.unwrap_or(Value::Null))
    } else {
        Err(anyhow::anyhow!("the annotation was not added: {detail}"))
    }
}

/// The Grafana token: `GRAFANA_TOKEN`, else the first line of `file`.
pub fn grafana_token(file: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    if let Ok(t) = std::env::var("GRAFANA_TOKEN") {
        if !t.trim().is_empty() {
            return Ok(Some(t.trim().to_string()));
        }
    }
    match file {
        Some(p) => {
            let text = crate::files::read_bounded(p, 64 << 10, "Grafana token file")?;
            Ok(text
                .lines()
                .next()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()))
        }
        None => Ok(None),
    }
}
