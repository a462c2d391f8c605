//! The JVMs of a target tree, read through their hsperfdata counters ([`super::hsperf`]): found
//! when a `java` process joins the tree, read with one pread per JVM per sample, summed over the
//! tree. A JVM whose counters cannot be read (`-XX:-UsePerfData`, an unreadable file) gets a
//! one-line note and is judged by private memory like any process.

use super::hsperf::{HsperfError, JvmPerf, LiveSetTracker};
use std::collections::HashMap;
use std::io::Read;

/// How many looks a starting JVM is given to publish its file (at most one a second, see
/// [`Jvms::retry_due`]: about a minute).
const OPEN_TRIES: u32 = 60;

/// One sample's JVM figures, summed over the tree's JVMs, bytes (GC time in seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JvmReading {
    /// Heap used (all generations).
    pub heap_used: f64,
    /// Heap committed.
    pub heap_committed: f64,
    /// The part of `heap_committed` that is private memory: all of it but for collectors that
    /// map the heap from shared memory (ZGC multi-maps it from a memfd), whose heap is not in
    /// private memory at all and must not be subtracted from it.
    pub heap_committed_private: f64,
    /// Live set after GC (old generation at its floor after the last old-space reclaim), when a
    /// JVM reported a new one at this sample: the sum of every JVM's latest.
    pub live: Option<f64>,
    /// Metaspace used.
    pub metaspace: f64,
    /// Collections so far, all collectors.
    pub gc_count: f64,
    /// Time in collections so far, seconds.
    pub gc_seconds: f64,
}

struct Jvm {
    start: u64,
    perf: JvmPerf,
    tracker: LiveSetTracker,
    /// The latest live set, bytes.
    live: Option<u64>,
}

/// The tree's JVMs.
#[derive(Default)]
pub struct Jvms {
    open: HashMap<i32, Jvm>,
    /// (PID, start) of java processes not open yet, with the tries left.
    pending: HashMap<(i32, u64), u32>,
    /// (PID, start) given up on.
    failed: Vec<(i32, u64)>,
    /// Live-set points come only from full collections the sentinel asked for
    /// ([`Jvms::full_gc_done`]), not from the JVMs' own reclaims: one kind of floor per run.
    floors_only: bool,
    /// A requested full collection finished since the last sample: its floor is a new point.
    fresh_floor: bool,
    /// When JVMs were last looked for (seconds, the sample clock).
    last_look: Option<f64>,
    /// (PID, start) found not to be `java` since the last full look ([`Jvms::discover`] with
    /// `full`): not read again at every sample. A full look reads them again, so a wrapper that
    /// execs java later is still found.
    not_java: std::collections::HashSet<(i32, u64)>,
}

/// Whether `/proc/PID/comm` says `java` (the launcher keeps that name).
fn is_java(pid: i32) -> bool {
    let Ok(f) = std::fs::File::open(format!("/proc/{pid}/comm")) else {
        return false;
    };
    let mut s = String::new();
    f.take(64).read_to_string(&mut s).is_ok() && s.trim() == "java"
}

impl Jvms {
    /// Looks at the tree's processes `(PID, start time)`: opens the counters of new JVMs, forgets
    /// those that left. Returns one-line notes for JVMs whose counters cannot be read.
    pub fn discover(&mut self, procs: &[(i32, u64)], t: f64, full: bool) -> Vec<String> {
        self.last_look = Some(t);
        if full {
            self.not_java.clear();
        }
        let mut notes = Vec::new();
        self.open
            .retain(|pid, j| procs.iter().any(|(p, s)| p == pid && *s == j.start));
        for &(pid, start) in procs {
            if self.open.get(&pid).is_some_and(|j| j.start == start)
                || self.failed.contains(&(pid, start))
            {
                continue;
            }
            if self.not_java.contains(&(pid, start)) {
                continue;
            }
            let tries = match self.pending.get(&(pid, start)) {
                Some(t) => *t,
                None if is_java(pid) => OPEN_TRIES,
                None => {
                    self.not_java.insert((pid, start));
                    continue;
                }
            };
            match JvmPerf::open(pid) {
                Ok(perf) => {
                    self.pending.remove(&(pid, start));
                    self.open.insert(
                        pid,
                        Jvm {
                            start,
                            perf,
                            tracker: LiveSetTracker::new(),
                            live: None,
                        },
                    );
                }
                // A missing file may still appear while the JVM starts; one that a flag disables
                // never will: say so at once.
                Err(e)
                    if (e.is_transient() || matches!(e, HsperfError::NotFound { .. }))
                        && tries > 1 =>
                {
                    self.pending.insert((pid, start), tries - 1);
                }
                Err(e) => {
                    self.pending.remove(&(pid, start));
                    self.failed.push((pid, start));
                    notes.push(note(pid, &e));
                }
            }
        }
        self.pending
            .retain(|(pid, start), _| procs.iter().any(|(p, s)| p == pid && s == start));
        self.not_java
            .retain(|(pid, start)| procs.iter().any(|(p, s)| p == pid && s == start));
        notes
    }

    /// The full collection asked of every JVM (see `--jvm-gc-before-check`) has finished: the old
    /// generation read now is each JVM's live set, the point of the next sample. From the first
    /// call on, the JVMs' own reclaims no longer make points (their floors lie higher: a young
    /// collection leaves garbage in the old generation).
    pub fn full_gc_done(&mut self) {
        self.floors_only = true;
        for j in self.open.values_mut() {
            if let Ok(gc) = j.perf.sample()
                && let Some(old) = gc.old_used_bytes
            {
                j.live = Some(old);
                self.fresh_floor = true;
            }
        }
    }

    /// Whether a starting JVM waits for another look at `t`: a second after the last one. Between
    /// the full listings of the tree, new processes are found at every sample and a JVM starts
    /// publishing its counters within seconds, so it is looked at sooner than the next listing.
    pub fn retry_due(&self, t: f64) -> bool {
        !self.pending.is_empty() && self.last_look.is_none_or(|l| t - l >= 1.0)
    }

    /// The PIDs of the JVMs being read.
    pub fn pids(&self) -> Vec<i32> {
        let mut p: Vec<i32> = self.open.keys().copied().collect();
        p.sort_unstable();
        p
    }

    /// Whether any JVM is being read.
    pub fn any(&self) -> bool {
        !self.open.is_empty()
    }

    /// Reads every JVM (one pread each) at time `t` (seconds); `None` without JVMs. A JVM whose
    /// read fails this time costs its figures in this sample only.
    pub fn sample(&mut self, t: f64) -> Option<JvmReading> {
        if self.open.is_empty() {
            return None;
        }
        let mut r = JvmReading::default();
        let mut new_live = false;
        for j in self.open.values_mut() {
            let Ok(gc) = j.perf.sample() else {
                continue;
            };
            let n = |v: Option<u64>| v.unwrap_or(0) as f64;
            r.heap_used += n(gc.heap_used_bytes);
            r.heap_committed += n(gc.heap_committed_bytes);
            if !heap_is_shared(&gc) {
                r.heap_committed_private += n(gc.heap_committed_bytes);
            }
            r.metaspace += n(gc.metaspace_used_bytes);
            r.gc_count += n(gc.total_invocations());
            r.gc_seconds += gc.total_gc_time_s().unwrap_or(0.0);
            if let Some(p) = j.tracker.observe(t, &gc)
                && !self.floors_only
            {
                j.live = Some(p.old_used_bytes);
                new_live = true;
            }
        }
        new_live |= std::mem::take(&mut self.fresh_floor);
        if new_live {
            r.live = Some(self.open.values().filter_map(|j| j.live).sum::<u64>() as f64);
        }
        Some(r)
    }
}

/// Whether the JVM's collector maps the heap from shared memory: ZGC (its collectors are named
/// "Z …" or "ZGC …") keeps the heap in a memfd mapped several times, so it is shared, not private.
fn heap_is_shared(gc: &super::hsperf::JvmGc) -> bool {
    gc.collectors
        .iter()
        .any(|c| c.name.starts_with("Z ") || c.name.starts_with("ZGC"))
}

fn note(pid: i32, e: &HsperfError) -> String {
    format!(
        "JVM PID {pid}: its counters cannot be read ({e}); its memory is judged by private memory"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_is_not_java_is_left_alone() {
        let mut j = Jvms::default();
        let me = std::process::id() as i32;
        assert!(j.discover(&[(me, 1)], 0.0, true).is_empty());
        assert!(!j.any());
        assert_eq!(j.sample(0.0), None);
        assert!(!is_java(me));
    }
}
