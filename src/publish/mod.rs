//! Publishing a live run where others look: the Prometheus endpoint, webhooks and Grafana
//! annotations.

pub mod metrics;
pub mod notify;
