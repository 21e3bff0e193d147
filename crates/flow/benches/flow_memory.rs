//! Resident memory per tracked flow: 1,000,000 distinct flows (half TCP
//! SYNs, half UDP datagrams, random ports, IPv4 and IPv6) through the real
//! pipeline, then resident set size over flows.
//!
//! `cargo bench -p tetherscope-flow --bench flow_memory`

use tetherscope_flow::{Pipeline, PipelineConfig};
use tetherscope_testkit::frame;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A tiny deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Ethernet + IPv4/IPv6 + TCP SYN or UDP with random ports and addresses.
fn frame(rng: &mut Rng, i: u64) -> Vec<u8> {
    let r = rng.next();
    let v6 = i % 5 < 2; // 40% IPv6, as on a phone hotspot
    let tcp = i % 2 == 0;
    let sport = 1024 + (r >> 32) as u16 % 60000;
    let dport = [443u16, 80, 5228, 8443][(r >> 56) as usize % 4] + (r >> 40) as u16 % 16;
    let (proto, l4) = if tcp {
        (
            frame::TCP,
            frame::tcp(sport, dport, r as u32, 0, frame::SYN, &[]),
        )
    } else {
        (frame::UDP, frame::udp(sport, dport, &[0x5a; 16]))
    };
    let packet = if v6 {
        let mut phone = [0u8; 16];
        phone[..5].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x42]);
        phone[15] = (r >> 8) as u8 | 1;
        let mut server = [0u8; 16];
        server[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        server[13..].copy_from_slice(&[(r >> 16) as u8, (r >> 24) as u8, 7]);
        frame::ipv6(phone, server, proto, &l4)
    } else {
        let phone = [10, 42, 0, (r >> 8) as u8 | 2];
        frame::ipv4(phone, [203, 0, 113, (r >> 16) as u8], proto, &l4)
    };
    let phone_mac = [0x02, 0x42, 0x0a, 0x2a, 0, (r & 0x3f) as u8];
    let ethertype = if v6 {
        frame::ETHERTYPE_IPV6
    } else {
        frame::ETHERTYPE_IPV4
    };
    frame::ethernet([0x02, 0, 0, 0, 0, 1], phone_mac, ethertype, &packet)
}

fn main() {
    let flows: u64 = std::env::var("FLOWS")
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or(1_000_000);
    let config = PipelineConfig {
        max_flows: 2 * flows as usize,
        ..PipelineConfig::default()
    };
    let mut pipeline = Pipeline::new(&config);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let before = rss_bytes();
    let mut ts = 1_700_000_000_000_000_000u64;
    for i in 0..flows {
        let buf = frame(&mut rng, i);
        ts += 1_000; // 1 µs apart: nothing idles out
        pipeline.ingest(ts, 1, buf.len() as u32, &buf);
    }
    let after = rss_bytes();
    let tracked = pipeline.table.len() as u64;
    println!(
        "flow_memory: {tracked} flows tracked of {flows} sent; resident {:.1} MiB more; {:.0} bytes per flow (Flow struct {} bytes)",
        (after - before) as f64 / (1 << 20) as f64,
        (after - before) as f64 / tracked as f64,
        std::mem::size_of::<tetherscope_flow::Flow>(),
    );
}
