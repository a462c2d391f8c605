//! leak-sentinel: soak-test a program and tell, with evidence, whether it leaks.
//!
//! Data flows one way: target → probe → sample → store → detect → verdict → render → publish.
//! The detector ([`detect`]) and the renderers ([`render`]) are pure; only the edges touch the
//! system.

pub mod analyze;
pub mod app;
pub mod baseline;
pub mod cli;
pub mod compare;
pub mod config;
pub mod demo;
pub mod detect;
pub mod diagnose;
pub mod exit;
pub mod fleet;
pub mod health;
pub mod probe;
pub mod publish;
pub mod render;
pub mod report_data;
pub mod runner;
pub mod schedule;
pub mod store;
pub mod target;
pub mod units;
pub mod workload;
