//! What tetherscope tells the outside world: the JSON flow record shared by
//! `tetherscope read`, the flow log and `/api/flows`, and (with the live
//! monitor) the Prometheus exporter.
//!
//! This crate reads the flow table and the classifier; it never touches
//! capture.

#![warn(missing_docs)]

pub mod annotate;
pub mod blind;
pub mod connections;
pub mod facts;
pub mod html;
pub mod metrics;
pub mod novelty;
pub mod page;
pub mod paging;
pub mod record;
pub mod server;
pub mod state;
pub mod timeline;
pub mod triage;
pub mod view;
pub mod view_cache;
pub mod visible;

pub use server::router;
pub use state::Shared;
