//! IP fragment reassembly, for UDP (fragmented DNS answers).
//!
//! Bounded in every direction: datagrams in progress, bytes per datagram,
//! pieces per datagram, and time. Anything past a bound is dropped and
//! counted by the caller.

use std::net::IpAddr;

use ahash::HashMap;

use crate::{Nanos, SECOND};

const MAX_DATAGRAMS: usize = 1024;
const MAX_PIECES: usize = 64;
const MAX_LEN: usize = 65_535;
const TIMEOUT: Nanos = 30 * SECOND;

type Key = (IpAddr, IpAddr, u8, u32);

#[derive(Debug)]
struct Partial {
    pieces: Vec<(u32, Vec<u8>)>,
    total: Option<u32>,
    wire_bytes: u64,
    count: u32,
    started: Nanos,
}

/// A reassembled datagram.
#[derive(Debug)]
pub struct Reassembled {
    /// The transport-layer bytes.
    pub payload: Vec<u8>,
    /// Wire bytes of all its fragments.
    pub wire_bytes: u64,
    /// How many fragments it took.
    pub fragments: u32,
}

/// Fragments waiting for their siblings.
#[derive(Debug, Default)]
pub struct Fragments {
    partial: HashMap<Key, Partial>,
    /// Datagrams given up (timeout, bounds, overlaps).
    pub dropped: u64,
}

impl Fragments {
    /// Adds one fragment; returns the datagram once all pieces are in.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        ident: u32,
        offset: u32,
        more: bool,
        data: &[u8],
        wire_len: u32,
        now: Nanos,
    ) -> Option<Reassembled> {
        let key = (src, dst, protocol, ident);
        if !self.partial.contains_key(&key) && self.partial.len() >= MAX_DATAGRAMS {
            self.expire(now);
            if self.partial.len() >= MAX_DATAGRAMS {
                self.dropped += 1;
                return None;
            }
        }
        let p = self.partial.entry(key).or_insert_with(|| Partial {
            pieces: Vec::new(),
            total: None,
            wire_bytes: 0,
            count: 0,
            started: now,
        });
        let end = offset as usize + data.len();
        if end > MAX_LEN || p.pieces.len() >= MAX_PIECES {
            self.partial.remove(&key);
            self.dropped += 1;
            return None;
        }
        p.wire_bytes += u64::from(wire_len);
        p.count += 1;
        if !more {
            p.total = Some(end as u32);
        }
        p.pieces.push((offset, data.to_vec()));
        let total = p.total? as usize;
        let mut covered = 0usize;
        p.pieces.sort_by_key(|(o, _)| *o);
        for (o, d) in &p.pieces {
            if *o as usize > covered {
                return None; // a hole remains
            }
            covered = covered.max(*o as usize + d.len());
        }
        if covered < total {
            return None;
        }
        let p = self.partial.remove(&key)?;
        let mut payload = vec![0u8; total];
        for (o, d) in &p.pieces {
            let o = *o as usize;
            let n = d.len().min(total.saturating_sub(o));
            payload[o..o + n].copy_from_slice(&d[..n]);
        }
        Some(Reassembled {
            payload,
            wire_bytes: p.wire_bytes,
            fragments: p.count,
        })
    }

    /// Drops datagrams older than the timeout.
    pub fn expire(&mut self, now: Nanos) {
        let before = self.partial.len();
        self.partial
            .retain(|_, p| now.saturating_sub(p.started) < TIMEOUT);
        self.dropped += (before - self.partial.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_out_of_order() {
        let mut f = Fragments::default();
        let (s, d) = ("192.0.2.1".parse().unwrap(), "10.42.0.2".parse().unwrap());
        assert!(f.add(s, d, 17, 7, 8, false, b"orld", 30, 0).is_none());
        let r = f.add(s, d, 17, 7, 0, true, b"hello, w", 40, 0).unwrap();
        assert_eq!(r.payload, b"hello, world");
        assert_eq!((r.wire_bytes, r.fragments), (70, 2));
    }

    #[test]
    fn bounded_in_progress() {
        let mut f = Fragments::default();
        let d = "10.42.0.2".parse().unwrap();
        for i in 0..5000u32 {
            f.add("192.0.2.1".parse().unwrap(), d, 17, i, 0, true, b"x", 1, 0);
            assert!(f.partial.len() <= MAX_DATAGRAMS);
        }
        assert!(f.dropped > 0);
        assert!(f
            .add(
                "192.0.2.1".parse().unwrap(),
                d,
                17,
                1,
                65_530,
                false,
                &[0; 10],
                1,
                0
            )
            .is_none());
    }
}
