//! Publishing a live run where others look: the Prometheus endpoint, webhooks and Grafana
//! annotations; and the TLS of every request leak-sentinel sends (`scan` uses it too).

pub mod metrics;
pub mod notify;
pub mod tls;
