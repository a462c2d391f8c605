//! leak-sentinel: soak-test a program and tell, with evidence, whether it leaks.
//!
//! Data flows one way: target → probe → sample → store → detect → verdict → render → publish.
//! The detector ([`detect`]) and the renderers ([`render`]) are pure; only the edges touch the
//! system.

pub mod analyze;
pub mod baseline;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod compare;
pub mod config;
pub mod detect;
pub mod diagnose;
pub mod exit;
pub mod files;
pub mod fleet;
pub mod gate;
pub mod probe;
pub mod publish;
pub mod render;
pub mod rundir;
pub mod sample;
pub mod schedule;
pub mod session;
pub mod settings;
pub mod store;
pub mod target;
pub mod units;
pub mod workload;
