//! The DNS answer cache: which name a client asked for to get an address.
//!
//! Keyed by (client address, answered address), because several phones share
//! one resolver and CDNs share addresses between many names: the latest
//! answer a client received for an address is the best guess for what its
//! next connection there is about. Entries expire after their TTL plus a
//! slack (clients keep answers a little longer than the TTL), and the cache
//! never holds more than `capacity` entries: the oldest go first.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use ahash::HashMap;

use crate::{Nanos, SECOND};

/// What a client's resolver answered: the name asked for and the CNAME chain
/// that led to the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The question name.
    pub query: Box<str>,
    /// CNAME targets in order, from the first alias to the last.
    pub cname_chain: Box<[Box<str>]>,
}

#[derive(Debug)]
struct Entry {
    resolution: Arc<Resolution>,
    expires: Nanos,
    generation: u64,
}

/// Bounded (client, address) → resolution cache.
#[derive(Debug)]
pub struct DnsCache {
    map: HashMap<(IpAddr, IpAddr), Entry>,
    order: VecDeque<((IpAddr, IpAddr), u64)>,
    capacity: usize,
    slack: Nanos,
    generation: u64,
    /// Entries pushed out because the cache was full.
    pub evicted: u64,
}

/// Answers are trusted at least this long, whatever their TTL says.
const MIN_TTL: Nanos = 60 * SECOND;

impl DnsCache {
    /// A cache of at most `capacity` entries; `slack` is added to every TTL.
    pub fn new(capacity: usize, slack: Nanos) -> Self {
        DnsCache {
            map: HashMap::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            slack,
            generation: 0,
            evicted: 0,
        }
    }

    /// Records that `client` was told `address` for `resolution`.
    pub fn insert(
        &mut self,
        client: IpAddr,
        address: IpAddr,
        resolution: Arc<Resolution>,
        ttl_secs: u32,
        now: Nanos,
    ) {
        let expires = now + (u64::from(ttl_secs) * SECOND).max(MIN_TTL) + self.slack;
        self.put((client, address), resolution, expires);
    }

    /// Puts back an answer saved earlier, with its expiry (Unix
    /// nanoseconds, packet time): the answers a client had before a restart
    /// still name its connections after it.
    pub fn restore(
        &mut self,
        client: IpAddr,
        address: IpAddr,
        resolution: Arc<Resolution>,
        expires: Nanos,
    ) {
        self.put((client, address), resolution, expires);
    }

    /// Answers still valid at `now`, oldest first: (client, address,
    /// resolution, expiry).
    pub fn valid_entries(&self, now: Nanos) -> Vec<(IpAddr, IpAddr, Arc<Resolution>, Nanos)> {
        let mut out: Vec<_> = self
            .map
            .iter()
            .filter(|(_, e)| e.expires >= now)
            .map(|((c, a), e)| (e.generation, (*c, *a, e.resolution.clone(), e.expires)))
            .collect();
        out.sort_by_key(|(g, _)| *g);
        out.into_iter().map(|(_, e)| e).collect()
    }

    fn put(&mut self, key: (IpAddr, IpAddr), resolution: Arc<Resolution>, expires: Nanos) {
        self.generation += 1;
        self.map.insert(
            key,
            Entry {
                resolution,
                expires,
                generation: self.generation,
            },
        );
        self.order.push_back((key, self.generation));
        while self.map.len() > self.capacity {
            self.pop_oldest();
        }
        if self.order.len() > 2 * self.capacity {
            // Drop queue entries whose key was refreshed since.
            let map = &self.map;
            self.order
                .retain(|(k, g)| map.get(k).is_some_and(|e| e.generation == *g));
        }
    }

    fn pop_oldest(&mut self) {
        while let Some((key, generation)) = self.order.pop_front() {
            if self
                .map
                .get(&key)
                .is_some_and(|e| e.generation == generation)
            {
                self.map.remove(&key);
                self.evicted += 1;
                return;
            }
        }
    }

    /// The resolution `client` last received for `address`, if still valid.
    pub fn lookup(&self, client: IpAddr, address: IpAddr, now: Nanos) -> Option<Arc<Resolution>> {
        self.map
            .get(&(client, address))
            .filter(|e| e.expires >= now)
            .map(|e| e.resolution.clone())
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(q: &str) -> Arc<Resolution> {
        Arc::new(Resolution {
            query: q.into(),
            cname_chain: Box::new([]),
        })
    }

    #[test]
    fn per_client_and_expiring() {
        let mut c = DnsCache::new(10, 0);
        let (p1, p2, a) = (
            "10.42.0.2".parse().unwrap(),
            "10.42.0.3".parse().unwrap(),
            "192.0.2.9".parse().unwrap(),
        );
        c.insert(p1, a, res("one.example"), 300, 0);
        assert_eq!(
            &*c.lookup(p1, a, 299 * SECOND).unwrap().query,
            "one.example"
        );
        assert!(c.lookup(p2, a, 0).is_none());
        assert!(c.lookup(p1, a, 301 * SECOND).is_none());
        // A short TTL is still trusted for a minute.
        c.insert(p1, a, res("two.example"), 1, 0);
        assert_eq!(&*c.lookup(p1, a, 59 * SECOND).unwrap().query, "two.example");
    }

    #[test]
    fn bounded_with_oldest_first_out() {
        let mut c = DnsCache::new(100, 0);
        let client: IpAddr = "10.42.0.2".parse().unwrap();
        for i in 0..10_000u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0xc000_0200 + i));
            c.insert(client, a, res("x.example"), 300, 0);
            assert!(c.len() <= 100);
            assert!(c.order.len() <= 200);
        }
        assert_eq!(c.evicted, 9_900);
        let newest = IpAddr::from(std::net::Ipv4Addr::from(0xc000_0200 + 9_999u32));
        assert!(c.lookup(client, newest, 0).is_some());
    }
}
