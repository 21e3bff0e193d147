//! How long importing a 100,000-entry domain list takes, how fast names
//! are matched once it is loaded, and what the default lists (EasyPrivacy
//! and EasyList from the uBlock Origin package, when installed) cost at
//! start-up in time and resident memory. Reports medians of several runs,
//! against the built-in catalog alone measured in the same run.
//!
//!     cargo bench -p tetherscope-classify --bench list_load

use std::path::Path;
use std::time::Instant;

use tetherscope_classify::{Catalog, FlowFacts, ListFormat, Purpose, Transport};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// CPU time this thread has used, in seconds: on a shared machine the
/// wall clock measures the neighbours too.
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Resident set size of this process in bytes, from /proc/self/statm.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn default_lists() {
    let Some(dir) =
        tetherscope_classify::find_default_list_dir(tetherscope_classify::DEFAULT_LIST_DIRS)
    else {
        println!("default_lists: none installed (scripts/setup.sh installs them); skipped");
        return;
    };
    // Memory first, in a heap no earlier catalog has grown: what the
    // lists keep resident once loaded.
    let before = rss_bytes();
    let mut kept = Catalog::builtin();
    kept.load_default_lists_from(dir);
    let resident = rss_bytes().saturating_sub(before) as f64;
    let domains: usize = kept.lists().iter().map(|l| l.stats.domains).sum();
    drop(kept);
    let (mut base, mut with_lists, mut base_cpu, mut lists_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..7 {
        let (start, cpu) = (Instant::now(), thread_cpu_secs());
        let catalog = Catalog::builtin();
        base.push(start.elapsed().as_secs_f64());
        base_cpu.push(thread_cpu_secs() - cpu);
        drop(catalog);
        let (start, cpu) = (Instant::now(), thread_cpu_secs());
        let mut catalog = Catalog::builtin();
        let loaded = catalog.load_default_lists_from(dir);
        with_lists.push(start.elapsed().as_secs_f64());
        lists_cpu.push(thread_cpu_secs() - cpu);
        assert!(loaded.iter().all(|(_, r)| r.is_ok()));
        std::hint::black_box(&catalog);
    }
    let (b, w) = (median(base), median(with_lists));
    let (bc, wc) = (median(base_cpu), median(lists_cpu));
    println!(
        "default_lists: {domains} domains from {}\n  start-up, medians of 7 runs: CPU {:.1} ms (built-in catalog alone {:.2} ms: {:.0}x), wall {:.1} ms (alone {:.2} ms)\n  resident memory once loaded: +{:.1} MiB",
        dir.display(),
        wc * 1e3,
        bc * 1e3,
        wc / bc,
        w * 1e3,
        b * 1e3,
        resident / (1024.0 * 1024.0)
    );
}

fn main() {
    default_lists();
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
