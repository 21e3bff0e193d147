//! Rendering `/metrics` with 100,000 active flows, criterion: over 500
//! domains (the everyday case), and over 100,000 distinct domains folded
//! into 500 labels (a flood of random names).
//!
//! `cargo bench --bench scrape`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tetherscope_classify::Catalog;
use tetherscope_exporter::Shared;
use tetherscope_flow::{Flow, Names, Pipeline, PipelineConfig, Transport};

/// A table of `n` TLS flows from 8 phones to `domains` sites, exported with
/// at most `max_domains` domain labels.
pub fn shared_with_flows(n: usize, domains: usize, max_domains: usize) -> Arc<Shared> {
    let pipeline = Pipeline::new(&PipelineConfig {
        max_flows: n * 2,
        ..PipelineConfig::default()
    });
    for i in 0..n {
        let client = format!("10.42.0.{}:{}", 2 + i % 8, 1024 + (i / 8) % 60_000)
            .parse()
            .unwrap();
        let server = format!("203.0.113.{}:443", i % 250).parse().unwrap();
        let mut flow = Flow::new(Transport::Tcp, client, server, 1_700_000_000_000_000_000);
        flow.client_mac = Some([2, 0x42, 0, 0, 0, (i % 8) as u8]);
        flow.packets_up = 10;
        flow.bytes_up = 2_000;
        flow.packets_down = 20;
        flow.bytes_down = 30_000;
        flow.names = Some(Box::new(Names {
            sni: Some(format!("cdn{}.site{}.example", i % 7, i % domains).into()),
            ..Names::default()
        }));
        pipeline.table.insert(flow);
    }
    Arc::new(Shared::new(
        &pipeline,
        Arc::new(Catalog::builtin()),
        max_domains,
    ))
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("scrape");
    g.sample_size(20);
    for (name, domains) in [
        ("metrics_100k_flows_500_domains", 500),
        ("metrics_100k_flows_100k_domains", 100_000),
    ] {
        let shared = shared_with_flows(100_000, domains, 500);
        let text = tetherscope_exporter::metrics::render(&shared);
        let series = text.lines().filter(|l| !l.starts_with('#')).count();
        eprintln!(
            "{name}: {} active flows, {series} series, {} bytes",
            shared.table.len(),
            text.len()
        );
        g.bench_function(name, |b| {
            b.iter(|| tetherscope_exporter::metrics::render(&shared).len())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
