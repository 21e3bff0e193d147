//! Writes seed corpora for the fuzz targets from a capture (default: the
//! checked-in seed fixture; pass a phone capture with QUIC to get QUIC
//! seeds too), plus one well-formed example of each shape no capture of
//! ours carries (tunnels, h2c, ECH configurations):
//!
//! `cargo run -p tetherscope-testkit --bin fuzz-seeds [CAPTURE.pcap]`
//! (from the repository root). Seeds go to `fuzz/corpus/<target>/`, which
//! is not committed; cargo fuzz reads it.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tetherscope_testkit::frame::LINKTYPE_ETHERNET;
use tetherscope_testkit::http2;
use tetherscope_testkit::pcap::{self, PcapWriter, PcapngWriter};
use tetherscope_testkit::tls::{ech_config, ech_config_list};

/// At most this many frames are taken from the capture.
const MAX_FRAMES: usize = 5000;

/// Where seeds go, one folder per fuzz target.
struct Corpus {
    root: PathBuf,
}

impl Corpus {
    fn put(&self, target: &str, name: &str, blob: &[u8]) -> std::io::Result<()> {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), blob)
    }
}

/// What an Ethernet frame carries: the IP packet, its protocol, the
/// transport payload and the ports.
struct Transport<'a> {
    ip: &'a [u8],
    proto: u8,
    payload: &'a [u8],
    ports: (u16, u16),
}

fn transport(f: &[u8]) -> Option<Transport<'_>> {
    let ethertype = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
    let ip = f.get(14..)?;
    let (proto, l4) = match ethertype {
        0x0800 => (*ip.get(9)?, ip.get(usize::from(ip.first()? & 15) * 4..)?),
        0x86dd => (*ip.get(6)?, ip.get(40..)?),
        _ => return None,
    };
    let ports = (
        u16::from_be_bytes([*l4.first()?, *l4.get(1)?]),
        u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]),
    );
    let payload = match proto {
        6 if l4.len() >= 20 => l4.get(usize::from(l4[12] >> 4) * 4..)?,
        17 if l4.len() >= 8 => &l4[8..],
        _ => return None,
    };
    Some(Transport {
        ip,
        proto,
        payload,
        ports,
    })
}

/// Frames as the pipeline target reads them: each after its length.
fn length_prefixed(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.extend_from_slice(&(f.len() as u16).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

fn seeds_from_frames(corpus: &Corpus, frames: &[&[u8]]) -> std::io::Result<()> {
    for (i, f) in frames.iter().enumerate() {
        corpus.put("link_frame", &format!("f{i}"), &[&[0u8][..], f].concat())?;
        let Some(t) = transport(f) else { continue };
        corpus.put("ip_packet", &format!("p{i}"), t.ip)?;
        let (p, (sport, dport)) = (t.payload, t.ports);
        if p.is_empty() {
            continue;
        }
        if t.proto == 17 && [67, 68, 5353].iter().any(|&p| sport == p || dport == p) {
            corpus.put("device_identity", &format!("i{i}"), p)?;
        } else if t.proto == 17 && (sport == 53 || dport == 53) {
            corpus.put("dns_message", &format!("d{i}"), p)?;
        } else if t.proto == 17 && dport == 443 && p[0] & 0xc0 == 0xc0 {
            corpus.put("quic_initial", &format!("q{i}"), p)?;
        } else if t.proto == 6 && p[0] == 0x16 && p.len() > 9 {
            corpus.put("tls_client_hello", &format!("t{i}"), &p[5..])?;
            let head = &p[..p.len().min(255)];
            let seed = [&[0, 0, head.len() as u8, 0][..], head].concat();
            corpus.put("tcp_reassembly", &format!("r{i}"), &seed)?;
        } else if t.proto == 6
            && [&b"GET "[..], b"POST", b"HEAD", b"CONN"].contains(&&p[..p.len().min(4)])
        {
            corpus.put("http_request", &format!("h{i}"), p)?;
        }
    }
    for (n, chunk) in frames.chunks(50).enumerate() {
        corpus.put("pipeline", &format!("s{}", n * 50), &length_prefixed(chunk))?;
    }
    let first: Vec<&[u8]> = frames.iter().take(20).copied().collect();
    let mut classic = PcapWriter::new(Vec::new());
    let mut ng = PcapngWriter::new(Vec::new(), LINKTYPE_ETHERNET);
    for (i, f) in first.iter().enumerate() {
        classic.record_raw(1, i as u32, f, f.len() as u32);
        ng.packet(i as u64, f);
    }
    let classic = classic.finish();
    corpus.put("capture_file", "pcap", &classic)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&classic)?;
    corpus.put("capture_file", "pcap-gz", &gz.finish()?)?;
    corpus.put("capture_file", "pcapng", &ng.finish())
}

/// One well-formed example of each shape the tunnel, h2c and ech_config
/// targets parse.
fn built_seeds(corpus: &Corpus, frames: &[&[u8]]) -> std::io::Result<()> {
    let eth: &[u8] = frames.first().copied().unwrap_or(&[0; 14]);
    let ipv4 = frames
        .iter()
        .filter(|f| f.get(12..14) == Some(&[0x08, 0x00]))
        .find_map(|f| transport(f).map(|t| t.ip.to_vec()))
        .unwrap_or_else(|| [&[0x45u8][..], &[0; 19]].concat());
    let vxlan = [&[0x08, 0, 0, 0, 0, 0, 42, 0][..], eth].concat(); // VNI 42
    corpus.put("tunnel", "vxlan", &vxlan)?;
    corpus.put(
        "tunnel",
        "geneve",
        &[&[0, 0, 0x65, 0x58, 0, 0, 7, 0][..], eth].concat(),
    )?;
    let option = [0x01, 0x02, 3, 1, 0, 0, 0, 0]; // class 0x0102, type 3, 4 bytes
    let geneve_opt = [&[2, 0, 0x08, 0x00, 0, 0, 7, 0][..], &option, &ipv4].concat();
    corpus.put("tunnel", "geneve-opt", &geneve_opt)?;
    corpus.put("tunnel", "gre", &[&[0, 0, 0x08, 0x00][..], &ipv4].concat())?;
    let gre_key_seq = [&[0x30, 0x00, 0x65, 0x58, 0, 0, 0, 1, 0, 0, 0, 2][..], eth].concat();
    corpus.put("tunnel", "gre-key-seq", &gre_key_seq)?;
    let teredo = [&[0, 1, 0, 0][..], &[0; 8], &[0x60], &[0; 39]].concat();
    corpus.put("tunnel", "teredo", &teredo)?;

    // HEADERS: :method GET (indexed 2), :scheme http (6), :path / (4),
    // :authority as a literal with incremental indexing (name index 1).
    let block = [&[0x82, 0x86, 0x84, 0x41, 11][..], b"example.org"].concat();
    let settings = http2::frame(4, 0, 0, &[]);
    let stream = [&[0][..], &settings, &http2::frame(1, 5, 1, &block)].concat();
    corpus.put("h2c", "stream", &stream)?;
    corpus.put("h2c", "hpack", &[&[1][..], &block].concat())?;
    // "www.example.com" Huffman-coded (RFC 7541 C.4.1).
    let huffman = [
        2, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
    ];
    corpus.put("h2c", "huffman", &huffman)?;

    let list = ech_config_list(&[
        ech_config(7, "public.example"),
        ech_config(7, "other.example"),
    ]);
    corpus.put("ech_config", "list", &list)?;
    // The same list as an HTTPS record's SvcParams: alpn, then ech (key 5).
    let mut params = vec![0, 1, 0, 3, 2, b'h', b'2', 0, 5];
    params.extend_from_slice(&(list.len() as u16).to_be_bytes());
    params.extend_from_slice(&list);
    corpus.put("ech_config", "svcparams", &params)
}

fn main() -> ExitCode {
    let capture = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("tests/fixtures/seed-domains.pcap").to_owned());
    let bytes = match std::fs::read(&capture) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("fuzz-seeds: {}: {e}", capture.display());
            return ExitCode::FAILURE;
        }
    };
    let Some((_, records)) = pcap::records(&bytes) else {
        eprintln!("fuzz-seeds: {}: not a classic pcap file", capture.display());
        return ExitCode::FAILURE;
    };
    let frames: Vec<&[u8]> = records.iter().take(MAX_FRAMES).map(|r| r.data).collect();
    let corpus = Corpus {
        root: PathBuf::from("fuzz/corpus"),
    };
    if let Err(e) = seeds_from_frames(&corpus, &frames).and_then(|()| built_seeds(&corpus, &frames))
    {
        eprintln!("fuzz-seeds: writing {}: {e}", corpus.root.display());
        return ExitCode::FAILURE;
    }
    println!(
        "fuzz-seeds: seeds from {} frames of {}",
        frames.len(),
        capture.display()
    );
    ExitCode::SUCCESS
}
