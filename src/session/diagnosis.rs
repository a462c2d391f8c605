//! Diagnosis tracking during a run: the FD inventory at the detail cadence (first-seen times,
//! opens and closes into the store), memory-map snapshots (the baseline right after warm-up, then
//! paced by their own cost), the runtime once detected, and the final diagnosis from the baseline
//! and the current state.

use crate::diagnose::fds::{Inventory, Tracker};
use crate::diagnose::maps::MapsSummary;
use crate::diagnose::{Diagnosis, ProcInfo, Runtime};
use crate::sample::{Metric, Sample};
use crate::store::Store;
use crate::target::Target;
use anyhow::Result;
use std::time::Duration;

/// What the diagnosis remembers between samples.
pub struct DiagnosisTracker {
    /// The run in the store.
    run_id: i64,
    /// End of warm-up, wall time (the diagnosis baseline is taken after it).
    warmup_end: f64,
    /// Seconds between detail samples (maps snapshots come every 10 of them at most).
    detail_every_s: f64,
    /// First-seen times of open descriptors.
    tracker: Tracker,
    /// The last FD inventory.
    last_inv: Inventory,
    /// Whether a maps snapshot after warm-up (the diagnosis baseline) exists.
    maps_baseline_taken: bool,
    /// When the last maps snapshot was taken (monotonic) and what it cost.
    last_maps: Option<(Duration, Duration)>,
    /// Runtime of the target, once detected.
    runtime: Option<Runtime>,
}

impl DiagnosisTracker {
    /// A tracker for a new run.
    pub fn new(run_id: i64, warmup_end: f64, detail_every_s: f64) -> DiagnosisTracker {
        DiagnosisTracker {
            run_id,
            warmup_end,
            detail_every_s,
            tracker: Tracker::default(),
            last_inv: Inventory::default(),
            maps_baseline_taken: false,
            last_maps: None,
            runtime: None,
        }
    }

    /// On resume: the open descriptors and snapshots recorded so far.
    pub fn restore(&mut self, store: &Store) -> Result<()> {
        let (run_id, warmup_end) = (self.run_id, self.warmup_end);
        let d = self;
        let open = store.fd_state_at(run_id, f64::MAX)?;
        for (e, t) in &open {
            d.tracker.seed(e, *t);
        }
        for (group, age) in store.fd_churn_ages(run_id)? {
            d.tracker.lived(&group, age);
        }
        d.last_inv = Inventory {
            entries: open.into_iter().map(|(e, _)| e).collect(),
            partial: false,
            ..Inventory::default()
        };
        d.maps_baseline_taken = store
            .latest_snapshot(run_id, "maps")?
            .is_some_and(|(t, _)| t >= warmup_end);
        Ok(())
    }

    /// Takes an FD inventory: kinds into the sample, changes into the store.
    pub fn take_inventory(&mut self, target: &Target, store: &Store, s: &mut Sample) -> Result<()> {
        let mut inv = target.inventory();
        if inv.partial {
            // A process of the last inventory that left the tree (a recycled worker) is not
            // "missed" by this one: it is gone, and so are its descriptors. Without this its
            // inherited descriptors stayed open in the store for as long as inventories kept
            // being partial — and under churn they often are.
            let tracked = target.pids();
            let mut left: Vec<i32> = self
                .last_inv
                .entries
                .iter()
                .map(|e| e.pid)
                .filter(|p| tracked.binary_search(p).is_err() && !inv.gone_pids.contains(p))
                .collect();
            left.sort_unstable();
            left.dedup();
            inv.gone_pids.extend(left);
        }
        if !inv.entries.is_empty() || !inv.partial {
            let mut kinds = [0.0; 5];
            for e in &inv.entries {
                kinds[e.kind.bucket()] += 1.0;
            }
            let metrics = [
                Metric::FdsSocket,
                Metric::FdsPipe,
                Metric::FdsFile,
                Metric::FdsAnonInode,
                Metric::FdsOther,
            ];
            for (m, v) in metrics.into_iter().zip(kinds) {
                s.set(m, Some(v));
            }
        }
        let changes = self.tracker.update(s.t, &inv, &self.last_inv);
        store.append_fd_changes(self.run_id, s.t, &changes.opened, &changes.closed)?;
        // Only a complete inventory counts the survivors: a partial one misses some.
        if !inv.partial {
            s.set(
                Metric::FdsSurviving,
                self.tracker.surviving(&inv, s.t).map(|n| n as f64),
            );
        }
        if inv.partial {
            // Keep what a partial read missed (processes neither read completely nor gone), so
            // it is not reported as newly opened later.
            let missed: Vec<_> = self
                .last_inv
                .entries
                .iter()
                .filter(|e| !inv.knows(e.pid))
                .cloned()
                .collect();
            inv.entries.extend(missed);
        }
        self.last_inv = inv;
        Ok(())
    }

    /// Takes a maps snapshot when one is due: the baseline right after warm-up, then every
    /// 10 detail intervals (and never more often than 100 × its own cost), and `force`d at the
    /// end. `mono` is the session's monotonic clock, `t` the wall time of the snapshot.
    pub fn maybe_maps(
        &mut self,
        target: &mut Target,
        store: &Store,
        t: f64,
        mono: &dyn Fn() -> Duration,
        force: bool,
    ) -> Result<()> {
        let (run_id, detail_every_s) = (self.run_id, self.detail_every_s);
        let after_warmup = t >= self.warmup_end;
        let due = force
            || (after_warmup && !self.maps_baseline_taken)
            || self.last_maps.is_none_or(|(at, cost)| {
                mono().saturating_sub(at)
                    >= Duration::from_secs_f64(10.0 * detail_every_s).max(cost * 100)
            });
        if !due {
            return Ok(());
        }
        let t0 = mono();
        let maps = target.maps(t);
        let t1 = mono();
        self.last_maps = Some((t1, t1.saturating_sub(t0)));
        if maps.region_count == 0 {
            return Ok(());
        }
        store.append_snapshot(run_id, t, "maps", &serde_json::to_string(&maps)?)?;
        // The tree's processes with the maps: the diagnosis names those that appeared since.
        store.append_snapshot(
            run_id,
            t,
            "procs",
            &serde_json::to_string(&target.processes())?,
        )?;
        self.maps_baseline_taken |= after_warmup;
        // Detected again at every snapshot, from what the tree's processes run now (not the
        // spawned argv[0]): a wrapper or shim execs the real program after the first look.
        let mut pids = target.pids();
        if let Some(root) = target.info.pid {
            pids.retain(|p| *p != root);
            pids.insert(0, root);
        }
        if !pids.is_empty() {
            let rt = crate::probe::runtime::detect_tree_runtime(&pids, Some(&maps));
            if self.runtime != Some(rt) {
                self.runtime = Some(rt);
                store.append_snapshot(run_id, t, "runtime", &serde_json::to_string(&rt)?)?;
            }
        }
        Ok(())
    }

    /// Whether the diagnosis baseline (FDs and maps right after warm-up) is still to be taken
    /// at `now`: the next sample is then a detail sample, whatever `--detail-every` says.
    pub fn baseline_due(&self, now: f64) -> bool {
        now >= self.warmup_end && !self.maps_baseline_taken
    }

    /// The target's runtime, once detected.
    pub fn runtime(&self) -> Option<Runtime> {
        self.runtime
    }

    /// Whether the last inventory missed a process that vanished while it was read.
    pub fn partial(&self) -> bool {
        self.last_inv.partial
    }

    /// The diagnosis: baseline at the end of warm-up, current state now (the inventories were
    /// read afresh by the caller when the target is still there).
    /// `procs_now`: the tree's processes now (`None`: the target is gone; the last recorded
    /// list is used).
    pub fn diagnose(
        &mut self,
        store: &Store,
        samples: &[Sample],
        now: f64,
        leaking: &[String],
        procs_now: Option<Vec<ProcInfo>>,
    ) -> Result<Diagnosis> {
        let (run_id, warmup_end) = (self.run_id, self.warmup_end);
        let parse = |j: Option<(f64, String)>| {
            j.and_then(|(_, s)| serde_json::from_str::<MapsSummary>(&s).ok())
        };
        let base = parse(store.baseline_snapshot(run_id, "maps", warmup_end, now)?);
        let procs = |j: Option<(f64, String)>| {
            j.and_then(|(_, s)| serde_json::from_str::<Vec<ProcInfo>>(&s).ok())
        };
        let procs_base = store.baseline_snapshot(run_id, "procs", warmup_end, now)?;
        let procs_t = procs_base.as_ref().map(|(t, _)| *t);
        let procs_before = procs(procs_base);
        let procs_now = match procs_now {
            Some(p) => Some(p),
            None => procs(store.latest_snapshot(run_id, "procs")?),
        };
        let cur = parse(store.latest_snapshot(run_id, "maps")?);
        let base_t = base.as_ref().map_or(warmup_end, |m| m.t);
        let fds_before: Vec<_> = store
            .fd_state_at(run_id, base_t)?
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        // A descriptor counts once it has stayed open across two inventory intervals: one or two
        // looks cannot tell a leaked descriptor from a short-lived worker's passing one (workers
        // living a moment are always met by some inventory). A leak's growth of the last two
        // intervals is all this leaves out.
        let min_age = 2.0 * self.detail_every_s;
        let fds_now: Vec<_> = store
            .fd_state_at(run_id, f64::MAX)?
            .into_iter()
            .filter(|(_, seen)| *seen <= now - min_age)
            .collect();
        let thread_at = |t: f64| {
            samples
                .iter()
                .filter(|s| s.t >= t)
                .find_map(|s| s.get(Metric::Threads))
        };
        let threads = match (
            thread_at(base_t),
            samples.iter().rev().find_map(|s| s.get(Metric::Threads)),
        ) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        };
        if self.runtime.is_none() {
            self.runtime = store
                .latest_snapshot(run_id, "runtime")?
                .and_then(|(_, j)| serde_json::from_str(&j).ok());
        }
        Ok(crate::diagnose::diagnose(&crate::diagnose::Input {
            fds_before: &fds_before,
            fds_now: &fds_now,
            maps_before: base.as_ref(),
            maps_now: cur.as_ref(),
            threads,
            runtime: self.runtime,
            leaking,
            now,
            baseline_t: Some(base_t),
            partial: self.last_inv.partial || cur.as_ref().is_some_and(|m| m.partial),
            procs: procs_before.as_deref().zip(procs_now.as_deref()),
            procs_t,
            jvm_live: {
                let live = |s: &Sample| s.get(Metric::JvmLiveBytes);
                samples
                    .iter()
                    .filter(|s| s.t >= warmup_end)
                    .find_map(live)
                    .zip(samples.iter().rev().find_map(live))
            },
        }))
    }
}
