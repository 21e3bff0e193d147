//! A minimal MaxMind DB writer, so tests build the small `.mmdb` files they
//! read instead of committing binaries. It follows the published "MaxMind DB
//! File Format Specification" 2.0: a binary search tree of 24-bit records
//! (IPv6 tree; IPv4 networks sit under `::/96`), 16 zero bytes, the data
//! section, then `\xAB\xCD\xEFMaxMind.com` and the metadata map.

use std::net::IpAddr;

/// A value in the data section.
#[derive(Debug, Clone)]
pub enum Value {
    /// UTF-8 string (type 2).
    Str(String),
    /// Unsigned 32-bit integer (type 6).
    U32(u32),
    /// Map from string keys (type 7).
    Map(Vec<(String, Value)>),
}

/// A map value from `(key, value)` pairs.
pub fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// A string value.
pub fn s(text: &str) -> Value {
    Value::Str(text.to_string())
}

#[derive(Clone, Copy)]
enum Record {
    Empty,
    Node(u32),
    Data(u32),
}

/// Collects networks, then writes the file.
pub struct Writer {
    nodes: Vec<[Record; 2]>,
    data: Vec<u8>,
    database_type: String,
    build_epoch: u64,
}

impl Writer {
    /// An empty database of the given type, built at `build_epoch`.
    pub fn new(database_type: &str, build_epoch: u64) -> Self {
        Self {
            nodes: vec![[Record::Empty; 2]],
            data: Vec::new(),
            database_type: database_type.into(),
            build_epoch,
        }
    }

    /// Maps `network/prefix` to `value` (networks must not overlap).
    pub fn insert(&mut self, network: &str, value: &Value) {
        let (addr, prefix) = network.split_once('/').expect("network/prefix");
        let addr: IpAddr = addr.parse().expect("address");
        let prefix: u32 = prefix.parse().expect("prefix");
        let (bits, depth) = match addr {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), prefix + 96),
            IpAddr::V6(v6) => (u128::from(v6), prefix),
        };
        let offset = self.data.len() as u32;
        encode(value, &mut self.data);
        let mut node = 0usize;
        for i in 0..depth {
            let bit = ((bits >> (127 - i)) & 1) as usize;
            if i + 1 == depth {
                self.nodes[node][bit] = Record::Data(offset);
                break;
            }
            node = match self.nodes[node][bit] {
                Record::Node(next) => next as usize,
                Record::Empty => {
                    self.nodes.push([Record::Empty; 2]);
                    let next = self.nodes.len() - 1;
                    self.nodes[node][bit] = Record::Node(next as u32);
                    next
                }
                Record::Data(_) => panic!("overlapping networks are not supported"),
            };
        }
    }

    /// The finished file.
    pub fn finish(&self) -> Vec<u8> {
        let count = self.nodes.len() as u32;
        let mut out = Vec::new();
        for node in &self.nodes {
            for record in node {
                let value = match *record {
                    Record::Empty => count,
                    Record::Node(n) => n,
                    Record::Data(offset) => count + 16 + offset,
                };
                out.extend_from_slice(&value.to_be_bytes()[1..]);
            }
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let mut meta = Vec::new();
        control(7, 9, &mut meta);
        for (key, small) in [
            ("binary_format_major_version", 2u32),
            ("binary_format_minor_version", 0),
            ("ip_version", 6),
            ("record_size", 24),
        ] {
            encode(&s(key), &mut meta);
            uint(5, small, &mut meta);
        }
        encode(&s("node_count"), &mut meta);
        encode(&Value::U32(count), &mut meta);
        encode(&s("build_epoch"), &mut meta);
        // uint64 is extended type 9: control byte of type 0, then 9 - 7.
        let epoch = self.build_epoch.to_be_bytes();
        let skip = epoch.iter().take_while(|&&b| b == 0).count();
        meta.push((8 - skip) as u8);
        meta.push(2);
        meta.extend_from_slice(&epoch[skip..]);
        encode(&s("database_type"), &mut meta);
        encode(&s(&self.database_type), &mut meta);
        encode(&s("description"), &mut meta);
        encode(&map(&[("en", s("test table"))]), &mut meta);
        encode(&s("languages"), &mut meta);
        // array is extended type 11.
        meta.push(1);
        meta.push(4);
        encode(&s("en"), &mut meta);
        out.extend_from_slice(&meta);
        out
    }
}

fn control(kind: u8, size: usize, out: &mut Vec<u8>) {
    assert!(size < 285, "test values are small");
    if size < 29 {
        out.push((kind << 5) | size as u8);
    } else {
        out.push((kind << 5) | 29);
        out.push((size - 29) as u8);
    }
}

fn uint(kind: u8, n: u32, out: &mut Vec<u8>) {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    control(kind, 4 - skip, out);
    out.extend_from_slice(&bytes[skip..]);
}

fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Str(text) => {
            control(2, text.len(), out);
            out.extend_from_slice(text.as_bytes());
        }
        Value::U32(n) => uint(6, *n, out),
        Value::Map(pairs) => {
            control(7, pairs.len(), out);
            for (k, v) in pairs {
                encode(&s(k), out);
                encode(v, out);
            }
        }
    }
}
