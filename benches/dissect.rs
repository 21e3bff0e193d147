//! Dissector throughput (criterion, `Throughput::Elements`): headers of
//! every frame, DNS messages, TLS ClientHellos, HTTP request heads, and
//! QUIC Initials (decrypt + CRYPTO frames), taken from a real capture.
//!
//! `cargo bench --bench dissect` (bench/run.sh sets the capture).

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tetherscope_wire::link::{self, LinkType};
use tetherscope_wire::{dns, http, ip, quic, tcp, tls, udp};

/// Transport payloads of the capture, sorted by what they carry.
#[derive(Default)]
struct Inputs {
    dns: Vec<Vec<u8>>,
    tls: Vec<Vec<u8>>,
    http: Vec<Vec<u8>>,
    quic: Vec<Vec<u8>>,
}

fn transport(link_type: u32, frame: &[u8]) -> Option<(u8, Vec<u8>, u16, u16)> {
    let f = link::decode(LinkType::from_header_field(link_type), frame).ok()?;
    let p = ip::parse(f.proto, f.payload).ok()?;
    match p.protocol {
        6 => {
            let s = tcp::Segment::parse(p.payload).ok()?;
            Some((6, s.payload().to_vec(), s.src_port(), s.dst_port()))
        }
        17 => {
            let d = udp::Datagram::parse(p.payload).ok()?;
            Some((17, d.payload.to_vec(), d.src_port, d.dst_port))
        }
        _ => None,
    }
}

fn sort(frames: &[(u32, Vec<u8>)]) -> Inputs {
    let mut inputs = Inputs::default();
    for (lt, frame) in frames {
        let Some((proto, payload, sport, dport)) = transport(*lt, frame) else {
            continue;
        };
        if payload.is_empty() {
            continue;
        }
        if proto == 17 && (sport == 53 || dport == 53) {
            inputs.dns.push(payload);
        } else if proto == 17 && dport == 443 && quic::looks_like_initial(&payload) {
            inputs.quic.push(payload);
        } else if proto == 6 && client_hello(&payload).is_some() {
            inputs.tls.push(payload);
        } else if proto == 6 && http::looks_like_request(&payload) {
            inputs.http.push(payload);
        }
    }
    for v in [
        &mut inputs.dns,
        &mut inputs.tls,
        &mut inputs.http,
        &mut inputs.quic,
    ] {
        v.truncate(2000);
    }
    inputs
}

fn bench(c: &mut Criterion) {
    let frames = common::frames(200_000);
    let inputs = sort(&frames);
    let mut g = c.benchmark_group("dissect");

    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("frame_headers", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for (lt, frame) in &frames {
                if let Some(t) = transport_len(*lt, frame) {
                    n += t;
                }
            }
            black_box(n)
        })
    });

    let mut each = |name: &str, items: &[Vec<u8>], f: &dyn Fn(&[u8]) -> usize| {
        if items.is_empty() {
            eprintln!(
                "dissect/{name}: no such packets in {}",
                common::capture_path().display()
            );
            return;
        }
        g.throughput(Throughput::Elements(items.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| items.iter().map(|p| f(black_box(p))).sum::<usize>())
        });
    };
    each("dns_message", &inputs.dns, &|p| {
        let Ok(m) = dns::Message::parse(p) else {
            return 0;
        };
        let q = m
            .first_question()
            .ok()
            .flatten()
            .map_or(0, |q| q.name.as_bytes().len());
        q + m
            .answers()
            .filter_map(Result::ok)
            .map(|r| m.rdata(&r).is_ok() as usize)
            .sum::<usize>()
    });
    each("tls_client_hello", &inputs.tls, &|p| {
        client_hello(p).unwrap_or(0)
    });
    each(
        "http_request_head",
        &inputs.http,
        &|p| match http::parse_request(p) {
            Ok(http::Head::Complete(r)) => r.host.map_or(1, <[u8]>::len),
            _ => 0,
        },
    );
    let mut scratch = vec![0u8; 65_536];
    let quic_items = inputs.quic.clone();
    if !quic_items.is_empty() {
        g.throughput(Throughput::Elements(quic_items.len() as u64));
        g.bench_function("quic_initial_open", |b| {
            b.iter(|| {
                let mut n = 0;
                for d in &quic_items {
                    for pkt in quic::initial_packets(d).flatten() {
                        let Ok(keys) =
                            quic::InitialKeys::new(pkt.version, pkt.dcid, quic::Side::Client)
                        else {
                            continue;
                        };
                        if let Ok(plain) = pkt.open(&keys, &mut scratch) {
                            n += quic::crypto_frames(plain).flatten().count();
                        }
                    }
                }
                black_box(n)
            })
        });
    } else {
        eprintln!(
            "dissect/quic_initial_open: no QUIC Initials in {}",
            common::capture_path().display()
        );
    }
    g.finish();
}

/// A whole ClientHello in one segment: record header, then the message.
fn client_hello(p: &[u8]) -> Option<usize> {
    tls::RecordHeader::parse_handshake(p).ok()?;
    let hello = tls::parse_client_hello_message(p.get(tls::RecordHeader::LEN..)?).ok()?;
    Some(hello.sni.map_or(1, <[u8]>::len))
}

/// Link, IP and transport headers only: what every packet costs.
fn transport_len(link_type: u32, frame: &[u8]) -> Option<usize> {
    let f = link::decode(LinkType::from_header_field(link_type), frame).ok()?;
    let p = ip::parse(f.proto, f.payload).ok()?;
    Some(match p.protocol {
        6 => tcp::Segment::parse(p.payload).ok()?.payload().len(),
        17 => udp::Datagram::parse(p.payload).ok()?.payload.len(),
        _ => 0,
    })
}

criterion_group!(benches, bench);
criterion_main!(benches);
