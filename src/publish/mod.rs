//! Publishing a live run where others look: the Prometheus endpoint, webhooks and Grafana
//! annotations; remote write of a run's series to a Prometheus-compatible engine; and the TLS of
//! every request leak-sentinel sends (`scan` uses it too).

pub mod metrics;
pub mod notify;
pub mod pushed;
pub mod remote_write;
pub mod tls;
