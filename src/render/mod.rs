//! Renderers: data in, bytes out. One module per output format; none of them touches the system.

pub mod analysis;
pub mod ci;
pub mod compare;
pub mod grafana;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod report;
pub mod scan;
