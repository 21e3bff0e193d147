//! The ASN ranges and the country ranges joined at load into one table per
//! address family, so a lookup is one bucket search instead of two: every
//! address where either table's answer changes starts a range holding both
//! answers. Half the cache misses of searching the tables one after the
//! other, which is most of a lookup's cost (`benches/lookup.rs`).

use std::net::IpAddr;
use std::sync::Arc;

use crate::mmdb::CountryTable;
use crate::ranges::{Asn, Key, RangeTable, Ranges};
use crate::CountryCode;

/// The AS number and organisation, and the country, of an address.
pub(crate) type Answer<'a> = (Option<(u32, &'a Arc<str>)>, Option<CountryCode>);

/// What both tables say of one range of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Both {
    asn: Option<Asn>,
    country: Option<CountryCode>,
}

/// The joined table.
#[derive(Debug, Default)]
pub(crate) struct JoinedTable {
    v4: Ranges<u32, Both>,
    v6: Ranges<u128, Both>,
    orgs: Vec<Arc<str>>,
}

impl JoinedTable {
    /// Joins an ASN table and a country table (either may be missing).
    pub(crate) fn new(asn: Option<RangeTable>, country: Option<CountryTable>) -> Self {
        let (asn4, asn6, orgs) = asn.map(RangeTable::into_parts).unwrap_or_default();
        let (country4, country6) = country.map(CountryTable::into_parts).unwrap_or_default();
        // One family at a time, each source dropped once joined, so the
        // load's peak memory stays near the tables' own size.
        let v4 = join(&asn4, &country4);
        drop((asn4, country4));
        let v6 = join(&asn6, &country6);
        Self { v4, v6, orgs }
    }

    /// The AS number, organisation and country of `ip`.
    #[inline]
    pub(crate) fn lookup(&self, ip: IpAddr) -> Option<Answer<'_>> {
        let both = match ip {
            IpAddr::V4(v4) => self.v4.lookup(u32::from(v4))?,
            IpAddr::V6(v6) => self.v6.lookup(u128::from(v6))?,
        };
        let asn = both
            .asn
            .and_then(|(n, org)| Some((n, self.orgs.get(org as usize)?)));
        Some((asn, both.country))
    }

    /// Approximate heap bytes the table holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes()
            + self.v6.heap_bytes()
            + self.orgs.iter().map(|o| o.len() + 16).sum::<usize>()
    }
}

/// A table as steps: from each start to the next, the value (or none).
/// The first step starts at 0. Where ranges overlap, the one a lookup in
/// [`Ranges`] would find wins: the last to start, while it lasts.
fn steps<K: Key, V: Copy + PartialEq>(ranges: &Ranges<K, V>) -> Vec<(K, Option<V>)> {
    let mut out: Vec<(K, Option<V>)> = Vec::with_capacity(2 * ranges.len() + 1);
    out.push((K::narrow(0), None));
    let mut push = |start: u128, value: Option<V>| {
        let start = K::narrow(start);
        match out.last_mut() {
            Some(last) if last.0 == start => last.1 = value,
            Some(last) if last.1 == value => {}
            _ => out.push((start, value)),
        }
    };
    let mut it = ranges.iter().peekable();
    while let Some((start, end, value)) = it.next() {
        let (start, end) = (start.widen(), end.widen());
        let next = it.peek().map(|n| n.0.widen());
        if next == Some(start) {
            continue; // a later range with the same start hides it
        }
        push(start, Some(value));
        let stop = next.map_or(end, |n| end.min(n - 1));
        if stop < K::MAX.widen() && next != Some(stop + 1) {
            push(stop + 1, None);
        }
    }
    out
}

/// The two tables' steps merged into ranges holding both answers.
fn join<K: Key>(asn: &Ranges<K, Asn>, country: &Ranges<K, CountryCode>) -> Ranges<K, Both> {
    let (a, c) = (steps(asn), steps(country));
    let mut merged: Vec<(K, Both)> = Vec::with_capacity(a.len() + c.len());
    let (mut i, mut j) = (0, 0);
    let mut now = Both {
        asn: None,
        country: None,
    };
    while i < a.len() || j < c.len() {
        let at = match (a.get(i), c.get(j)) {
            (Some(x), Some(y)) => x.0.min(y.0),
            (Some(x), None) => x.0,
            (None, Some(y)) => y.0,
            (None, None) => break,
        };
        if a.get(i).is_some_and(|x| x.0 == at) {
            now.asn = a[i].1;
            i += 1;
        }
        if c.get(j).is_some_and(|y| y.0 == at) {
            now.country = c[j].1;
            j += 1;
        }
        match merged.last() {
            Some(last) if last.1 == now => {}
            _ => merged.push((at, now)),
        }
    }
    drop((a, c));
    let mut out = Ranges::default();
    out.reserve(
        merged
            .iter()
            .filter(|m| m.1.asn.is_some() || m.1.country.is_some())
            .count(),
    );
    for (k, &(start, both)) in merged.iter().enumerate() {
        if both.asn.is_none() && both.country.is_none() {
            continue;
        }
        let end = merged
            .get(k + 1)
            .map_or(K::MAX, |next| K::narrow(next.0.widen() - 1));
        out.push(start, end, both);
    }
    out.finish();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges<V: Copy>(list: &[(u32, u32, V)]) -> Ranges<u32, V> {
        let mut r = Ranges::default();
        for &(s, e, v) in list {
            r.push(s, e, v);
        }
        r.finish();
        r
    }

    /// What looking `key` up in both tables one after the other says.
    fn separately(
        asn: &Ranges<u32, Asn>,
        country: &Ranges<u32, CountryCode>,
        key: u32,
    ) -> Option<Both> {
        let both = Both {
            asn: asn.lookup(key),
            country: country.lookup(key),
        };
        (both.asn.is_some() || both.country.is_some()).then_some(both)
    }

    #[test]
    fn the_joined_table_answers_as_both_tables_do_everywhere() {
        let us = CountryCode::new("US").unwrap();
        let de = CountryCode::new("DE").unwrap();
        // Overlaps, shared starts, gaps, a range to the very end, and
        // country ranges straddling AS boundaries.
        let asn = ranges(&[
            (0, 0, (1, 0)),
            (10, 19, (2, 0)),
            (15, 30, (3, 1)),
            (15, 16, (4, 1)),
            (40, 49, (5, 0)),
            (50, 59, (5, 0)),
            (u32::MAX - 5, u32::MAX, (6, 1)),
        ]);
        let country = ranges(&[
            (5, 12, us),
            (13, 44, de),
            (58, 70, us),
            (u32::MAX, u32::MAX, de),
        ]);
        let joined = join(&asn, &country);
        let keys = (0..80).chain(u32::MAX - 8..=u32::MAX);
        for key in keys {
            assert_eq!(
                joined.lookup(key),
                separately(&asn, &country, key),
                "at {key}"
            );
        }
    }

    #[test]
    fn empty_tables_join_to_nothing() {
        let joined = join::<u128>(&Ranges::default(), &Ranges::default());
        assert_eq!(joined.len(), 0);
        assert_eq!(joined.lookup(5), None);
    }
}
