//! Flows: from dissected packets to named, counted, bidirectional flows.
//!
//! [`Pipeline::ingest`] is the one code path every packet takes, live or
//! from a file: `(timestamp, link type, wire length, frame bytes)` in, flow
//! table updated. It owns the state only the capture thread touches (DNS
//! answer cache, IP fragment reassembly, decrypt scratch space) and shares
//! the [`FlowTable`] and [`DeviceTable`] with readers such as the exporter.
//!
//! Time is always the packet's timestamp, never the clock, so replaying a
//! capture is deterministic.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod devices;
pub mod dissect;
pub mod dns_cache;
pub mod flow;
pub mod fragments;
pub mod key;
pub mod pipeline;
pub mod reassembly;
pub mod stats;
pub mod table;

pub use devices::{Announced, Device, DeviceTable};
pub use flow::{AppProto, BlindSpot, Ech, Flow, Names, TcpState};
pub use key::{Endpoint, FlowKey, Transport};
pub use pipeline::{Pipeline, PipelineConfig};
pub use stats::Stats;
pub use table::{EvictReason, FlowTable, Timeouts};
pub use tetherscope_wire::ja4::Ja4;

/// Nanoseconds since the Unix epoch, from packet timestamps.
pub type Nanos = u64;

/// One second in [`Nanos`].
pub const SECOND: Nanos = 1_000_000_000;
