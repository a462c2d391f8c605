//! leak-sentinel: soak-test a program and tell, with evidence, whether it leaks.
//!
//! Data flows one way: target → probe → sample → store → detect → verdict → render → publish.
//! The detector ([`detect`]) and the renderers ([`render`]) are pure; only the edges touch the
//! system.

pub mod analyze;
pub mod app;
pub mod cli;
pub mod detect;
pub mod exit;
pub mod render;
pub mod units;
