//! Hostile input through the real pipeline and exporter: DNS answers built
//! to cost work or to smuggle bytes into the output, and a flood of random
//! names. Each must end as bounded work, counted drops and clean output.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tetherscope_classify::Catalog;
use tetherscope_exporter::Shared;
use tetherscope_flow::{Pipeline, PipelineConfig};
use tetherscope_testkit::dns::{self, Response};
use tetherscope_testkit::frame::{self, Link};
use tetherscope_testkit::tls::ClientHello;
use tower::ServiceExt;

const ETHERNET: u32 = 1;
const PHONE: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 23);
const PHONE_V6: Ipv6Addr = Ipv6Addr::new(0xfd42, 0, 0, 0, 0, 0, 0, 23);
const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 1);
const RESOLVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd42, 0, 0, 0, 0, 0, 0, 1);
const T0: u64 = 1_700_000_000_000_000_000;

// === frames, built with the test kit ===

/// The phone's link to the laptop.
const LINK: Link = Link {
    phone: [2, 0x42, 0, 0, 0, 23],
    hotspot: [2, 0x42, 0, 0, 0, 1],
};

/// An IPv4 or IPv6 frame, up when the phone sends it.
fn ip_frame(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let packet = frame::ip(src, dst, proto, l4);
    if src == IpAddr::V4(PHONE) || src == IpAddr::V6(PHONE_V6) {
        LINK.up(&packet)
    } else {
        LINK.down(&packet)
    }
}

fn udp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, payload: &[u8]) -> Vec<u8> {
    ip_frame(src, dst, frame::UDP, &frame::udp(sport, dport, payload))
}

/// A SYN when there is no payload, a PSH+ACK carrying it otherwise.
fn tcp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let flags = if payload.is_empty() {
        frame::SYN
    } else {
        frame::PSH_ACK
    };
    let l4 = frame::tcp(sport, dport, seq, 0, flags, payload);
    ip_frame(src, dst, frame::TCP, &l4)
}

fn syn(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Vec<u8> {
    tcp(src, sport, dst, dport, 0, &[])
}

/// A TLS record holding a ClientHello that names `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    ClientHello::new().sni(sni).record()
}

// === DNS messages ===

/// A response to one A question (records live an hour).
fn response(id: u16, qname: &[u8]) -> Response {
    Response::new(id, qname, dns::A).ttl(3600)
}

/// A query and its response, as frames from and to the phone (over IPv4).
fn exchange(id: u16, qname: &[u8], response: Vec<u8>) -> [Vec<u8>; 2] {
    exchange_over(IpAddr::V4(PHONE), IpAddr::V4(RESOLVER), id, qname, response)
}

/// A query and its response between `phone` and `resolver`.
fn exchange_over(
    phone: IpAddr,
    resolver: IpAddr,
    id: u16,
    qname: &[u8],
    response: Vec<u8>,
) -> [Vec<u8>; 2] {
    let query = dns::query_wire(id, qname, dns::A);
    let sport = 10_000 + id % 50_000;
    [
        udp(phone, sport, resolver, 53, &query),
        udp(resolver, 53, phone, sport, &response),
    ]
}

// === the pipeline and the exporter ===

struct Rig {
    pipeline: Pipeline,
    shared: Arc<Shared>,
    now: u64,
}

impl Rig {
    fn new(max_domains: usize) -> Self {
        let pipeline = Pipeline::new(&PipelineConfig::default());
        let shared = Arc::new(Shared::new(
            &pipeline,
            Arc::new(Catalog::builtin()),
            max_domains,
        ));
        Rig {
            pipeline,
            shared,
            now: T0,
        }
    }
    fn feed(&mut self, frame: &[u8]) {
        self.now += 1_000;
        self.pipeline
            .ingest(self.now, ETHERNET, frame.len() as u32, frame);
    }
    async fn get(&self, path: &str) -> String {
        let resp = tetherscope_exporter::router(self.shared.clone())
            .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).expect("UTF-8 output")
    }
    /// Active and recent flows, as JSON values.
    async fn flows(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.get("/api/flows").await).expect("flows API returns JSON")
    }
    async fn flow_to(&self, server: IpAddr) -> serde_json::Value {
        let ip = server.to_string();
        self.flows()
            .await
            .into_iter()
            .find(|f| f["server_ip"] == ip.as_str() && f["server_port"] == 443)
            .unwrap_or_else(|| panic!("no flow to {ip}"))
    }
}

/// The value of an unlabelled or labelled series line, summed over lines
/// that contain every `needle`.
fn metric(text: &str, name: &str, needles: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.split([' ', '{']).next() == Some(name) && needles.iter().all(|n| l.contains(n))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Every label value of every series, checked to be plain: no quote,
/// backslash or control character (so nothing needed escaping).
fn label_values(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(!line.chars().any(char::is_control), "{line:?}");
        let Some((_, rest)) = line.split_once('{') else {
            continue;
        };
        let (labels, _) = rest.rsplit_once('}').expect("closed label set");
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once("=\"").expect("key=\"value\"");
            let value = value.strip_suffix('"').unwrap_or(value);
            assert!(!value.contains(['"', '\\']), "{line}");
            out.push((key.to_owned(), value.to_owned()));
        }
    }
    out
}

fn all_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| all_strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| all_strings(x, out)),
        _ => {}
    }
}

// === tests ===

#[tokio::test]
async fn a_thousand_records_cost_bounded_work() {
    let mut rig = Rig::new(500);
    let qname = dns::name_from_labels(&[b"many", b"example"]);
    let mut resp = response(1, &qname);
    let addresses: Vec<IpAddr> = (0..1000u16)
        .map(|i| match i / 250 {
            0 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, i as u8)),
            1 => IpAddr::V4(Ipv4Addr::new(198, 51, 100, (i - 250) as u8)),
            2 => IpAddr::V4(Ipv4Addr::new(203, 0, 113, (i - 500) as u8)),
            _ => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)),
        })
        .collect();
    for a in &addresses {
        resp.address(&dns::pointer(dns::QUESTION_AT), *a);
    }
    let response = resp.finish();
    assert!(response.len() > 16_000);
    for f in exchange(1, &qname, response) {
        rig.feed(&f);
    }
    // Only the first records are read: the cache grows by a bounded amount.
    let cached = rig.pipeline.dns_cache_len();
    assert!((1..=256).contains(&cached), "{cached} entries cached");
    let (first, last) = (addresses[0], addresses[999]);
    rig.feed(&syn(IpAddr::V4(PHONE), 40_000, first, 443));
    assert_eq!(rig.flow_to(first).await["domain"], "many.example");
    let metrics = rig.get("/metrics").await;
    assert_eq!(
        metric(&metrics, "tetherscope_flow_table_flows", &["dns_cache"]),
        cached as f64
    );
    // The last record was never read, so a connection there is unnamed.
    let phone6 = IpAddr::V6(PHONE_V6);
    rig.feed(&syn(phone6, 40_001, last, 443));
    assert!(rig.flow_to(last).await["domain"].is_null());
}

#[tokio::test]
async fn a_cname_chain_of_a_hundred_links_is_cut_short() {
    let mut rig = Rig::new(500);
    let qname = dns::name_from_labels(&[b"start", b"example"]);
    let mut resp = response(2, &qname);
    // start.example → c1.example → ... → c100.example → 192.0.2.50; each
    // record's owner points at the previous record's target.
    let mut owner = dns::QUESTION_AT;
    for i in 1..=100 {
        let target = dns::name_from_labels(&[format!("c{i}").as_bytes(), b"example"]);
        owner = resp.record(&dns::pointer(owner), 5, &target);
    }
    let server = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 50));
    resp.address(&dns::pointer(owner), server);
    for f in exchange(2, &qname, resp.finish()) {
        rig.feed(&f);
    }
    rig.feed(&syn(IpAddr::V4(PHONE), 40_002, server, 443));
    let flow = rig.flow_to(server).await;
    assert_eq!(flow["domain"], "start.example");
    assert_eq!(flow["name_source"], "dns");
    let chain = flow["cname_chain"].as_array().unwrap();
    assert!(!chain.is_empty() && chain.len() <= 16, "{chain:?}");
    assert_eq!(chain[0], "c1.example");
}

#[tokio::test]
async fn pointer_loops_are_counted_and_never_followed() {
    let mut rig = Rig::new(500);
    let qname = dns::name_from_labels(&[b"loop", b"example"]);
    let mut resp = response(3, &qname);
    resp.address(
        &dns::pointer(dns::QUESTION_AT),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 60)),
    );
    // The second record's owner points at itself.
    let at = resp.next_offset();
    resp.address(&dns::pointer(at), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 61)));
    // A third points forward, past itself.
    let at = resp.next_offset();
    resp.address(
        &dns::pointer(at + 40),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 62)),
    );
    let before = rig.get("/metrics").await;
    let reason = ["reason=\"dns_pointer_loop\""];
    assert_eq!(
        metric(&before, "tetherscope_parse_errors_total", &reason),
        0.0
    );
    for f in exchange(3, &qname, resp.finish()) {
        rig.feed(&f);
    }
    let after = rig.get("/metrics").await;
    assert_eq!(
        metric(&after, "tetherscope_parse_errors_total", &reason),
        1.0
    );
    // The record before the loop still counts; the answer stops at the loop.
    assert_eq!(rig.pipeline.dns_cache_len(), 1);
}

#[tokio::test]
async fn hostile_name_bytes_reach_neither_json_nor_labels() {
    let mut rig = Rig::new(500);
    let hostile: [&[u8]; 4] = [
        b"ev\"il\\\x00\x1b[2J",
        b"\r\n}{=\xff\xfe",
        b"x\x7f\x01",
        b"com",
    ];
    let qname = dns::name_from_labels(&hostile);
    let mut resp = response(4, &qname);
    let server = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 66));
    resp.address(&dns::pointer(dns::QUESTION_AT), server);
    for f in exchange(4, &qname, resp.finish()) {
        rig.feed(&f);
    }
    rig.feed(&syn(IpAddr::V4(PHONE), 40_004, server, 443));

    let flows = rig.flows().await;
    let mut strings = Vec::new();
    flows.iter().for_each(|f| all_strings(f, &mut strings));
    assert!(strings.iter().all(|s| !s.chars().any(char::is_control)));
    let flow = rig.flow_to(server).await;
    let domain = flow["domain"].as_str().expect("named from the DNS answer");
    // Every byte is accounted for: printable ones kept, the rest replaced.
    assert!(
        domain.starts_with("ev\"il\\\u{fffd}\u{fffd}[2j."),
        "{domain:?}"
    );
    assert!(domain.ends_with(".x\u{fffd}\u{fffd}.com"), "{domain:?}");
    let dns = flows
        .iter()
        .find(|f| f["app_protocol"] == "dns")
        .expect("the DNS flow");
    assert_eq!(dns["dns_query"], domain);

    let metrics = rig.get("/metrics").await;
    let values = label_values(&metrics);
    let domains: Vec<&str> = values
        .iter()
        .filter(|(k, _)| k == "domain")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(domains.contains(&"x\u{fffd}\u{fffd}.com"), "{domains:?}");
}

#[tokio::test]
async fn a_hundred_thousand_random_names_stay_within_the_caps() {
    const NAMES: u32 = 100_000;
    const MAX_DOMAINS: usize = 500;
    let cache_cap = PipelineConfig::default().dns_cache_entries as u64;
    let mut rig = Rig::new(MAX_DOMAINS);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut random_label = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b"abcdefghijklmnopqrstuvwxyz0123456789"[(state % 36) as usize]
            })
            .collect()
    };
    for i in 0..NAMES {
        // A random subdomain of a random registrable domain, two addresses
        // each: 200,000 cache insertions for a cache of 131,072.
        let (sub, site) = (random_label(10), random_label(12));
        let qname = dns::name_from_labels(&[&sub, &site, b"com"]);
        let id = i as u16;
        let mut resp = response(id, &qname);
        let a = |k: u32| {
            let n = 2 * i + k;
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                1,
                0,
                0,
                0,
                (n >> 16) as u16,
                n as u16,
            ))
        };
        resp.address(&dns::pointer(dns::QUESTION_AT), a(0));
        resp.address(&dns::pointer(dns::QUESTION_AT), a(1));
        let (phone, resolver) = (IpAddr::V6(PHONE_V6), IpAddr::V6(RESOLVER_V6));
        let [q, r] = exchange_over(phone, resolver, id, &qname, resp.finish());
        rig.feed(&q);
        rig.feed(&r);
        rig.feed(&syn(phone, 20_000 + (i % 40_000) as u16, a(0), 443));
    }
    let started = std::time::Instant::now();
    let metrics = rig.get("/metrics").await;
    let scrape = started.elapsed();

    assert_eq!(rig.pipeline.dns_cache_len() as u64, cache_cap);
    let gauge = metric(&metrics, "tetherscope_flow_table_flows", &["dns_cache"]);
    assert_eq!(gauge as u64, cache_cap);
    let evictions = metric(&metrics, "tetherscope_dns_cache_evictions_total", &[]);
    assert_eq!(evictions as u64, 2 * u64::from(NAMES) - cache_cap);

    let values = label_values(&metrics);
    let domains: std::collections::HashSet<&str> = values
        .iter()
        .filter(|(k, _)| k == "domain")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(
        domains.len() <= MAX_DOMAINS + 1,
        "{} domains",
        domains.len()
    );
    assert!(domains.contains("other"));
    let series = metrics.lines().filter(|l| !l.starts_with('#')).count();
    assert!(series < 10 * MAX_DOMAINS, "{series} series");
    // Every connection is still counted: in its own label or in `other`.
    let flows = metric(
        &metrics,
        "tetherscope_flows_total",
        &["purpose=\"unknown\""],
    );
    assert!(flows >= f64::from(NAMES), "{flows} flows counted");
    eprintln!(
        "{NAMES} names: {} flows, {series} series, {} bytes, scrape {scrape:?}",
        rig.shared.table.len(),
        metrics.len()
    );
}

#[tokio::test]
async fn never_completing_handshakes_and_segment_storms_stay_within_budget() {
    const FLOWS: u16 = 5_000;
    let mut rig = Rig::new(500);
    let budget = PipelineConfig::default().handshake_memory as u64;
    let held = |rig: &Rig| {
        rig.pipeline
            .stats
            .handshake_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let phone = IpAddr::V4(PHONE);
    // The start of a ClientHello that announces 16,000 bytes and never
    // delivers them, then a storm of pieces beyond a gap that never fills.
    let mut start = vec![0x16, 3, 1, 0x3e, 0x80, 1, 0, 0x3e, 0x7c];
    start.resize(1_300, 0x41);
    let piece = [0x42; 700];
    let mut peak = 0;
    for i in 0..FLOWS {
        let server = IpAddr::V4(Ipv4Addr::new(203, 0, 113, (i % 250) as u8));
        let sport = 30_000 + i;
        let seq = 1_000u32;
        rig.feed(&tcp(phone, sport, server, 443, seq, &[]));
        rig.feed(&tcp(phone, sport, server, 443, seq + 1, &start));
        for k in 0..30u32 {
            let offset = 3_000 + (k * 7 % 30) * 700;
            rig.feed(&tcp(phone, sport, server, 443, seq + 1 + offset, &piece));
        }
        peak = peak.max(held(&rig));
        assert!(held(&rig) <= budget, "{} bytes held", held(&rig));
    }
    let metrics = rig.get("/metrics").await;
    let gave_up = metric(
        &metrics,
        "tetherscope_parse_errors_total",
        &["reason=\"handshake_memory_full\""],
    );
    assert!(gave_up > 0.0, "the budget never ran out");
    let gauge = metric(&metrics, "tetherscope_handshake_buffer_bytes", &[]);
    assert_eq!(gauge as u64, held(&rig));
    // Every flow is still counted, packets and all.
    assert_eq!(rig.shared.table.len(), usize::from(FLOWS));

    // Idle flows expire and give their buffers back.
    rig.now += 3_600 * 1_000_000_000;
    rig.pipeline.tick(rig.now);
    drop(rig.pipeline.take_finished().collect::<Vec<_>>());
    assert_eq!(rig.shared.table.len(), 0);
    assert_eq!(held(&rig), 0);

    // With the memory back, a real handshake is read again.
    let server = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80));
    rig.feed(&tcp(phone, 50_000, server, 443, 5, &[]));
    rig.feed(&tcp(
        phone,
        50_000,
        server,
        443,
        6,
        &client_hello("after.example"),
    ));
    assert_eq!(rig.flow_to(server).await["domain"], "after.example");
    eprintln!(
        "{FLOWS} stalled handshakes: peak {peak} bytes held (budget {budget}), {gave_up} given up"
    );
}
