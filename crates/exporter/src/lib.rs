//! The live monitor's outside: Prometheus metrics with the bounded label
//! set, the HTTP routes (the page, `/api/flows`, `/api/view`, the baseline
//! API) and triage.
//!
//! Flows are annotated by `tetherscope-record` and drawn by
//! `tetherscope-view`; both are re-exported here under their old paths
//! (`record`, `facts`, `view`, `html`, ...). This crate reads the flow table
//! and the classifier; it never touches capture, and neither lower crate
//! imports it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clients;
pub mod connections;
pub mod device_info;
pub mod metrics;
pub mod page;
pub mod paging;
pub mod server;
pub mod state;
pub mod triage;
pub mod view_cache;

pub use tetherscope_record::{annotate, blind, facts, novelty, record, visible};
pub use tetherscope_view::{html, identity, timeline, view};

pub use server::router;
pub use state::Shared;
