//! What attribution (`--attribute`) remembers between samples: the baseline snapshot once taken
//! (or restored from the store on resume), one being taken, and why there is none. The session
//! drives it (`attribution.rs`).

use crate::attribution::Snapshot;
use anyhow::Result;
use std::sync::mpsc;

/// The snapshot kind in the store.
pub(super) const KIND: &str = "attribution";

/// What attribution remembers between samples.
#[derive(Default)]
pub struct AttributionTracker {
    /// The baseline, once taken (or restored from the store).
    pub(super) baseline: Option<Snapshot>,
    /// A baseline being taken.
    pub(super) pending: Option<mpsc::Receiver<Result<Snapshot>>>,
    /// Whether the JVM's attach listener was started during warm-up (see `prime`).
    pub(super) primed: bool,
    /// A priming snapshot under way (the baseline waits for it).
    pub(super) priming: Option<mpsc::Receiver<()>>,
    /// Whether the baseline was asked for (taken, failed or pending).
    pub(super) asked: bool,
    /// Why there is no baseline, when so.
    pub(super) note: Option<String>,
}

impl AttributionTracker {
    /// On resume: the baseline stored by an earlier sentinel of the run.
    pub fn restore(&mut self, store: &crate::store::Store, run_id: i64) -> Result<()> {
        if let Some((_, json)) = store.latest_snapshot(run_id, KIND)? {
            self.baseline = serde_json::from_str(&json).ok();
            self.asked = true;
            self.primed = true;
        }
        Ok(())
    }
}
