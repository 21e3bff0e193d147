//! What the IEEE registry (Debian's ieee-data, read at start-up) costs:
//! load time (CPU time of the loading thread), median of 7, against only reading the same files' bytes in
//! the same run, and the resident memory one loaded registry keeps.
//!
//!     cargo bench -p tetherscope-classify --bench oui_load

use std::path::Path;

use tetherscope_classify::oui::{Registry, DEFAULT_DIR, FILES};

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

fn main() {
    let dir = Path::new(DEFAULT_DIR);
    assert!(
        dir.join("oui.csv").exists(),
        "{DEFAULT_DIR}/oui.csv missing: scripts/setup.sh installs ieee-data"
    );
    let before = rss_bytes();
    let kept = Registry::load_dir(dir).expect("registry loads");
    let resident = rss_bytes().saturating_sub(before);
    let (mut read, mut load) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let start = thread_cpu_secs();
        let bytes: usize = FILES
            .iter()
            .filter_map(|f| std::fs::read_to_string(dir.join(f)).ok())
            .map(|t| t.len())
            .sum();
        read.push(thread_cpu_secs() - start);
        let start = thread_cpu_secs();
        let r = Registry::load_dir(dir).expect("registry loads");
        load.push(thread_cpu_secs() - start);
        assert_eq!(r.len(), kept.len());
        assert!(bytes > 0);
    }
    let (read, load) = (median(read), median(load));
    println!(
        "oui_load: {} blocks; load median {:.1} ms CPU, reading the files alone {:.1} ms (ratio {:.1}); resident {:.1} MiB",
        kept.len(),
        load * 1e3,
        read * 1e3,
        load / read,
        resident as f64 / (1 << 20) as f64
    );
}
