//! What one page of `/api/baseline` costs under the baseline's lock (the
//! lock the capture thread takes for every finished flow), at two devices
//! with 10,000 and 100,000 destinations each: the page index against the
//! whole-baseline scan it replaced (a bounded heap over every destination,
//! and the owners of the device's name worked out again for every entry),
//! measured in the same run. Prints medians and their ratio.
//!
//! `cargo bench -p tetherscope-baseline --bench page`

use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use tetherscope_baseline::{is_randomised, Baseline, Entry, Observation, Settings, State, SECOND};

const DEVICES: [[u8; 6]; 2] = [[2, 0x42, 0, 0, 0, 1], [2, 0x42, 0, 0, 0, 2]];
/// The page size `/api/baseline` answers with when none is asked.
const LIMIT: usize = 1000;

/// A measured page: its name, the state asked for, and where it starts
/// (device and destination of the cursor).
type Case<'a> = (&'a str, Option<State>, Option<([u8; 6], &'a str)>);
const RUNS: usize = 31;

fn baseline(per_device: usize) -> Baseline {
    let mut b = Baseline::new(Settings {
        learn_for_ns: 3600 * SECOND,
        max_destinations: per_device,
        ..Settings::default()
    });
    let t0 = 1_700_000_000 * SECOND;
    for (k, mac) in DEVICES.iter().enumerate() {
        for i in 0..per_device {
            let name = format!("site{i:06}.example");
            // One in a hundred arrives after learning: `new`.
            let t = if i % 100 == 0 { t0 + 7200 * SECOND } else { t0 };
            b.observe(&Observation {
                mac: *mac,
                host_name: Some(if k == 0 { "pixel-7a" } else { "tablet" }),
                destination: &name,
                name: Some(&name),
                purpose: "unknown",
                owner: None,
                service: None,
                expected: false,
                first_seen_ns: t,
                last_seen_ns: t + SECOND,
                bytes_up: 10,
                bytes_down: 20,
                cleartext_bytes: 0,
            });
        }
    }
    b
}

/// The page as it was computed before the index: every destination walked
/// for the `LIMIT + 1` smallest keys past the cursor, then each entry's
/// device named on its own.
fn page_by_scan(
    b: &Baseline,
    state: Option<State>,
    after: Option<([u8; 6], &str)>,
) -> (Vec<Entry>, bool) {
    let mut heap: BinaryHeap<([u8; 6], &str)> = BinaryHeap::with_capacity(LIMIT + 2);
    for (mac, dev) in b.devices() {
        if after.is_some_and(|(m, _)| *mac < m) {
            continue;
        }
        for (name, d) in &dev.destinations {
            let key = (*mac, name.as_str());
            if after.is_some_and(|a| key <= a) || state.is_some_and(|s| d.state != s) {
                continue;
            }
            if heap.len() <= LIMIT {
                heap.push(key);
            } else if heap.peek().is_some_and(|top| key < *top) {
                heap.pop();
                heap.push(key);
            }
        }
    }
    let mut keys = heap.into_sorted_vec();
    let more = keys.len() > LIMIT;
    keys.truncate(LIMIT);
    let out = keys
        .into_iter()
        .filter_map(|(mac, name)| {
            let d = b.devices().get(&mac)?.destinations.get(name)?;
            Some(Entry::new(
                b.display_name(&mac),
                &mac,
                is_randomised(&mac),
                name,
                d,
            ))
        })
        .collect();
    (out, more)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter, if any, picks sizes.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    println!("one page of {LIMIT} entries, median of {RUNS} runs");
    println!(
        "{:>8} {:<22} {:>12} {:>12} {:>8}",
        "per dev", "page", "scan", "index", "ratio"
    );
    for per_device in [10_000, 100_000] {
        if filter
            .as_deref()
            .is_some_and(|f| !per_device.to_string().contains(f))
        {
            continue;
        }
        let b = baseline(per_device);
        let middle = format!("site{:06}.example", per_device / 2);
        let cases: [Case; 4] = [
            ("first", None, None),
            (
                "mid first device",
                None,
                Some((DEVICES[0], middle.as_str())),
            ),
            (
                "mid second device",
                None,
                Some((DEVICES[1], middle.as_str())),
            ),
            ("state=new", Some(State::New), None),
        ];
        for (what, state, after) in cases {
            // The same page both ways, or the comparison means nothing.
            let (old, old_more) = page_by_scan(&b, state, after);
            let (new, new_more) = b
                .entries_page(None, state, after.as_ref().map(|(m, n)| (m, *n)), LIMIT)
                .unwrap();
            assert_eq!(old, new, "{what}");
            assert_eq!(old_more, new_more, "{what}");
            let (mut scan, mut index) = (Vec::new(), Vec::new());
            for _ in 0..RUNS {
                let t = Instant::now();
                black_box(page_by_scan(&b, state, after));
                scan.push(t.elapsed());
                let t = Instant::now();
                black_box(
                    b.entries_page(None, state, after.as_ref().map(|(m, n)| (m, *n)), LIMIT)
                        .unwrap(),
                );
                index.push(t.elapsed());
            }
            let (scan, index) = (median(scan), median(index));
            println!(
                "{per_device:>8} {what:<22} {:>10.3}ms {:>10.3}ms {:>7.1}x",
                scan.as_secs_f64() * 1e3,
                index.as_secs_f64() * 1e3,
                scan.as_secs_f64() / index.as_secs_f64()
            );
        }
    }
}
