//! Cost of a lookup in the installed snapshot (ASN ranges + country tree),
//! against a hash map lookup of the same addresses measured in the same run,
//! and what loading the tables costs in time and resident memory.
//!
//! Needs the snapshot `scripts/setup.sh` installs (or
//! `$TETHERSCOPE_NETWORK_DB_DIR`); without it the bench stops with an error
//! rather than measuring nothing.
//!
//! `cargo bench -p tetherscope-netinfo --bench lookup`

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tetherscope_netinfo::{Config, NetInfo};

/// Addresses per iteration.
const BATCH: usize = 4096;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn load() -> NetInfo {
    let info = NetInfo::load(&Config::standard()).expect("the installed snapshot loads");
    assert!(
        info.sources().len() == 2,
        "no installed ip-location-db snapshot under {:?}: run scripts/setup.sh",
        tetherscope_netinfo::DEFAULT_DIRS
    );
    info
}

/// Deterministic pseudo-random addresses that the tables answer for.
fn addresses(info: &NetInfo, v6: bool) -> Vec<IpAddr> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::with_capacity(BATCH);
    while out.len() < BATCH {
        let ip = if v6 {
            // Global unicast 2000::/3, where allocations are.
            let high = (next() & 0x1fff_ffff_ffff_ffff) | 0x2000_0000_0000_0000;
            IpAddr::V6(Ipv6Addr::from(
                (u128::from(high) << 64) | u128::from(next()),
            ))
        } else {
            IpAddr::V4(Ipv4Addr::from(next() as u32))
        };
        if info.lookup(ip).is_some_and(|n| n.asn.is_some()) {
            out.push(ip);
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let before = rss_kib();
    let start = Instant::now();
    let info = load();
    let mut load_ms = vec![start.elapsed().as_secs_f64() * 1e3];
    let after = rss_kib();
    for _ in 0..2 {
        let start = Instant::now();
        drop(black_box(load()));
        load_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    load_ms.sort_by(f64::total_cmp);
    eprintln!(
        "netinfo load: median {:.0} ms of 3; tables {:.1} MiB; resident memory +{:.1} MiB ({before} -> {after} KiB)",
        load_ms[1],
        info.table_bytes() as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / 1024.0,
    );

    let mut group = c.benchmark_group("netinfo");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, v6) in [("ipv4", false), ("ipv6", true)] {
        let ips = addresses(&info, v6);
        let map: HashMap<IpAddr, u32> = ips
            .iter()
            .enumerate()
            .map(|(i, &ip)| (ip, i as u32))
            .collect();
        group.bench_function(format!("baseline_hashmap_{name}"), |b| {
            b.iter(|| {
                for ip in &ips {
                    black_box(map.get(black_box(ip)));
                }
            })
        });
        group.bench_function(format!("lookup_{name}"), |b| {
            b.iter(|| {
                for ip in &ips {
                    black_box(info.lookup(black_box(*ip)));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
