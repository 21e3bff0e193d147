//! A flow as every reader tells it, with no I/O and no HTTP: the JSON flow
//! record (`read`, the flow log, `/api/flows`), the classifier's facts about
//! a flow, the verdict under its device's profile, its novelty to the
//! device's baseline and why nothing names it. [`annotate`] is the one step
//! from a flow to all of these.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod annotate;
pub mod blind;
pub mod facts;
pub mod novelty;
pub mod record;
pub mod visible;

/// Label value (and destination label) for flows nothing names.
pub const UNNAMED: &str = "unnamed";
