//! The whole pipeline fed a sequence of frames (2-byte length prefix each,
//! alternating Ethernet and raw IP), with ticks that expire flows.
//! Invariants: the flow table stays within its bound, and every name a flow
//! reports is free of control characters.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tetherscope_flow::{Pipeline, PipelineConfig};

fuzz_target!(|data: &[u8]| {
    let mut p = Pipeline::new(&PipelineConfig {
        max_flows: 64,
        ..PipelineConfig::default()
    });
    let mut ts = 1_700_000_000_000_000_000u64;
    let mut rest = data;
    let mut n = 0u32;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let frame = &rest[2..2 + len];
        ts += u64::from(rest[0]) * 50_000_000;
        p.ingest(ts, if n % 2 == 0 { 1 } else { 101 }, frame.len() as u32, frame);
        n += 1;
        rest = &rest[2 + len..];
        assert!(p.table.len() <= 64 + 1);
    }
    p.tick(ts + 3_600_000_000_000);
    p.finish();
    for (flow, _) in p.take_finished() {
        if let Some((name, _)) = flow.domain() {
            assert!(!name.chars().any(char::is_control), "{name:?}");
        }
    }
});
