//! A small, bounded reassembly buffer for the first bytes of a stream.
//!
//! Used for the TCP bytes of a ClientHello or HTTP head (offset = sequence
//! number relative to the stream start) and for QUIC CRYPTO frames (offset =
//! CRYPTO offset). It only ever holds the first `cap` bytes of a stream, keeps
//! at most a few out-of-order pieces, and is dropped once the handshake has
//! been read, so a flow that never completes costs at most `cap` bytes. All
//! buffers of a pipeline also draw on one [`Budget`], so that many flows that
//! never complete cannot hold `cap` bytes each.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Out-of-order pieces kept before new ones are dropped.
const MAX_PENDING: usize = 16;

/// Bytes all reassembly buffers of a pipeline may hold together. Buffers
/// account for what they hold as it changes and give it back when dropped,
/// wherever the flow that owned them ends.
#[derive(Debug, Clone)]
pub struct Budget {
    used: Arc<AtomicU64>,
    limit: u64,
}

impl Budget {
    /// A budget of `limit` bytes, counted in `used`.
    pub fn new(used: Arc<AtomicU64>, limit: usize) -> Self {
        Budget {
            used,
            limit: limit as u64,
        }
    }
    /// A budget that never runs out.
    pub fn unlimited() -> Self {
        Budget::new(Arc::default(), usize::MAX)
    }
    /// Bytes that can still be taken.
    fn available(&self) -> usize {
        self.limit.saturating_sub(self.used.load(Relaxed)) as usize
    }
}

/// Contiguous bytes from offset 0 plus pending out-of-order pieces.
#[derive(Debug)]
pub struct Reassembler {
    data: Vec<u8>,
    pending: Vec<(u64, Vec<u8>)>,
    cap: usize,
    budget: Budget,
    /// Bytes currently counted against the budget (= `held()`).
    accounted: usize,
    /// Set when bytes had to be dropped because a bound was reached.
    pub overflowed: bool,
    /// Set when bytes were refused because the shared budget ran out.
    pub starved: bool,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(0)
    }
}

impl Drop for Reassembler {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.accounted as u64, Relaxed);
    }
}

impl Reassembler {
    /// A buffer holding at most `cap` bytes of the stream, on no shared
    /// budget.
    pub fn new(cap: usize) -> Self {
        Reassembler::with_budget(cap, Budget::unlimited())
    }

    /// A buffer holding at most `cap` bytes of the stream, drawn from
    /// `budget`.
    pub fn with_budget(cap: usize, budget: Budget) -> Self {
        Reassembler {
            data: Vec::new(),
            pending: Vec::new(),
            cap,
            budget,
            accounted: 0,
            overflowed: false,
            starved: false,
        }
    }

    /// Counts what is held now against the budget.
    fn reconcile(&mut self) {
        let held = self.held();
        let used = &self.budget.used;
        if held >= self.accounted {
            used.fetch_add((held - self.accounted) as u64, Relaxed);
        } else {
            used.fetch_sub((self.accounted - held) as u64, Relaxed);
        }
        self.accounted = held;
    }

    /// Whether the budget has room for `n` more bytes; marks the buffer
    /// starved if not.
    fn afford(&mut self, n: usize) -> bool {
        if n > self.budget.available() {
            self.starved = true;
            self.overflowed = true;
            return false;
        }
        true
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
            let grows = (end - have).min(self.cap.saturating_sub(self.data.len()) as u64);
            if !self.afford(grows as usize) {
                return false;
            }
            self.append_from(offset, bytes);
            self.drain_pending();
            self.trim_pending();
            self.reconcile();
            return true;
        }
        let room = self.cap.saturating_sub(self.held());
        if offset >= self.cap as u64 || self.pending.len() >= MAX_PENDING || room == 0 {
            self.overflowed = true;
            return false;
        }
        // The piece's start, within the stream cap and the byte budget.
        let keep = ((self.cap as u64 - offset) as usize)
            .min(bytes.len())
            .min(room);
        if keep < bytes.len() {
            self.overflowed = true;
        }
        if !self.afford(keep) {
            return false;
        }
        self.pending.push((offset, bytes[..keep].to_vec()));
        self.reconcile();
        false
    }

    /// Pending pieces can overlap each other, so the prefix growing over the
    /// gap can leave more than `cap` bytes held: drop the newest pieces then.
    fn trim_pending(&mut self) {
        while self.held() > self.cap {
            self.pending.pop();
            self.overflowed = true;
        }
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
        self.reconcile();
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

    #[test]
    fn a_storm_of_large_out_of_order_pieces_holds_at_most_cap() {
        // Every piece starts just after a gap that never fills and is as long
        // as the cap: without a byte budget, 16 of them would hold 16 × cap.
        let cap = 16 * 1024;
        let piece = vec![b'x'; cap];
        let mut r = Reassembler::new(cap);
        for i in 0..1000u64 {
            r.insert(1 + i % 7, &piece);
            assert!(r.held() <= cap, "held {} after {i} pieces", r.held());
        }
        assert!(r.overflowed);
        // Overlapping pieces, then the gap fills: still within the cap.
        let mut r = Reassembler::new(100);
        r.insert(90, &[b'a'; 10]);
        r.insert(80, &[b'b'; 20]);
        r.insert(50, &[b'c'; 50]);
        r.insert(0, &[b'd'; 79]);
        assert!(r.held() <= 100, "held {}", r.held());
        assert_eq!(r.contiguous().len(), 100);
    }

    #[test]
    fn buffers_share_one_budget_and_give_it_back() {
        let used = Arc::new(AtomicU64::new(0));
        let budget = Budget::new(used.clone(), 1000);
        let mut a = Reassembler::with_budget(800, budget.clone());
        let mut b = Reassembler::with_budget(800, budget.clone());
        assert!(a.insert(0, &[1; 600]));
        a.insert(700, &[2; 50]);
        assert_eq!(used.load(Relaxed), 650);
        // b would push the total past 1000: refused, and b says why.
        assert!(!b.insert(0, &[3; 400]));
        assert!(b.starved && b.held() == 0);
        assert!(b.insert(0, &[3; 300]));
        assert_eq!(used.load(Relaxed), 950);
        // a cannot grow by 100 with 50 left; once b is gone it can, and the
        // bytes that join the pending piece are counted once.
        assert!(!a.insert(600, &[4; 100]) && a.starved);
        drop(b);
        assert_eq!(used.load(Relaxed), 650);
        assert!(a.insert(600, &[4; 100]));
        assert_eq!((a.held(), a.contiguous().len()), (750, 750));
        assert_eq!(used.load(Relaxed), 750);
        a.consume(100);
        assert_eq!(used.load(Relaxed), 650);
        drop(a);
        assert_eq!(used.load(Relaxed), 0);
    }
}
