//! The DNS answer cache: which name a client asked for to get an address.
//!
//! Keyed by (client address, answered address), because several phones share
//! one resolver and CDNs share addresses between many names: the latest
//! answer a client received for an address is the best guess for what its
//! next connection there is about. Entries expire after their TTL plus a
//! slack (clients keep answers a little longer than the TTL), and the cache
//! never holds more than `capacity` entries: the oldest go first.
//!
//! Beside addresses it keeps the ECH configurations clients were given: the
//! `public_name`s of the `ech` SvcParam in HTTPS/SVCB answers, per (client,
//! name asked for), so a ClientHello whose outer SNI is one of them can be
//! told apart from GREASE ECH. That store is bounded the same way.

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

/// Addresses one response gave one client, still valid (see
/// [`DnsCache::valid_answers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAnswer<'a> {
    /// The client that asked.
    pub client: IpAddr,
    /// What it asked and the CNAME chain.
    pub resolution: &'a Resolution,
    /// The answered addresses, in the order they were cached.
    pub addresses: Vec<IpAddr>,
    /// When they expire.
    pub expires: Nanos,
}

#[derive(Debug)]
struct Entry {
    resolution: Arc<Resolution>,
    expires: Nanos,
    generation: u64,
}

/// Most (client, name) entries of ECH public names kept.
const MAX_ECH_ENTRIES: usize = 4096;
/// Most public names kept per entry.
pub const MAX_PUBLIC_NAMES: usize = 8;

/// The ECH public names a client received for a name.
#[derive(Debug)]
struct EchEntry {
    public_names: Box<[Box<str>]>,
    expires: Nanos,
}

/// Bounded (client, address) → resolution cache.
#[derive(Debug)]
pub struct DnsCache {
    ech: HashMap<(IpAddr, Box<str>), EchEntry>,
    /// Every public name any client was given, with its expiry.
    public_names: HashMap<Box<str>, Nanos>,
    ech_order: VecDeque<(IpAddr, Box<str>)>,
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
            ech: HashMap::default(),
            public_names: HashMap::default(),
            ech_order: VecDeque::new(),
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

    /// Answers still valid at `now`, oldest first, the addresses one
    /// response gave one client together (one row each in the state store:
    /// about two rows where one per address took three).
    pub fn valid_answers(&self, now: Nanos) -> Vec<ValidAnswer<'_>> {
        let mut entries: Vec<_> = self
            .map
            .iter()
            .filter(|(_, e)| e.expires >= now)
            .map(|((client, address), e)| (e.generation, *client, *address, e))
            .collect();
        entries.sort_unstable_by_key(|(generation, ..)| *generation);
        let mut out: Vec<ValidAnswer<'_>> = Vec::new();
        for (_, client, address, e) in entries {
            // A response's addresses are cached one after the other, so
            // they are neighbours in this order.
            match out.last_mut() {
                Some(last)
                    if last.client == client
                        && last.expires == e.expires
                        && std::ptr::eq(last.resolution, &*e.resolution) =>
                {
                    last.addresses.push(address);
                }
                _ => out.push(ValidAnswer {
                    client,
                    resolution: &e.resolution,
                    addresses: vec![address],
                    expires: e.expires,
                }),
            }
        }
        out
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

    /// Records the ECH public names `client` received for `name` (an
    /// HTTPS/SVCB answer's `ech` SvcParam). The oldest entries go first when
    /// the store is full.
    pub fn insert_ech(
        &mut self,
        client: IpAddr,
        name: &str,
        public_names: Vec<Box<str>>,
        ttl_secs: u32,
        now: Nanos,
    ) {
        if public_names.is_empty() {
            return;
        }
        let expires = now + (u64::from(ttl_secs) * SECOND).max(MIN_TTL) + self.slack;
        if self.public_names.len() >= MAX_ECH_ENTRIES {
            self.public_names.retain(|_, e| *e >= now);
        }
        for p in public_names.iter().take(MAX_PUBLIC_NAMES) {
            if self.public_names.len() < MAX_ECH_ENTRIES || self.public_names.contains_key(p) {
                let e = self.public_names.entry(p.clone()).or_insert(expires);
                *e = (*e).max(expires);
            }
        }
        let key = (client, Box::<str>::from(name));
        let entry = EchEntry {
            public_names: public_names.into_iter().take(MAX_PUBLIC_NAMES).collect(),
            expires,
        };
        if self.ech.insert(key.clone(), entry).is_none() {
            self.ech_order.push_back(key);
        }
        while self.ech.len() > MAX_ECH_ENTRIES {
            match self.ech_order.pop_front() {
                Some(old) => {
                    self.ech.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Whether `public_name` is the public name of an ECH configuration
    /// `client` received, still valid, for one of `names`.
    pub fn is_ech_public_name<'n>(
        &self,
        client: IpAddr,
        names: impl IntoIterator<Item = &'n str>,
        public_name: &str,
        now: Nanos,
    ) -> bool {
        names.into_iter().any(|name| {
            self.ech
                .get(&(client, Box::<str>::from(name)))
                .filter(|e| e.expires >= now)
                .is_some_and(|e| e.public_names.iter().any(|p| **p == *public_name))
        })
    }

    /// Whether any client was given an ECH configuration, still valid,
    /// whose public name is `public_name`.
    pub fn is_known_public_name(&self, public_name: &str, now: Nanos) -> bool {
        self.public_names
            .get(public_name)
            .is_some_and(|e| *e >= now)
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
    fn valid_answers_group_a_responses_addresses_oldest_first() {
        let mut c = DnsCache::new(10, 0);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let (p1, p2) = (ip("10.42.0.2"), ip("10.42.0.3"));
        let one = res("one.example");
        c.insert(p1, ip("192.0.2.1"), one.clone(), 300, 0);
        c.insert(p1, ip("192.0.2.2"), one.clone(), 300, 0);
        // The same answer another client received is its own row.
        c.insert(p2, ip("192.0.2.1"), one.clone(), 300, 0);
        c.insert(p1, ip("192.0.2.3"), res("two.example"), 100, 0);
        // Refreshed by a later response: it moves to that one.
        c.insert(p1, ip("192.0.2.2"), res("three.example"), 300, SECOND);
        let rows: Vec<(IpAddr, &str, Vec<IpAddr>)> = c
            .valid_answers(0)
            .into_iter()
            .map(|a| (a.client, &*a.resolution.query, a.addresses))
            .collect();
        assert_eq!(
            rows,
            [
                (p1, "one.example", vec![ip("192.0.2.1")]),
                (p2, "one.example", vec![ip("192.0.2.1")]),
                (p1, "two.example", vec![ip("192.0.2.3")]),
                (p1, "three.example", vec![ip("192.0.2.2")]),
            ]
        );
        // Only what is still valid.
        let later: Vec<&str> = c
            .valid_answers(200 * SECOND)
            .iter()
            .map(|a| &*a.resolution.query)
            .collect();
        assert_eq!(later, ["one.example", "one.example", "three.example"]);
        let mut fresh = DnsCache::new(10, 0);
        let both = res("both.example");
        fresh.insert(p1, ip("192.0.2.1"), both.clone(), 300, 0);
        fresh.insert(p1, ip("2001:db8::1"), both, 300, 0);
        let rows = fresh.valid_answers(0);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].addresses, [ip("192.0.2.1"), ip("2001:db8::1")]);
    }

    #[test]
    fn ech_public_names_per_client_and_name() {
        let mut c = DnsCache::new(10, 0);
        let (p1, p2): (IpAddr, IpAddr) =
            ("10.42.0.2".parse().unwrap(), "10.42.0.3".parse().unwrap());
        c.insert_ech(p1, "site.example", vec!["cover.example".into()], 300, 0);
        assert!(c.is_ech_public_name(p1, ["site.example"], "cover.example", 0));
        assert!(!c.is_ech_public_name(p2, ["site.example"], "cover.example", 0));
        assert!(!c.is_ech_public_name(p1, ["other.example"], "cover.example", 0));
        assert!(!c.is_ech_public_name(p1, ["site.example"], "site.example", 0));
        assert!(!c.is_ech_public_name(p1, ["site.example"], "cover.example", 400 * SECOND));
        assert!(c.is_known_public_name("cover.example", 0));
        assert!(!c.is_known_public_name("site.example", 0));
        for i in 0..2 * MAX_ECH_ENTRIES {
            c.insert_ech(
                p1,
                &format!("n{i}.example"),
                vec!["c.example".into()],
                300,
                0,
            );
        }
        assert!(c.ech.len() <= MAX_ECH_ENTRIES && c.ech_order.len() <= MAX_ECH_ENTRIES);
        for i in 0..2 * MAX_ECH_ENTRIES {
            c.insert_ech(
                p2,
                "x.example",
                vec![format!("c{i}.example").into()],
                300,
                0,
            );
        }
        assert!(c.public_names.len() <= MAX_ECH_ENTRIES);
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
