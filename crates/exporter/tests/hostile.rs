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
use tower::ServiceExt;

const ETHERNET: u32 = 1;
const PHONE: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 23);
const PHONE_V6: Ipv6Addr = Ipv6Addr::new(0xfd42, 0, 0, 0, 0, 0, 0, 23);
const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 1);
const RESOLVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd42, 0, 0, 0, 0, 0, 0, 1);
const T0: u64 = 1_700_000_000_000_000_000;

// === frames ===

fn ethernet(ether_type: u16, from_phone: bool) -> Vec<u8> {
    let (phone, laptop) = ([2, 0x42, 0, 0, 0, 23], [2, 0x42, 0, 0, 0, 1]);
    let (dst, src) = if from_phone {
        (laptop, phone)
    } else {
        (phone, laptop)
    };
    let mut f = Vec::with_capacity(1600);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f
}

/// An IPv4 or IPv6 frame (checksums left zero: tetherscope never checks them).
fn ip_frame(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let from_phone = src == IpAddr::V4(PHONE) || src == IpAddr::V6(PHONE_V6);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut f = ethernet(0x0800, from_phone);
            f.extend_from_slice(&[0x45, 0]);
            f.extend_from_slice(&(20 + l4.len() as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
            f.extend_from_slice(l4);
            f
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut f = ethernet(0x86dd, from_phone);
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
            f.extend_from_slice(l4);
            f
        }
        _ => unreachable!("mixed address families"),
    }
}

fn udp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut l4 = Vec::with_capacity(8 + payload.len());
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.extend_from_slice(payload);
    ip_frame(src, dst, 17, &l4)
}

fn tcp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let flags = if payload.is_empty() { 0x02 } else { 0x18 }; // SYN, or PSH+ACK
    let mut l4 = Vec::with_capacity(20 + payload.len());
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&seq.to_be_bytes());
    l4.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    l4.extend_from_slice(payload);
    ip_frame(src, dst, 6, &l4)
}

fn syn(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Vec<u8> {
    tcp(src, sport, dst, dport, 0, &[])
}

/// A TLS record holding a ClientHello that names `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = vec![0, 0]; // server_name
    ext.extend_from_slice(&(name.len() as u16 + 5).to_be_bytes());
    ext.extend_from_slice(&(name.len() as u16 + 3).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]); // random
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]); // session id, suites, compression
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&(body.len() as u16 + 4).to_be_bytes());
    record.push(1);
    record.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    record.extend_from_slice(&body);
    record
}

// === DNS messages ===

/// A name in wire form, uncompressed.
fn wire_name(labels: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in labels {
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
    out
}

/// A response to one A question; records are appended raw.
struct Response {
    bytes: Vec<u8>,
    answers: u16,
}

/// Where the question name starts: records point here to say "the same name".
const QUESTION_AT: u16 = 12;

impl Response {
    fn new(id: u16, qname: &[u8]) -> Self {
        let mut bytes = id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(qname);
        bytes.extend_from_slice(&[0, 1, 0, 1]);
        Response { bytes, answers: 0 }
    }
    /// Appends a record whose owner is `owner` (wire bytes); returns the
    /// offset of its data.
    fn record(&mut self, owner: &[u8], rtype: u16, rdata: &[u8]) -> u16 {
        self.bytes.extend_from_slice(owner);
        self.bytes.extend_from_slice(&rtype.to_be_bytes());
        self.bytes.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
        self.bytes
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        let at = self.bytes.len() as u16;
        self.bytes.extend_from_slice(rdata);
        self.answers += 1;
        at
    }
    fn address(&mut self, owner: &[u8], a: IpAddr) {
        match a {
            IpAddr::V4(v4) => self.record(owner, 1, &v4.octets()),
            IpAddr::V6(v6) => self.record(owner, 28, &v6.octets()),
        };
    }
    fn finish(mut self) -> Vec<u8> {
        self.bytes[6..8].copy_from_slice(&self.answers.to_be_bytes());
        self.bytes
    }
}

fn pointer(at: u16) -> [u8; 2] {
    (0xc000 | at).to_be_bytes()
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
    let mut query = id.to_be_bytes().to_vec();
    query.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    query.extend_from_slice(qname);
    query.extend_from_slice(&[0, 1, 0, 1]);
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
    let qname = wire_name(&[b"many", b"example"]);
    let mut resp = Response::new(1, &qname);
    let addresses: Vec<IpAddr> = (0..1000u16)
        .map(|i| match i / 250 {
            0 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, i as u8)),
            1 => IpAddr::V4(Ipv4Addr::new(198, 51, 100, (i - 250) as u8)),
            2 => IpAddr::V4(Ipv4Addr::new(203, 0, 113, (i - 500) as u8)),
            _ => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)),
        })
        .collect();
    for a in &addresses {
        resp.address(&pointer(QUESTION_AT), *a);
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
    let qname = wire_name(&[b"start", b"example"]);
    let mut resp = Response::new(2, &qname);
    // start.example → c1.example → ... → c100.example → 192.0.2.50; each
    // record's owner points at the previous record's target.
    let mut owner = QUESTION_AT;
    for i in 1..=100 {
        let target = wire_name(&[format!("c{i}").as_bytes(), b"example"]);
        owner = resp.record(&pointer(owner), 5, &target);
    }
    let server = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 50));
    resp.address(&pointer(owner), server);
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
    let qname = wire_name(&[b"loop", b"example"]);
    let mut resp = Response::new(3, &qname);
    resp.address(
        &pointer(QUESTION_AT),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 60)),
    );
    // The second record's owner points at itself.
    let at = resp.bytes.len() as u16;
    resp.address(&pointer(at), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 61)));
    // A third points forward, past itself.
    let at = resp.bytes.len() as u16;
    resp.address(&pointer(at + 40), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 62)));
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
    let qname = wire_name(&hostile);
    let mut resp = Response::new(4, &qname);
    let server = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 66));
    resp.address(&pointer(QUESTION_AT), server);
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
        let qname = wire_name(&[&sub, &site, b"com"]);
        let id = i as u16;
        let mut resp = Response::new(id, &qname);
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
        resp.address(&pointer(QUESTION_AT), a(0));
        resp.address(&pointer(QUESTION_AT), a(1));
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
