//! Attribution during a run (`--attribute`): the baseline snapshot right after warm-up, taken on
//! a thread of its own so sampling never waits for it (a class histogram or a tracemalloc
//! snapshot takes from a fraction of a second to many), stored with the run (so `resume` keeps
//! it); the second snapshot when the run ends, while the target still runs, diffed into the
//! report's `attribution`. Every failure is a one-line note: attribution never fails a run and
//! never changes its verdict.

use super::attribution_state::KIND;
use super::driver::Session;
use crate::attribution::{Attribution, Snapshot};
use crate::clock::Clock;
use crate::diagnose::Runtime;
use crate::profiler::{Place, pick_process, usable};
use crate::target::TargetKind;
use anyhow::Result;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

impl<C: Clock> Session<'_, C> {
    /// The run's attribution directory (absolute when it exists).
    fn attribution_dir(&self) -> PathBuf {
        let d = crate::rundir::run_dir(self.state, &self.s.name).join(crate::profiler::python::DIR);
        std::path::absolute(&d).unwrap_or(d)
    }

    /// The runtime attribution works with, once the target's is known: Go when the run names a
    /// heap profile (`--pprof`: the user said where to read it, whatever the detection saw),
    /// else the detected one.
    fn attribution_runtime(&self) -> Option<Runtime> {
        let rt = self.diag.runtime()?;
        Some(if self.s.pprof.is_some() {
            Runtime::Go
        } else {
            rt
        })
    }

    /// Where to take a snapshot now: the first process of the tree (the root first) running
    /// the target's runtime; a one-line note when there is none or no mechanism for it.
    fn attribution_place(&self, rt: Runtime) -> Result<Place, String> {
        usable(rt, self.s.pprof.as_deref())?;
        let mut pids = self.target.pids();
        if let Some(root) = self.target.info.pid {
            pids.retain(|p| *p != root);
            pids.insert(0, root);
        }
        let pid = pick_process(&pids, rt)
            .ok_or_else(|| format!("no {} process in the target's tree now", rt.name()))?;
        Ok(Place {
            pid,
            runtime: rt,
            dir: self.attribution_dir(),
            spawned: self.target.info.kind == TargetKind::Spawn,
            pprof: self.s.pprof.clone(),
            ca_file: self.s.ca_file.clone(),
        })
    }

    fn attribution_limit(&self) -> Duration {
        Duration::from_secs_f64(self.s.attribute_timeout_s.max(1.0))
    }

    /// After each sample: collects a baseline that finished, primes a JVM during warm-up, and
    /// starts the baseline once warm-up is over and the runtime is known.
    pub(super) fn attribution_tick(&mut self) {
        if !self.s.attribute {
            return;
        }
        if let Some(rx) = &self.attrib.pending {
            match rx.try_recv() {
                Ok(r) => {
                    self.attrib.pending = None;
                    self.baseline_taken(r);
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.attrib.pending = None;
                    self.attrib.note =
                        Some("the baseline snapshot was lost (its thread ended)".into());
                }
            }
        }
        let Some(rt) = self.attribution_runtime() else {
            return;
        };
        let now = self.now();
        let has_mechanism = usable(rt, self.s.pprof.as_deref()).is_ok();
        if !self.attrib.primed && now < self.warmup_end() && has_mechanism {
            self.prime(rt);
        }
        if let Some(rx) = &self.attrib.priming {
            match rx.try_recv() {
                Err(mpsc::TryRecvError::Empty) => return,
                _ => self.attrib.priming = None,
            }
        }
        if self.attrib.asked || now < self.warmup_end() {
            return;
        }
        self.attrib.asked = true;
        match self.attribution_place(rt) {
            Ok(place) => {
                let (tx, rx) = mpsc::channel();
                let limit = self.attribution_limit();
                let spawned = std::thread::Builder::new()
                    .name("attribution".into())
                    .spawn(move || {
                        let _ = tx.send(crate::profiler::snapshot(&place, "baseline", now, limit));
                    });
                match spawned {
                    Ok(_) => self.attrib.pending = Some(rx),
                    Err(e) => {
                        self.attrib.note = Some(format!("cannot start the baseline snapshot: {e}"))
                    }
                }
            }
            Err(note) => self.attrib.note = Some(note),
        }
        if let Some(n) = self.attrib.note.clone() {
            self.warn_once("attribution", &format!("attribution: {n}"));
        }
    }

    /// Primes the target during warm-up (see [`crate::profiler::prime`]) once it is ready for
    /// a snapshot, on a thread; the baseline waits for it.
    fn prime(&mut self, rt: Runtime) {
        let Ok(place) = self.attribution_place(rt) else {
            return;
        };
        // Not before it is ready (a JVM handling SIGQUIT, …): tried again at the next sample.
        if !crate::profiler::ready(&place) {
            return;
        }
        self.attrib.primed = true;
        let limit = self.attribution_limit();
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("attribution-prime".into())
            .spawn(move || {
                crate::profiler::prime(&place, limit);
                let _ = tx.send(());
            });
        if spawned.is_ok() {
            self.attrib.priming = Some(rx);
        }
    }

    fn baseline_taken(&mut self, r: Result<Snapshot>) {
        match r {
            Ok(snap) => {
                let stored = serde_json::to_string(&snap)
                    .map_err(anyhow::Error::from)
                    .and_then(|j| self.store.append_snapshot(self.run_id, snap.t, KIND, &j));
                if let Err(e) = stored {
                    self.view.log(&format!(
                        "warning: attribution baseline not recorded: {e:#}"
                    ));
                }
                self.view.log(&format!(
                    "{}: attribution baseline taken by {} of PID {} ({} sites)",
                    self.s.name,
                    snap.mechanism,
                    snap.pid,
                    snap.entries.len()
                ));
                self.attrib.baseline = Some(snap);
            }
            Err(e) => {
                let n = crate::exit::one_line(&e);
                self.warn_once("attribution", &format!("attribution: {n}"));
                self.attrib.note = Some(n);
            }
        }
    }

    /// The attribution at the end of the run (`None` without `--attribute`): the second
    /// snapshot while the target still runs (`alive`), diffed with the baseline.
    pub(super) fn attribution(&mut self, now: f64, alive: bool) -> Option<Attribution> {
        if !self.s.attribute {
            return None;
        }
        let threshold = self.s.memory_threshold * crate::units::MIB;
        if let Some(rx) = self.attrib.pending.take() {
            match rx.recv_timeout(self.attribution_limit()) {
                Ok(r) => self.baseline_taken(r),
                Err(_) => self.attrib.note = Some("the baseline snapshot did not finish".into()),
            }
        }
        let rt = self.attribution_runtime().unwrap_or(Runtime::Native);
        let usable = usable(rt, self.s.pprof.as_deref());
        let mech = *usable.as_ref().unwrap_or(&"none");
        let Some(base) = self.attrib.baseline.clone() else {
            let note = self.attrib.note.clone().unwrap_or_else(|| match usable {
                Err(why) => why,
                Ok(_) => "the run ended before the end of warm-up: no baseline snapshot".into(),
            });
            return Some(Attribution::failed(mech, note, threshold));
        };
        let mech = base.mechanism.clone();
        if !alive {
            return Some(Attribution::failed(
                &mech,
                "the target was gone at the end: no second snapshot".into(),
                threshold,
            ));
        }
        let Some(rt) = crate::profiler::runtime_of(&base.mechanism) else {
            return Some(Attribution::failed(
                &mech,
                format!("unknown mechanism '{mech}' in the stored baseline"),
                threshold,
            ));
        };
        if !self.target.pids().contains(&base.pid) {
            return Some(Attribution::failed(
                &mech,
                format!(
                    "PID {} of the baseline has left the target's tree: no diff",
                    base.pid
                ),
                threshold,
            ));
        }
        let place = Place {
            pid: base.pid,
            runtime: rt,
            dir: self.attribution_dir(),
            spawned: self.target.info.kind == TargetKind::Spawn,
            pprof: self.s.pprof.clone(),
            ca_file: self.s.ca_file.clone(),
        };
        self.view.log(&format!(
            "{}: attribution: second snapshot by {mech}",
            self.s.name
        ));
        let a = match crate::profiler::snapshot(&place, "end", now, self.attribution_limit()) {
            Ok(snap) => Attribution::from_snapshots(&base, &snap, threshold),
            Err(e) => Attribution::failed(&mech, crate::exit::one_line(&e), threshold),
        };
        if let Some(n) = &a.note {
            self.event(
                crate::store::EventKind::Warning,
                &format!("attribution: {n}"),
            );
        }
        Some(a)
    }
}
