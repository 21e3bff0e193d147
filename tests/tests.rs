//! End-to-end tests of the `tetherscope` binary. One test binary, a module
//! per feature (see tests/fixtures/README.md for where fixtures come from).

mod baseline;
mod blind_spots;
mod common;
mod conformance;
mod deploy;
mod flood;
mod flow_history;
mod fuzz_regressions;
mod hardening;
mod hotspot;
mod ja4_oracle;
mod listener;
mod monitoring;
mod month;
mod network_db;
mod networkmanager;
mod package;
mod page;
mod read;
mod replay;
mod report;
mod scale_out;
mod silent;
mod truth;
