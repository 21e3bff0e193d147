//! What the exporter's integration tests share: feeding a capture file's
//! frames into a real pipeline.

use tetherscope_flow::Pipeline;
use tetherscope_testkit::pcap;

/// Feeds a classic pcap into the pipeline.
pub fn feed(pipeline: &mut Pipeline, bytes: &[u8]) {
    let (link, records) = pcap::records(bytes).expect("a classic pcap file");
    for r in records {
        pipeline.ingest(r.ts_nanos, link, r.wire_len, r.data);
    }
}
