//! A sample and its metrics: one timestamped reading of the target, one `f64` per field. The
//! probes fill it, the store keeps it, the gate and the renderers read it. Pure data.

use serde::Serialize;

/// Every field a sample can carry. The order is the column order of the store and of CSV
/// exports; new metrics are appended, never reordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Resident set size summed over the tree, bytes (cheap, every sample).
    RssBytes,
    /// Proportional set size, bytes (smaps_rollup, detail cadence).
    PssBytes,
    /// Unique set size (private clean + dirty), bytes (detail cadence).
    UssBytes,
    /// Swapped-out memory, bytes (detail cadence).
    SwapBytes,
    /// Anonymous memory (heap, anonymous mmaps, stacks), bytes (detail cadence).
    AnonBytes,
    /// File-backed resident memory, bytes (detail cadence).
    FileBytes,
    /// cgroup v2 memory.current, bytes (cgroup targets).
    CgroupMemoryBytes,
    /// Open file descriptors, total (cheap).
    Fds,
    /// Socket FDs (detail cadence).
    FdsSocket,
    /// Pipe FDs (detail cadence).
    FdsPipe,
    /// Regular files, directories and devices (detail cadence).
    FdsFile,
    /// anon_inode FDs: eventfd, eventpoll, timerfd, inotify… (detail cadence).
    FdsAnonInode,
    /// Anything else (memfd, unknown) (detail cadence).
    FdsOther,
    /// Threads summed over the tree (cheap).
    Threads,
    /// Processes in the tree (cheap).
    Processes,
    /// Private memory, bytes: anonymous resident (statm resident − shared, every sample) plus
    /// swapped-out (smaps_rollup, refreshed at the detail cadence), summed over the tree; for a
    /// cgroup its `memory.stat` anon + swap. The default memory gate: shared pages and page cache
    /// grow without any leak.
    RssAnonBytes,
    /// 1 when the target was stopped (SIGSTOP, state T/t) or frozen (cgroup.freeze) at this
    /// sample, else 0: that time is not observed. Never judged.
    TargetStopped,
    /// JVM heap used, all generations, summed over the tree's JVMs, bytes (hsperfdata).
    JvmHeapUsedBytes,
    /// JVM heap committed, bytes.
    JvmHeapCommittedBytes,
    /// JVM live set after GC: the old generation at its floor after an old-space reclaim, bytes;
    /// only at the samples where a JVM reported one (the JVM memory gate).
    JvmLiveBytes,
    /// Private memory outside the committed Java heap (metaspace, thread stacks, code cache,
    /// direct buffers, malloc), bytes: private memory − heap committed (the JVM's other gate).
    OutsideHeapBytes,
    /// JVM metaspace used, bytes.
    JvmMetaspaceBytes,
    /// JVM collections so far, all collectors (a counter).
    JvmGcTotal,
    /// JVM time in collections so far, seconds (a counter).
    JvmGcSecondsTotal,
    /// Descriptors that outlived their group's churn: open longer than any closed descriptor of
    /// the same group (peer, directory, kind) lived (detail cadence, from the FD inventory). The
    /// FD gate when inventories exist: a leaked descriptor survives, a churned one closes.
    FdsSurviving,
}

impl Metric {
    /// All metrics in column order.
    pub const ALL: [Metric; 25] = [
        Metric::RssBytes,
        Metric::PssBytes,
        Metric::UssBytes,
        Metric::SwapBytes,
        Metric::AnonBytes,
        Metric::FileBytes,
        Metric::CgroupMemoryBytes,
        Metric::Fds,
        Metric::FdsSocket,
        Metric::FdsPipe,
        Metric::FdsFile,
        Metric::FdsAnonInode,
        Metric::FdsOther,
        Metric::Threads,
        Metric::Processes,
        Metric::RssAnonBytes,
        Metric::TargetStopped,
        Metric::JvmHeapUsedBytes,
        Metric::JvmHeapCommittedBytes,
        Metric::JvmLiveBytes,
        Metric::OutsideHeapBytes,
        Metric::JvmMetaspaceBytes,
        Metric::JvmGcTotal,
        Metric::JvmGcSecondsTotal,
        Metric::FdsSurviving,
    ];

    /// Column name (also the CSV header and the JSON key).
    pub fn name(self) -> &'static str {
        match self {
            Metric::RssBytes => "rss_bytes",
            Metric::PssBytes => "pss_bytes",
            Metric::UssBytes => "uss_bytes",
            Metric::SwapBytes => "swap_bytes",
            Metric::AnonBytes => "anon_bytes",
            Metric::FileBytes => "file_bytes",
            Metric::CgroupMemoryBytes => "cgroup_memory_bytes",
            Metric::Fds => "fds",
            Metric::FdsSocket => "fds_socket",
            Metric::FdsPipe => "fds_pipe",
            Metric::FdsFile => "fds_file",
            Metric::FdsAnonInode => "fds_anon_inode",
            Metric::FdsOther => "fds_other",
            Metric::Threads => "threads",
            Metric::Processes => "processes",
            Metric::RssAnonBytes => "rss_anon_bytes",
            Metric::TargetStopped => "target_stopped",
            Metric::JvmHeapUsedBytes => "jvm_heap_used_bytes",
            Metric::JvmHeapCommittedBytes => "jvm_heap_committed_bytes",
            Metric::JvmLiveBytes => "jvm_live_after_gc_bytes",
            Metric::OutsideHeapBytes => "outside_heap_bytes",
            Metric::JvmMetaspaceBytes => "jvm_metaspace_bytes",
            Metric::JvmGcTotal => "jvm_gc_total",
            Metric::JvmGcSecondsTotal => "jvm_gc_seconds_total",
            Metric::FdsSurviving => "fds_surviving",
        }
    }

    /// Whether a verdict on this metric means anything: counts of processes, the stopped flag
    /// and the JVM's cumulative counters are information, never judged.
    pub fn judged(self) -> bool {
        !matches!(
            self,
            Metric::Processes
                | Metric::TargetStopped
                | Metric::JvmGcTotal
                | Metric::JvmGcSecondsTotal
        )
    }

    /// Index into [`Sample::values`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How many samples had a reading of each metric (what decides which metrics may gate: see
/// `analyze::gating_names`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readings([usize; Metric::ALL.len()]);

impl Readings {
    /// The readings of `samples`.
    pub fn of(samples: &[Sample]) -> Readings {
        let mut r = Readings::default();
        for s in samples {
            r.push(s);
        }
        r
    }

    /// Counts the readings of one more sample.
    pub fn push(&mut self, s: &Sample) {
        for m in Metric::ALL {
            if s.get(m).is_some() {
                self.0[m.index()] += 1;
            }
        }
    }

    /// How many samples had a reading of `m`.
    pub fn count(&self, m: Metric) -> usize {
        self.0[m.index()]
    }
}

/// One timestamped reading of the target.
///
/// Values are kept as `f64` with NaN for "not read" rather than `Option<f64>` (16 bytes each):
/// a run keeps every sample in memory for its checks, and this halves that (128 bytes a sample,
/// ~2.8 MB for 6 hours at 1 s).
#[derive(Debug, Clone)]
pub struct Sample {
    /// Wall-clock time, Unix seconds.
    pub t: f64,
    values: [f64; Metric::ALL.len()],
}

impl PartialEq for Sample {
    fn eq(&self, other: &Self) -> bool {
        self.t == other.t && Metric::ALL.iter().all(|m| self.get(*m) == other.get(*m))
    }
}

impl Sample {
    /// An empty sample at `t`.
    pub fn at(t: f64) -> Self {
        Sample {
            t,
            values: [f64::NAN; Metric::ALL.len()],
        }
    }

    /// The value of one metric (bytes or count); `None` when not read this time.
    pub fn get(&self, m: Metric) -> Option<f64> {
        let v = self.values[m.index()];
        (!v.is_nan()).then_some(v)
    }

    /// Sets one metric.
    pub fn set(&mut self, m: Metric, v: Option<f64>) {
        self.values[m.index()] = v.unwrap_or(f64::NAN);
    }

    /// Adds to one metric (missing + x = x).
    pub fn add(&mut self, m: Metric, v: f64) {
        let slot = &mut self.values[m.index()];
        *slot = if slot.is_nan() { v } else { *slot + v };
    }
}
