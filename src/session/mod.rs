//! The live session of `run` and `resume`: a short driver that wires the seams below over an
//! injected [`Clock`] — the [`ticker`] paces the loop, [`sampler`] reads and records the target,
//! the check gate ([`crate::gate`]) decides each check, [`diagnosis`] tracks FDs and maps,
//! [`publishers`] feed Prometheus, webhooks and Grafana, [`status`] writes status.json,
//! [`finish`] the final report and [`endings`] keeps the files of an ending in line with the
//! store.

mod attribution;
mod attribution_state;
mod check;
pub mod ci;
pub mod diagnosis;
mod driver;
pub mod endings;
mod finish;
pub mod publishers;
mod sampler;
mod start;
mod status;
pub mod ticker;
pub mod view;

pub use endings::{repair_files, status_from_store};
pub use start::{resume, resume_with, run, run_with};
