//! What the capture side shares with the exporter, and the aggregation of
//! flows into labelled totals.
//!
//! Metrics are built when scraped: active flows are read from the flow table,
//! finished flows were folded into `Retired` totals when they left it. Every
//! series is reported as the maximum of what it was last time and what it is
//! now, so a counter never goes backwards, whatever races a scrape has with
//! the capture thread moving a flow from active to finished.
//!
//! One module per job: `hub` holds [`Shared`] and the capture thread's
//! entry points (`retire`, the flow page), `budget` keeps the `domain` and
//! `owner` label sets bounded, `totals` sums what flows add, `scrape` builds a
//! [`Snapshot`], `labels` makes label values and `class_memo` classifies
//! each distinct destination of a scrape once.

mod budget;
mod class_memo;
mod hub;
mod labels;
mod scrape;
#[cfg(test)]
mod test_support;
mod totals;

pub use budget::{LabelPolicy, DEFAULT_LABEL_IDLE_NS, DEFAULT_MAX_OWNERS};
pub use hub::{CaptureStatus, NoveltyCounts, NoveltyLabels, Shared};
pub use labels::{
    domain_label, sanitize, DomainLabel, FlowLabels, OTHER, UNKNOWN_DEVICE, UNKNOWN_OWNER, UNNAMED,
};
pub use scrape::Snapshot;
pub use totals::{blind_index, Totals, BLIND_SPOTS};
