//! leak-sentinel: soak-test a program and tell, with evidence, whether it leaks.
//!
//! Data flows one way: target → probe → sample → store → gate/detect → verdict → render →
//! publish. The modules form layers; each imports only its own layer or the ones above it in
//! this list (`tests/layers.rs` fails on an import that points the other way, on any import
//! circle between files or modules, and on a core file that touches the system: files, network,
//! processes, environment, clock, threads, terminal, the host's time zone, or a crate that does):
//!
//! | layer | modules | owns |
//! |---|---|---|
//! | core (pure: no I/O, no clock) | `units`, `exit`, `sample`, `settings`, `detect`, `analyze`, `gate`, `observed`, `baseline`, `compare`, `history`, `diagnose`, `attribution`, `gauges`, `thinned` | units and exit codes; a sample and its metrics; validated settings; the detector; judging columns and a run's checks (the gate: checks → outcome); observed time; baselines, comparisons and the nights of a tag (change-points) as data → data; the diagnosis diff; the attribution diff; the target's gauges (selectors, exposition text); a run's series thinned to bounded memory |
//! | edges (OS, database, network) | `clock`, `files`, `recording`, `rundir`, `probe`, `target`, `store`, `publish`, `fleet`, `hook`, `workload`, `profiler` | the injected clock; files and the run directory's lock; reading recordings for `analyze` (files, pipes, procpath's SQLite database); /proc readers; spawned/attached/cgroup targets and signals; the SQLite store; the /metrics server, webhooks and Grafana; PromQL queries; the snapshot hook; built-in workloads; attribution snapshots (jcmd, tracemalloc, V8, heaptrack, pprof); the target's metrics endpoint (`probe::scrape`) |
//! | render (data in, bytes out) | `render` | terminal text, JSON, CSV, HTML/SVG, Grafana files |
//! | session (run / resume) | `session` | the live loop: ticker, sampler, check, diagnosis tracking, publishers, status and final report, a short driver |
//! | commands | `commands`, `cli`, `config`, `schedule` | the command line as typed, its resolution into settings, one module per command family |
//!
//! `main.rs` parses, calls [`commands::main`] and exits with its code.

// core
pub mod analyze;
pub mod attribution;
pub mod baseline;
pub mod compare;
pub mod detect;
pub mod diagnose;
pub mod exit;
pub mod gate;
pub mod gauges;
pub mod history;
pub mod observed;
pub mod sample;
pub mod settings;
pub mod thinned;
pub mod units;
// edges
pub mod clock;
pub mod files;
pub mod fleet;
pub mod hook;
pub mod probe;
pub mod profiler;
pub mod publish;
pub mod recording;
pub mod rundir;
pub mod store;
pub mod target;
pub mod workload;
// render
pub mod render;
// session
pub mod session;
// commands
pub mod cli;
pub mod commands;
pub mod config;
pub mod schedule;
