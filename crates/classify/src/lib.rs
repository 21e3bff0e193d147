//! Why is my phone talking to this, and did I expect it?
//!
//! A pure library: facts about a flow (its names, port, transport, protocol,
//! HTTP path) go in, a [`Classification`] comes out. The only I/O is loading
//! catalog and list files the caller names.
//!
//! * [`Catalog`]: rules mapping domains (exact or label-aligned suffix, with
//!   optional transport/port/path constraints) to a [`Purpose`] and an owner.
//!   The built-in catalog is TOML embedded at build time; user files add or
//!   override rules. Matching costs one hash lookup per label of a name.
//! * Profiles: named sets of expected rules. Under the active profile a flow
//!   is `expected` or `unexpected`.
//! * Lists: hosts files, domain-per-line lists and Adblock `||domain^` lists,
//!   each tagged with a purpose such as `tracking`. A catalog rule for a
//!   name beats a list entry for it. EasyPrivacy and EasyList are loaded by
//!   default where the system has them (see [`DEFAULT_LIST_DIRS`]).
//! * Device identity: the operating system a DHCP vendor class names
//!   ([`os`]) and the vendor of a MAC address block from the IEEE registry
//!   ([`oui`], read at run time from Debian's `ieee-data`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod catalog;
mod classify;
pub mod clients;
mod default_lists;
pub mod input;
mod lists;
pub mod os;
pub mod oui;
mod purpose;
mod site;

pub use catalog::{Catalog, CatalogError, LoadedList, Profile, Rule, RuleOrigin};
pub use classify::{Classification, FlowFacts, Judgement, Transport, Verdict};
pub use clients::ClientLabels;
pub use default_lists::{find_default_list_dir, DEFAULT_LISTS, DEFAULT_LIST_DIRS};
pub use lists::{ListFormat, ListStats};
pub use purpose::Purpose;
pub use site::{registrable_domain, registrable_domain_lowercase};
