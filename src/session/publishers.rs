//! What a live run publishes beyond its own files: the Prometheus endpoint (`--metrics-addr`),
//! webhooks and Grafana annotations (a background worker whose delivery outcomes come back to
//! be recorded as events), and the series pushed by remote write (`--remote-write`, a queue
//! and a sender thread per URL).

use crate::publish::metrics::Exporter;
use crate::publish::notify::{Note, Notifier, Targets, grafana_token};
use crate::publish::pushed;
use crate::publish::remote_write::{self, Endpoint, RemoteWriter, Stats};
use crate::publish::tls::CaBundle;
use crate::settings::RunSettings;
use anyhow::Result;
use serde_json::Value;

/// The run's publishers; each is absent unless configured.
#[derive(Default)]
pub struct Publishers {
    /// The Prometheus endpoint, when `--metrics-addr` is set.
    pub exporter: Option<Exporter>,
    /// Webhooks and Grafana, when configured.
    pub notifier: Option<Notifier>,
    /// One writer per `--remote-write` URL.
    pub remote: Vec<RemoteWriter>,
    /// What was last said of each writer: (failing, dropped).
    remote_said: std::cell::RefCell<Vec<(bool, u64)>>,
}

impl Publishers {
    /// Starts the endpoint and the notification worker the settings ask for.
    pub fn start(
        s: &RunSettings,
        state: &std::path::Path,
        target: &crate::target::TargetInfo,
    ) -> Result<Publishers> {
        let exporter = match &s.metrics_addr {
            Some(addr) => Some(Exporter::start(addr, &s.name, s.profile.name())?),
            None => None,
        };
        let sends = !s.notify.is_empty() || s.grafana_url.is_some() || !s.remote_write.is_empty();
        let targets = Targets {
            webhooks: s.notify.clone(),
            format: s.notify_format,
            grafana_url: s.grafana_url.clone(),
            grafana_token: if s.grafana_url.is_some() {
                grafana_token(s.grafana_token_file.as_deref())?
            } else {
                None
            },
            // Read only when something is sent: resuming a run that sends nothing does not
            // depend on the file still being there.
            ca: if sends {
                CaBundle::load_opt(s.ca_file.as_deref())?
            } else {
                None
            },
        };
        let remote = if s.remote_write.is_empty() {
            Vec::new()
        } else {
            let auth = remote_write::auth_header(
                s.remote_write_token_file.as_deref(),
                s.remote_write_basic_auth_file.as_deref(),
            )
            .map_err(|e| {
                crate::exit::usage(format!("--remote-write: {}", crate::exit::one_line(&e)))
            })?;
            let labels = run_labels(s, target);
            let mut limits = remote_write::outbox::Limits::default();
            if let Some(n) = s.remote_write_queue {
                limits.capacity = n;
            }
            s.remote_write
                .iter()
                .enumerate()
                .map(|(i, url)| {
                    RemoteWriter::start(
                        Endpoint {
                            url: url.clone(),
                            auth: auth.clone(),
                            ca: targets.ca.clone(),
                            progress_file: Some(remote_write::progress_path(state, &s.name, i)),
                        },
                        labels.clone(),
                        limits,
                    )
                })
                .collect()
        };
        let notifier = targets.any().then(|| Notifier::start(targets));
        Ok(Publishers {
            exporter,
            notifier,
            remote_said: std::cell::RefCell::new(vec![(false, 0); remote.len()]),
            remote,
        })
    }

    /// Queues series for every remote-write endpoint (no-op without any), stamped `t`.
    pub fn push(&self, t: f64, values: &[pushed::Value]) {
        for r in &self.remote {
            r.push(t, values);
        }
    }

    /// What changed with the remote-write endpoints since last asked, in words for the log and
    /// the events: a receiver that started failing (once, not at every retry), one that
    /// recovered, points dropped.
    pub fn remote_news(&self) -> Vec<String> {
        let mut said = self.remote_said.borrow_mut();
        let mut out = Vec::new();
        for (st, was) in self.remote_stats().into_iter().zip(said.iter_mut()) {
            let dropped = st.counts.dropped();
            if st.failing && !was.0 {
                out.push(format!(
                    "remote write to {} failing: {}; retrying with backoff, {} points queued (at most {})",
                    st.url,
                    st.last_error.as_deref().unwrap_or("unknown error"),
                    st.queued,
                    st.capacity
                ));
            } else if !st.failing && was.0 {
                out.push(format!("remote write to {}: delivering again", st.url));
            }
            // Said when the first point is lost, then each time the count doubles: a long
            // outage with a full queue says so a few times, not at every sample.
            if dropped > 0 && (was.1 == 0 || dropped >= 2 * was.1) {
                out.push(format!(
                    "remote write to {}: {dropped} points dropped so far ({} for a full queue, {} refused by the receiver{})",
                    st.url,
                    st.counts.dropped_full,
                    st.counts.rejected,
                    st.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
                ));
                was.1 = dropped;
            }
            was.0 = st.failing;
        }
        out
    }

    /// Where each remote-write endpoint stands.
    pub fn remote_stats(&self) -> Vec<Stats> {
        self.remote.iter().map(RemoteWriter::stats).collect()
    }

    /// Queues a notification (no-op without targets); `t` is its wall time.
    pub fn notify(&self, s: &RunSettings, event: &str, text: String, extra: Value, t: f64) {
        if let Some(n) = &self.notifier {
            n.send(Note {
                event: event.into(),
                run: s.name.clone(),
                profile: s.profile.name().into(),
                text,
                t,
                extra,
            });
        }
    }

    /// What the notification worker delivered (or failed to) since last asked, as
    /// (event kind, detail) to record.
    pub fn outcomes(&self) -> Vec<(crate::store::EventKind, String)> {
        let Some(n) = &self.notifier else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while let Ok(o) = n.outcomes.try_recv() {
            let kind = if o.ok {
                crate::store::EventKind::Notified
            } else {
                crate::store::EventKind::NotifyFailed
            };
            out.push((kind, format!("{} {}: {}", o.channel, o.event, o.detail)));
        }
        out
    }
}

/// The labels every pushed series of the run carries: `run`, `tag`, `host`, `target`,
/// `profile`, then the `--label`s (a `--label host=…` replaces the host name).
pub fn run_labels(s: &RunSettings, target: &crate::target::TargetInfo) -> Vec<(String, String)> {
    let host = s
        .labels
        .iter()
        .find(|(k, _)| k == "host")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(host_name);
    let mut out = vec![
        ("run".to_string(), s.name.clone()),
        (
            "tag".to_string(),
            s.tag.clone().unwrap_or_else(|| pushed::tag_of(&s.name)),
        ),
        ("host".to_string(), host),
        ("target".to_string(), target_label(target)),
        ("profile".to_string(), s.profile.name().to_string()),
    ];
    out.extend(s.labels.iter().filter(|(k, _)| k != "host").cloned());
    out
}

/// This machine's host name (the kernel's), `unknown` when it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// What was soak-tested, in a few words that stay the same from one night to the next: the
/// command line (at most 200 characters), the attached process' name, the PID file or the cgroup.
fn target_label(t: &crate::target::TargetInfo) -> String {
    use crate::target::TargetKind;
    let text = match t.kind {
        TargetKind::Cgroup => t
            .cgroup
            .as_ref()
            .map(|c| c.display().to_string())
            .unwrap_or_default(),
        TargetKind::PidFile => t
            .pid_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        _ if !t.command.is_empty() => t.command.join(" "),
        _ => t
            .pid
            .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).ok())
            .map(|c| c.trim().to_string())
            .unwrap_or_default(),
    };
    // One line: a script given with `-c` keeps its words, not its line breaks.
    let text: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    if text.is_empty() {
        "unknown".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Profile;
    use crate::target::{TargetInfo, TargetKind};

    #[test]
    fn run_labels_name_the_run_its_tag_target_and_user_labels() {
        let mut s = RunSettings::defaults("api-20261207", Profile::Quick, vec![]);
        s.labels = vec![
            ("commit".into(), "abc".into()),
            ("host".into(), "runner-7".into()),
        ];
        let t = TargetInfo {
            kind: TargetKind::Spawn,
            command: vec!["python3".into(), "-c".into(), "import x\nx.run()".into()],
            pid: None,
            starttime: None,
            pid_file: None,
            cgroup: None,
            include_children: true,
        };
        let l = run_labels(&s, &t);
        let want: Vec<(String, String)> = [
            ("run", "api-20261207"),
            ("tag", "api"),
            ("host", "runner-7"),
            ("target", "python3 -c import x x.run()"),
            ("profile", "quick"),
            ("commit", "abc"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(l, want);
        s.tag = Some("nightly".into());
        assert_eq!(run_labels(&s, &t)[1].1, "nightly");
    }
}
