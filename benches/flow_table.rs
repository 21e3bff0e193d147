//! The flow table on the hot path (criterion): the per-packet cost of a
//! packet on a known flow (lookup, counters), and of new flows (insert,
//! eviction under the bound), through `Pipeline::ingest`.
//!
//! `cargo bench --bench flow_table`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tetherscope_flow::{Pipeline, PipelineConfig};
use tetherscope_testkit::frame;

/// An Ethernet/IPv4/TCP ACK from 10.42.0.x:port to 203.0.113.y:443.
fn ack(client: u16, port: u16) -> Vec<u8> {
    let phone = [10, 42, 0, (client % 250) as u8 + 2];
    let server = [203, 0, 113, (client / 250) as u8];
    let segment = frame::tcp(port, 443, 1, 1, frame::ACK, &[]);
    let packet = frame::ipv4(phone, server, frame::TCP, &segment);
    let (hotspot, phone_mac) = ([0x02, 0, 0, 0, 0, 1], [0x02, 0x42, 0x0a, 0x2a, 0, 0x32]);
    frame::ethernet(hotspot, phone_mac, frame::ETHERTYPE_IPV4, &packet)
}

fn bench(c: &mut Criterion) {
    const FLOWS: usize = 10_000;
    let packets: Vec<Vec<u8>> = (0..FLOWS)
        .map(|i| ack(i as u16, 1024 + (i % 60_000) as u16))
        .collect();
    let mut g = c.benchmark_group("flow_table");

    // Known flows: every packet is a lookup plus counter updates.
    let mut warm = Pipeline::new(&PipelineConfig::default());
    let mut ts = 1_700_000_000_000_000_000u64;
    for p in &packets {
        ts += 1000;
        warm.ingest(ts, 1, p.len() as u32, p);
    }
    g.throughput(Throughput::Elements(FLOWS as u64));
    g.bench_function("packet_on_known_flow", |b| {
        b.iter(|| {
            for p in &packets {
                ts += 1000;
                warm.ingest(ts, 1, p.len() as u32, p);
            }
        })
    });

    // New flows into an empty table.
    g.bench_function("new_flow", |b| {
        b.iter_batched(
            || Pipeline::new(&PipelineConfig::default()),
            |mut p| {
                let mut t = 1_700_000_000_000_000_000u64;
                for f in &packets {
                    t += 1000;
                    p.ingest(t, 1, f.len() as u32, f);
                }
                p
            },
            BatchSize::LargeInput,
        )
    });

    // New flows into a full table: each one evicts.
    g.bench_function("new_flow_at_capacity", |b| {
        b.iter_batched(
            || {
                let mut p = Pipeline::new(&PipelineConfig {
                    max_flows: FLOWS / 2,
                    ..PipelineConfig::default()
                });
                let mut t = 1_700_000_000_000_000_000u64;
                for f in &packets[..FLOWS / 2] {
                    t += 1000;
                    p.ingest(t, 1, f.len() as u32, f);
                }
                p
            },
            |mut p| {
                let mut t = 1_800_000_000_000_000_000u64;
                for f in &packets[FLOWS / 2..] {
                    t += 1000;
                    p.ingest(t, 1, f.len() as u32, f);
                }
                p
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
