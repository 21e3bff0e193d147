//! Deterministic pseudo-random inputs through the newer parsers (tunnels,
//! h2c/HPACK/Huffman, ECH configurations, Cisco HDLC): none may panic, and
//! what they return lies inside the input. The fuzz targets go further;
//! this keeps a quick check in every test run.

use tetherscope_wire::link::{decode, LinkType};
use tetherscope_wire::{ech, hpack, http2, tunnel};

/// xorshift64*: reproducible bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Up to `max` bytes, biased towards small values and 0xff so that
    /// length fields and prefixes take interesting values.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() as usize) % (max + 1);
        (0..n)
            .map(|_| match self.next() % 4 {
                0 => 0,
                1 => 0xff,
                2 => (self.next() % 8) as u8,
                _ => self.next() as u8,
            })
            .collect()
    }
}

fn within(part: &[u8], whole: &[u8]) -> bool {
    let (start, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    p >= start && p + part.len() <= start + whole.len()
}

#[test]
fn newer_parsers_survive_random_bytes() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let data = rng.bytes(96);
        for parse in [tunnel::vxlan, tunnel::geneve, tunnel::gre, tunnel::teredo] {
            if let Ok(
                tunnel::Inner::Ip(_, b) | tunnel::Inner::Ethernet(b) | tunnel::Inner::Ppp(b),
            ) = parse(&data)
            {
                assert!(within(b, &data));
            }
        }
        let mut stream = http2::PREFACE.to_vec();
        stream.extend_from_slice(&data);
        let _ = http2::parse_client_stream(&stream);
        let _ = hpack::Decoder::default().decode(&data, |_, _| {});
        let mut out = Vec::new();
        let _ = hpack::huffman_decode(&data, &mut out);
        for name in ech::public_names(&data).flatten() {
            assert!(within(name, &data));
        }
        if let Ok(f) = decode(LinkType::C_HDLC, &data) {
            assert!(within(f.payload, &data));
        }
    }
}
