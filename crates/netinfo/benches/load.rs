//! What a start pays for the network tables: loading the installed
//! snapshot from its files (CSV parsing, MaxMind tree walk, join) against
//! reading the compiled table a previous load wrote, measured in the same
//! run. The first start after the tables change pays the former, every
//! later one the latter.
//!
//! Needs the snapshot `scripts/setup.sh` installs (or
//! `$TETHERSCOPE_NETWORK_DB_DIR`); without it the bench stops with an error
//! rather than measuring nothing.
//!
//! `cargo bench -p tetherscope-netinfo --bench load`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tetherscope_netinfo::{Config, NetInfo};

fn bench(c: &mut Criterion) {
    let cache = std::env::temp_dir().join(format!("netinfo-load-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let from_files = Config {
        cache_dir: None,
        ..Config::standard()
    };
    let compiled = Config {
        cache_dir: Some(cache.clone()),
        ..Config::standard()
    };
    let first = NetInfo::load(&compiled).expect("the installed snapshot loads");
    assert!(
        first.sources().len() == 2,
        "no installed ip-location-db snapshot under {:?}: run scripts/setup.sh",
        tetherscope_netinfo::DEFAULT_DIRS
    );
    let file = cache.join(tetherscope_netinfo::COMPILED_FILE);
    eprintln!(
        "compiled table: {:.1} MiB on disk; tables {:.1} MiB in memory",
        std::fs::metadata(&file).map_or(0, |m| m.len()) as f64 / 1048576.0,
        first.table_bytes() as f64 / 1048576.0,
    );
    drop(first);
    assert!(NetInfo::load(&compiled).unwrap().is_compiled());

    let mut group = c.benchmark_group("netinfo_load");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("from_files", |b| {
        b.iter(|| black_box(NetInfo::load(&from_files).unwrap()))
    });
    group.bench_function("compiled", |b| {
        b.iter(|| {
            let info = NetInfo::load(&compiled).unwrap();
            assert!(info.is_compiled());
            black_box(info)
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&cache);
}

criterion_group!(benches, bench);
criterion_main!(benches);
