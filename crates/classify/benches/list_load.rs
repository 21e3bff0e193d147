//! How long importing a 100,000-entry domain list takes, and how fast names
//! are matched once it is loaded. Reports medians of several runs.
//!
//!     cargo bench -p tetherscope-classify --bench list_load

use std::path::Path;
use std::time::Instant;

use tetherscope_classify::{Catalog, FlowFacts, ListFormat, Purpose, Transport};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    const ENTRIES: usize = 100_000;
    let hosts: String = (0..ENTRIES)
        .map(|i| format!("0.0.0.0 t{i}.tracker{}.example\n", i % 997))
        .collect();
    let adblock: String = (0..ENTRIES)
        .map(|i| format!("||ads{i}.net{}.example^\n", i % 991))
        .collect();
    for (name, text, format) in [
        ("hosts", &hosts, ListFormat::Hosts),
        ("adblock", &adblock, ListFormat::Adblock),
    ] {
        let mut times = Vec::new();
        for _ in 0..7 {
            let mut catalog = Catalog::builtin();
            let start = Instant::now();
            let stats =
                catalog.import_list_str(Path::new("bench.txt"), text, Purpose::Tracking, format);
            times.push(start.elapsed().as_secs_f64());
            assert_eq!(stats.domains, ENTRIES);
        }
        println!(
            "list_load/{name}: {ENTRIES} entries, median {:.1} ms over 7 runs",
            median(times) * 1e3
        );
    }
    let mut catalog = Catalog::builtin();
    catalog.import_list_str(
        Path::new("bench.txt"),
        &hosts,
        Purpose::Tracking,
        ListFormat::Hosts,
    );
    let names: Vec<String> = (0..10_000)
        .map(|i| format!("cdn{i}.t{}.tracker{}.example", i * 7, (i * 7) % 997))
        .collect();
    let mut times = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let mut hits = 0;
        for n in &names {
            let names = [n.as_str()];
            let facts = FlowFacts {
                transport: Transport::Tcp,
                server_port: Some(443),
                server_is_local: false,
                app: Some("tls"),
                names: &names,
                http_path: None,
            };
            hits += usize::from(catalog.classify(&facts).purpose == Purpose::Tracking);
        }
        times.push(start.elapsed().as_secs_f64());
        assert_eq!(hits, names.len());
    }
    println!(
        "classify/with_100k_list: {:.0} ns per flow (median of 7 runs of 10,000 names)",
        median(times) * 1e9 / names.len() as f64
    );
}
