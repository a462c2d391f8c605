//! What a live run publishes beyond its own files: the Prometheus endpoint (`--metrics-addr`),
//! webhooks and Grafana annotations (a background worker whose delivery outcomes come back to
//! be recorded as events).

use crate::publish::metrics::Exporter;
use crate::publish::notify::{Note, Notifier, Targets, grafana_token};
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
}

impl Publishers {
    /// Starts the endpoint and the notification worker the settings ask for.
    pub fn start(s: &RunSettings) -> Result<Publishers> {
        let exporter = match &s.metrics_addr {
            Some(addr) => Some(Exporter::start(addr, &s.name, s.profile.name())?),
            None => None,
        };
        let sends = !s.notify.is_empty() || s.grafana_url.is_some();
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
        let notifier = targets.any().then(|| Notifier::start(targets));
        Ok(Publishers { exporter, notifier })
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
