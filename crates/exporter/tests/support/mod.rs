//! What the exporter's integration tests share: feeding a capture file's
//! frames into a real pipeline.

use tetherscope_flow::Pipeline;

/// Feeds a classic little-endian pcap into the pipeline.
pub fn feed(pipeline: &mut Pipeline, bytes: &[u8]) {
    let link = u32::from_le_bytes(bytes[20..24].try_into().unwrap());
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let h = &bytes[at..at + 16];
        let sec = u64::from(u32::from_le_bytes(h[0..4].try_into().unwrap()));
        let usec = u64::from(u32::from_le_bytes(h[4..8].try_into().unwrap()));
        let caplen = u32::from_le_bytes(h[8..12].try_into().unwrap()) as usize;
        let wire = u32::from_le_bytes(h[12..16].try_into().unwrap());
        pipeline.ingest(
            sec * 1_000_000_000 + usec * 1000,
            link,
            wire,
            &bytes[at + 16..at + 16 + caplen],
        );
        at += 16 + caplen;
    }
}
