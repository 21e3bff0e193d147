//! Fuzz target; the invariants are in `checks.rs`.
#![no_main]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::device_identity(data));
