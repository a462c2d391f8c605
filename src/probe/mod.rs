//! Readers of /proc and cgroupfs that produce a raw [`Sample`]: one `Option` per field, because
//! a reading that vanished (process gone, file missing) costs that field, not the sample.
//! Derived values (rates, verdicts) are never stored; they are computed when reading back.

pub mod attach;
pub mod cgroup;
pub mod fds;
pub mod hsperf;
pub mod jvm;
pub mod maps;
pub mod process;
pub mod runtime;
pub mod scrape;

pub use crate::sample::{Metric, Sample};
