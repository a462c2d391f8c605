//! Memory-map breakdown from /proc/PID/smaps: RSS, PSS, anonymous and swap per region class
//! (heap, anonymous mmaps, file-backed per path, thread stacks, shared memory), and the large
//! anonymous regions by address so that growth can be traced to one region.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bytes of one class or path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Regions counted.
    pub regions: u64,
    /// Virtual size, bytes.
    pub size: u64,
    /// Resident, bytes.
    pub rss: u64,
    /// Proportional, bytes.
    pub pss: u64,
    /// Anonymous, bytes.
    pub anon: u64,
    /// Swapped out, bytes.
    pub swap: u64,
}

impl Totals {
    /// Adds another total.
    pub fn add(&mut self, o: &Totals) {
        self.regions += o.regions;
        self.size += o.size;
        self.rss += o.rss;
        self.pss += o.pss;
        self.anon += o.anon;
        self.swap += o.swap;
    }
}

/// One anonymous region worth tracking (resident ≥ 1 MiB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// Process.
    pub pid: i32,
    /// Start address.
    pub start: u64,
    /// Virtual size, bytes.
    pub size: u64,
    /// Resident, bytes.
    pub rss: u64,
    /// Class.
    pub class: String,
}

/// A snapshot of the tree's memory maps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MapsSummary {
    /// Unix seconds.
    pub t: f64,
    /// Per class: heap, anonymous, stack, thread_stack, file, shared, other.
    pub classes: BTreeMap<String, Totals>,
    /// File-backed totals by path (largest 20 by RSS).
    pub by_path: Vec<(String, Totals)>,
    /// Anonymous/heap regions with ≥ 1 MiB resident.
    pub regions: Vec<Region>,
    /// Total regions read.
    pub region_count: u64,
    /// True when a process vanished mid-read.
    pub partial: bool,
}
