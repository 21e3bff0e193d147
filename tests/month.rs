//! A month of one phone's traffic through the live path (`replay`, paced at
//! 100,000× the capture's clock, scraped as it goes): 7,511 distinct domains
//! over 30 days of packet time — a steady hourly set and a burst of 250
//! never-seen-again domains every day, more than the label budget holds —
//! then, on the last day, a brand-new unexpected domain while every place is
//! taken. With `--max-domains 200`, every scrape holds at most 200 `domain`
//! values besides `unnamed` and `other`; sums over `domain` never go
//! backwards; the new domain is named in `tetherscope_unexpected_flows_total`;
//! resident memory stays flat from the first week to the last.

use std::collections::BTreeSet;
use std::io::BufWriter;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::frames::{tls_connection, PcapWriter};
use crate::common::sim::{parse_metrics, value, wait_for};
use crate::common::{free_port, get_local as get};

const DAYS: u64 = 30;
const NEW_PER_DAY: u64 = 250;
const MAX_DOMAINS: usize = 200;
/// 2026-01-01T00:00:00Z, microseconds.
const T0_US: u64 = 1_767_225_600_000_000;
const DAY_US: u64 = 86_400_000_000;
const NEW_TRACKER: &str = "api.brand-new-tracker.net";
/// Capture time per wall time: the month in about 26 seconds.
const SPEED: &str = "100000";

/// Every day, 8:00 to 21:00, hourly: catalog destinations and a few apps.
const STEADY: [&str; 10] = [
    "release.calyxinstitute.org",
    "connectivitycheck.gstatic.com",
    "mtalk.google.com",
    "xtrapath3.izatcloud.net",
    "www.googleapis.com",
    "api.weather-app.net",
    "sync.notes-app.org",
    "cdn.news-reader.com",
    "push.chat-app.io",
    "img.photo-share.net",
];

fn server_for(i: u64) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, 1 + (i % 250) as u8)
}

/// Writes the month; returns the packets written and the distinct domains.
fn write_month(path: &std::path::Path) -> (u64, usize) {
    let mut w = PcapWriter::new(BufWriter::new(std::fs::File::create(path).unwrap()));
    let mut names = BTreeSet::new();
    let mut packets = 0;
    let mut port = 10_000u16;
    let mut next_port = || {
        port = if port >= 60_000 { 10_000 } else { port + 1 };
        port
    };
    for day in 0..DAYS {
        let mut events: Vec<(u64, String, Ipv4Addr)> = Vec::new();
        for hour in 8..22 {
            for (k, name) in STEADY.iter().enumerate() {
                let at = day * DAY_US + hour * 3_600_000_000 + k as u64 * 10_000_000;
                events.push((at, (*name).to_owned(), server_for(k as u64)));
            }
        }
        for i in 0..NEW_PER_DAY {
            let at = day * DAY_US + 12 * 3_600_000_000 + 500_000 + i * 21_000_000;
            let name = format!("cdn.site-d{day}n{i}.com");
            events.push((at, name, server_for(100 + i)));
        }
        if day == DAYS - 1 {
            // Just after the day's burst, while every place is taken.
            let at = day * DAY_US + 13 * 3_600_000_000 + 28 * 60_000_000;
            events.push((at, NEW_TRACKER.to_owned(), Ipv4Addr::new(198, 51, 100, 66)));
        }
        events.sort();
        for (at, name, server) in events {
            tls_connection(&mut w, T0_US + at, server, next_port(), &name);
            packets += 5;
            names.insert(name);
        }
    }
    w.finish();
    (packets, names.len())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Distinct `domain` values across every series of a scrape.
fn domain_values(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| Some(l.split("domain=\"").nth(1)?.split('"').next()?.to_owned()))
        .collect()
}

/// Kills the monitor on drop, also when an assertion fails.
struct Monitor(Child);

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_month_of_traffic_keeps_labels_bounded_meaningful_and_memory_flat() {
    let dir = std::env::temp_dir().join(format!("tetherscope-month-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let capture = dir.join("month.pcap");
    let (packets, distinct) = write_month(&capture);
    assert!(distinct >= 7_500, "{distinct} domains");

    let port = free_port();
    let started = Instant::now();
    let mut monitor = Monitor(
        Command::new(common::bin())
            .arg("replay")
            .arg(&capture)
            .args(["--speed", SPEED, "--max-domains", &MAX_DOMAINS.to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--state")
            .arg(dir.join("state.db"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start replay"),
    );
    let pid = monitor.0.id();

    let mut scrapes = Vec::new(); // (packets read, RSS KiB, domain values)
    let mut previous_flows = 0.0;
    let mut xtra_named = Vec::new();
    let last = loop {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "replay did not finish in 3 minutes"
        );
        assert!(
            monitor.0.try_wait().unwrap().is_none(),
            "replay exited early"
        );
        std::thread::sleep(Duration::from_millis(300));
        let Some(text) = get(port, "/metrics") else {
            continue;
        };
        let m = parse_metrics(&text);
        let read = value(&m, "tetherscope_pipeline_packets_total", &[]);
        let domains = domain_values(&text);
        let names = domains
            .iter()
            .filter(|d| *d != "unnamed" && *d != "other")
            .count();
        assert!(
            names <= MAX_DOMAINS,
            "{names} domain values after {read} packets"
        );
        // Folding moves totals to `other`: the sum never goes backwards.
        let flows = value(&m, "tetherscope_flows_total", &[]);
        assert!(
            flows >= previous_flows,
            "flows went from {previous_flows} to {flows}"
        );
        previous_flows = flows;
        scrapes.push((read as u64, rss_kib(pid), names));
        xtra_named.push(domains.contains("izatcloud.net"));
        if read as u64 >= packets {
            break text;
        }
    };

    let m = parse_metrics(&last);
    assert!(
        value(
            &m,
            "tetherscope_unexpected_flows_total",
            &[("domain", "brand-new-tracker.net")]
        ) >= 1.0,
        "the brand-new domain is not named"
    );
    // An expected destination gives its place to unexpected newcomers during
    // a burst and gets one back when they idle out: named in the last week.
    let last_week = &xtra_named[xtra_named.len() * 3 / 4..];
    assert!(
        last_week.iter().any(|named| *named),
        "izatcloud.net never named in the last week"
    );
    // Every connection is counted, named or folded.
    let counted = wait_for(Duration::from_secs(10), || {
        let m = parse_metrics(&get(port, "/metrics")?);
        let flows = value(&m, "tetherscope_flows_total", &[]);
        (flows >= (packets / 5) as f64).then_some(flows)
    });
    assert!(counted.is_some(), "not every connection was counted");

    // Memory: the first week's scrapes against the last week's.
    let by_day = |from: u64, to: u64| -> Vec<u64> {
        let (lo, hi) = (packets * from / DAYS, packets * to / DAYS);
        let mut v: Vec<u64> = scrapes
            .iter()
            .filter(|(read, rss, _)| (lo..hi).contains(read) && *rss > 0)
            .map(|(_, rss, _)| *rss)
            .collect();
        v.sort_unstable();
        v
    };
    let (early, late) = (by_day(3, 10), by_day(23, 30));
    assert!(
        !early.is_empty() && !late.is_empty(),
        "too few scrapes: {}",
        scrapes.len()
    );
    let median = |v: &[u64]| v[v.len() / 2];
    let peak = scrapes.iter().map(|s| s.1).max().unwrap_or(0);
    eprintln!(
        "month: {packets} packets, {distinct} domains, {} scrapes in {:.1} s; RSS median days 3-10 {} KiB, days 23-30 {} KiB, peak {peak} KiB; at most {} domain values; izatcloud.net named in {} scrapes",
        scrapes.len(),
        started.elapsed().as_secs_f64(),
        median(&early),
        median(&late),
        scrapes.iter().map(|s| s.2).max().unwrap_or(0),
        xtra_named.iter().filter(|n| **n).count(),
    );
    assert!(
        median(&late) <= median(&early) + median(&early) / 5 + 2048,
        "memory grew: {} KiB then {} KiB",
        median(&early),
        median(&late)
    );
    drop(monitor);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes the month's capture to `$TETHERSCOPE_MONTH_PCAP` and nothing
/// else: the input of bench/flow_history_month.sh, which measures the flow
/// history's rows and bytes per day. Run only on demand (`--ignored`).
#[test]
#[ignore = "writes the month capture for bench/flow_history_month.sh"]
fn write_the_month_capture() {
    let path = std::env::var_os("TETHERSCOPE_MONTH_PCAP").expect("set TETHERSCOPE_MONTH_PCAP");
    let (packets, distinct) = write_month(std::path::Path::new(&path));
    eprintln!("month capture: {packets} packets, {distinct} domains");
}
