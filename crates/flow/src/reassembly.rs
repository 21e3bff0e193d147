//! A small, bounded reassembly buffer for the first bytes of a stream.
//!
//! Used for the TCP bytes of a ClientHello or HTTP head (offset = sequence
//! number relative to the stream start) and for QUIC CRYPTO frames (offset =
//! CRYPTO offset). It only ever holds the first `cap` bytes of a stream, keeps
//! at most a few out-of-order pieces, and is dropped once the handshake has
//! been read, so a flow that never completes costs at most `cap` bytes.

/// Out-of-order pieces kept before new ones are dropped.
const MAX_PENDING: usize = 16;

/// Contiguous bytes from offset 0 plus pending out-of-order pieces.
#[derive(Debug, Default)]
pub struct Reassembler {
    data: Vec<u8>,
    pending: Vec<(u64, Vec<u8>)>,
    cap: usize,
    /// Set when bytes had to be dropped because a bound was reached.
    pub overflowed: bool,
}

impl Reassembler {
    /// A buffer holding at most `cap` bytes of the stream.
    pub fn new(cap: usize) -> Self {
        Reassembler {
            data: Vec::new(),
            pending: Vec::new(),
            cap,
            overflowed: false,
        }
    }

    /// The contiguous bytes from offset 0.
    pub fn contiguous(&self) -> &[u8] {
        &self.data
    }

    /// Adds bytes at `offset`; returns true if the contiguous prefix grew.
    pub fn insert(&mut self, offset: u64, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return false;
        }
        let end = offset.saturating_add(bytes.len() as u64);
        let have = self.data.len() as u64;
        if end <= have {
            return false; // retransmission
        }
        if offset <= have {
            self.append_from(offset, bytes);
            self.drain_pending();
            return true;
        }
        if offset >= self.cap as u64 || self.pending.len() >= MAX_PENDING {
            self.overflowed = true;
            return false;
        }
        let keep = ((self.cap as u64 - offset) as usize).min(bytes.len());
        self.pending.push((offset, bytes[..keep].to_vec()));
        false
    }

    fn append_from(&mut self, offset: u64, bytes: &[u8]) {
        let skip = (self.data.len() as u64 - offset) as usize;
        let room = self.cap.saturating_sub(self.data.len());
        let new = &bytes[skip..];
        if new.len() > room {
            self.overflowed = true;
        }
        self.data.extend_from_slice(&new[..new.len().min(room)]);
    }

    fn drain_pending(&mut self) {
        loop {
            let have = self.data.len() as u64;
            let Some(i) = self.pending.iter().position(|(o, _)| *o <= have) else {
                return;
            };
            let (o, piece) = self.pending.swap_remove(i);
            if o + piece.len() as u64 > have {
                self.append_from(o, &piece);
            }
        }
    }

    /// Forgets the first `n` contiguous bytes (e.g. an HTTP CONNECT head) so
    /// the rest can be read as a new stream; pending pieces are shifted.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.data.len());
        self.data.drain(..n);
        for (o, _) in &mut self.pending {
            *o = o.saturating_sub(n as u64);
        }
        self.cap = self.cap.saturating_sub(n);
    }

    /// Bytes held, for memory accounting.
    pub fn held(&self) -> usize {
        self.data.len() + self.pending.iter().map(|(_, p)| p.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_out_of_order_and_duplicates() {
        let mut r = Reassembler::new(100);
        assert!(!r.insert(5, b"fgh"));
        assert!(r.insert(0, b"abcde"));
        assert_eq!(r.contiguous(), b"abcdefgh");
        assert!(!r.insert(2, b"cd"));
        assert!(r.insert(6, b"ghij"));
        assert_eq!(r.contiguous(), b"abcdefghij");
    }

    #[test]
    fn bounded() {
        let mut r = Reassembler::new(8);
        r.insert(0, b"0123456789");
        assert_eq!(r.contiguous(), b"01234567");
        assert!(r.overflowed);
        let mut r = Reassembler::new(1000);
        for i in 0..100u64 {
            r.insert(10 + i * 2, b"x");
        }
        assert!(r.pending.len() <= MAX_PENDING);
        assert!(r.held() <= 1000);
    }
}
