//! The IP→ASN table of ip-location-db's `asn` package, held as sorted,
//! non-overlapping ranges and searched by binary search.
//!
//! The package ships CSV: `start,end,asn,organisation`, where start and end
//! are either addresses (`asn-ipv4.csv`) or their integer values
//! (`asn-ipv4-num.csv`, `asn-ipv6-num.csv`), and an organisation containing
//! a comma is quoted with `"` (a `""` inside stands for one `"`). The
//! integer files parse fastest, so the installed snapshot is read from them;
//! a CSV the user names may be either form.
//!
//! Memory: 16 bytes per IPv4 range and 48 per IPv6 range, plus each distinct
//! organisation name once and a 256 KiB index per family (about 16 MiB for
//! the whole snapshot).

use std::collections::HashMap;
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use crate::Error;

/// Most ranges one table holds; a file with more is refused rather than
/// allowed to take unbounded memory (the full snapshot has about 515,000).
pub const MAX_RANGES: usize = 8_000_000;
/// Longest organisation name kept, in bytes; longer ones are cut at a
/// character boundary.
pub const MAX_ORG_LEN: usize = 200;

/// Which address family a file's bare integers are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Integers are IPv4 addresses.
    V4,
    /// Integers are IPv6 addresses.
    V6,
}

#[derive(Debug, Clone, Copy)]
struct Entry<K, V> {
    start: K,
    end: K,
    value: V,
}

/// An address as an integer, searched by a bucket of 16 of its bits first.
pub(crate) trait Key: Copy + Ord + std::fmt::Debug {
    /// Number of buckets.
    const BUCKETS: usize;
    /// The bucket of an address; never smaller for a larger address.
    fn bucket(self) -> usize;
}

impl Key for u32 {
    const BUCKETS: usize = 1 << 16;

    /// The top 16 bits.
    #[inline]
    fn bucket(self) -> usize {
        (self >> 16) as usize
    }
}

impl Key for u128 {
    const BUCKETS: usize = (1 << 16) + 2;

    /// Every allocated IPv6 range is in 2000::/4, so the top 16 bits would
    /// put all of 2001::/16 (a sixth of the table) in one bucket: inside
    /// 2000::/4 the bucket is the 16 bits after the first 4, and what lies
    /// below or above 2000::/4 shares the first or last bucket.
    #[inline]
    fn bucket(self) -> usize {
        match self >> 124 {
            0 | 1 => 0,
            2 => 1 + ((self >> 108) & 0xffff) as usize,
            _ => (1 << 16) + 1,
        }
    }
}

/// Ranges of one address family, each with a value, sorted by start.
/// `index[b]` is the first range whose start has top 16 bits `b` or more,
/// so a lookup searches one bucket (usually a dozen ranges, at most a few
/// thousand) instead of the whole table, and the range it lands on is in
/// the cache lines the search already read: three or four cache misses
/// where a plain binary search over megabytes takes a dozen or more.
#[derive(Debug)]
pub(crate) struct Ranges<K, V> {
    index: Vec<u32>,
    entries: Vec<Entry<K, V>>,
}

impl<K, V> Default for Ranges<K, V> {
    fn default() -> Self {
        Self {
            index: Vec::new(),
            entries: Vec::new(),
        }
    }
}

impl<K: Key, V: Copy> Ranges<K, V> {
    /// The value of the range holding `key`.
    #[inline]
    pub(crate) fn lookup(&self, key: K) -> Option<V> {
        let b = key.bucket();
        let (&lo, &hi) = (self.index.get(b)?, self.index.get(b + 1)?);
        let bucket = self.entries.get(lo as usize..hi as usize)?;
        let i = (lo as usize + bucket.partition_point(|e| e.start <= key)).checked_sub(1)?;
        let e = self.entries.get(i)?;
        (key <= e.end).then_some(e.value)
    }

    /// Adds a range (`start <= end`, checked by the caller).
    pub(crate) fn push(&mut self, start: K, end: K, value: V) {
        self.entries.push(Entry { start, end, value });
    }

    pub(crate) fn reserve(&mut self, n: usize) {
        self.entries.reserve(n);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every range, `(start, end, value)`, in the order a lookup sees them.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, K, V)> + '_ {
        self.entries.iter().map(|e| (e.start, e.end, e.value))
    }

    /// Sorts (the package's files come sorted, so usually nothing moves)
    /// and builds the bucket index.
    pub(crate) fn finish(&mut self) {
        if !self.entries.windows(2).all(|w| w[0].start <= w[1].start) {
            self.entries.sort_unstable_by_key(|e| e.start);
        }
        self.entries.shrink_to_fit();
        let mut index = Vec::with_capacity(K::BUCKETS + 1);
        let mut i = 0;
        for b in 0..=K::BUCKETS {
            while i < self.entries.len() && self.entries[i].start.bucket() < b {
                i += 1;
            }
            index.push(i as u32);
        }
        self.index = index;
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.index.capacity() * 4 + self.entries.capacity() * std::mem::size_of::<Entry<K, V>>()
    }
}

/// AS number and index of its organisation name.
pub(crate) type Asn = (u32, u32);

/// A [`RangeTable`]'s IPv4 ranges, IPv6 ranges and organisation names.
pub(crate) type AsnParts<'a> = (&'a Ranges<u32, Asn>, &'a Ranges<u128, Asn>, &'a [Arc<str>]);

/// An immutable IP→(ASN, organisation) table.
#[derive(Debug, Default)]
pub struct RangeTable {
    v4: Ranges<u32, Asn>,
    v6: Ranges<u128, Asn>,
    orgs: Vec<Arc<str>>,
}

impl RangeTable {
    /// The AS number and organisation of the range holding `ip`, if any.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<(u32, &Arc<str>)> {
        let (asn, org) = match ip {
            IpAddr::V4(v4) => self.v4.lookup(u32::from(v4))?,
            IpAddr::V6(v6) => self.v6.lookup(u128::from(v6))?,
        };
        Some((asn, self.orgs.get(org as usize)?))
    }

    /// The IPv4 ranges, the IPv6 ranges and the organisation names their
    /// values index, for the compiled table.
    pub(crate) fn parts(&self) -> AsnParts<'_> {
        (&self.v4, &self.v6, &self.orgs)
    }

    /// A table from its parts, read back from the compiled table (finished
    /// ranges whose organisation indexes are within `orgs`).
    pub(crate) fn from_parts(
        v4: Ranges<u32, Asn>,
        v6: Ranges<u128, Asn>,
        orgs: Vec<Arc<str>>,
    ) -> Self {
        Self { v4, v6, orgs }
    }

    /// Number of IPv4 and IPv6 ranges.
    pub fn len(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }

    /// Approximate heap bytes the table holds.
    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes()
            + self.v6.heap_bytes()
            + self.orgs.iter().map(|o| o.len() + 16).sum::<usize>()
    }
}

/// Builds a [`RangeTable`] from one or more CSV files.
#[derive(Default)]
pub struct Builder {
    table: RangeTable,
    /// Organisation by its field as written (quoted or not), so a name seen
    /// before costs one hash lookup and no allocation.
    org_index: HashMap<Box<[u8]>, u32, ahash::RandomState>,
}

impl Builder {
    /// Adds every range of a CSV file's contents; `path` only names it in
    /// errors, `family` says what bare integers are.
    pub fn add_csv(
        &mut self,
        mut text: impl BufRead,
        path: &Path,
        family: Family,
    ) -> Result<(), Error> {
        let mut buf = Vec::with_capacity(256);
        for n in 0.. {
            buf.clear();
            let read = text
                .read_until(b'\n', &mut buf)
                .map_err(|source| Error::Read {
                    path: path.to_owned(),
                    source,
                })?;
            if read == 0 {
                break;
            }
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let bad = |reason: &'static str| Error::Csv {
                path: path.to_owned(),
                line: n + 1,
                reason,
            };
            let (v4, v6) = self.table.len();
            if v4 + v6 >= MAX_RANGES {
                return Err(bad("more ranges than a table may hold"));
            }
            let mut fields = line.splitn(4, |&b| b == b',');
            let start = fields.next().ok_or(bad("no start address"))?;
            let end = fields.next().ok_or(bad("no end address"))?;
            let asn = fields.next().ok_or(bad("no AS number"))?;
            let org = fields.next().unwrap_or_default();
            let asn = parse_u128(asn)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(bad("AS number is not a number below 2^32"))?;
            let org = self
                .intern(org)
                .ok_or(bad("unterminated quoted organisation"))?;
            match (parse_addr(start, family), parse_addr(end, family)) {
                (Some(IpAddr::V4(s)), Some(IpAddr::V4(e))) => {
                    let (s, e) = (u32::from(s), u32::from(e));
                    if s > e {
                        return Err(bad("range ends before it starts"));
                    }
                    self.table.v4.push(s, e, (asn, org));
                }
                (Some(IpAddr::V6(s)), Some(IpAddr::V6(e))) => {
                    let (s, e) = (u128::from(s), u128::from(e));
                    if s > e {
                        return Err(bad("range ends before it starts"));
                    }
                    self.table.v6.push(s, e, (asn, org));
                }
                (Some(_), Some(_)) => return Err(bad("range mixes IPv4 and IPv6")),
                _ => return Err(bad("start or end is not an address")),
            }
        }
        Ok(())
    }

    fn intern(&mut self, field: &[u8]) -> Option<u32> {
        if let Some(&i) = self.org_index.get(field) {
            return Some(i);
        }
        let name = unquote(field)?;
        let i = self.table.orgs.len() as u32;
        self.table.orgs.push(Arc::from(clip(&name)));
        self.org_index.insert(field.into(), i);
        Some(i)
    }

    /// Adds every range of a CSV file, read as a stream (the whole
    /// snapshot is 33 MB of text; it is never held at once).
    pub fn add_csv_file(&mut self, path: &Path, family: Family) -> Result<(), Error> {
        let file = std::fs::File::open(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        // The package's lines average over 50 bytes.
        let estimate = file.metadata().map_or(0, |m| m.len() / 52) as usize;
        match family {
            Family::V4 => self.table.v4.reserve(estimate),
            Family::V6 => self.table.v6.reserve(estimate),
        }
        self.add_csv(
            std::io::BufReader::with_capacity(1 << 16, file),
            path,
            family,
        )
    }

    /// The finished table.
    pub fn build(mut self) -> RangeTable {
        self.table.v4.finish();
        self.table.v6.finish();
        self.table.orgs.shrink_to_fit();
        self.table
    }
}

/// `name` cut to at most [`MAX_ORG_LEN`] bytes, on a character boundary.
pub fn clip(name: &str) -> &str {
    let mut cut = name.len().min(MAX_ORG_LEN);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    &name[..cut]
}

fn parse_u128(field: &[u8]) -> Option<u128> {
    if field.is_empty() || field.len() > 39 {
        return None;
    }
    field.iter().try_fold(0u128, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u128::from(digit))
    })
}

fn parse_addr(field: &[u8], family: Family) -> Option<IpAddr> {
    if field.iter().any(|&b| b == b'.' || b == b':') {
        return std::str::from_utf8(field).ok()?.parse().ok();
    }
    let n = parse_u128(field)?;
    Some(match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(n).ok()?)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(n)),
    })
}

/// The organisation field: as is, or unquoted when it starts with `"`.
/// Invalid UTF-8 is replaced rather than refused: the name is only shown.
fn unquote(field: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(field);
    let Some(inner) = text.strip_prefix('"') else {
        return Some(text.into_owned());
    };
    let inner = inner.strip_suffix('"')?;
    Some(inner.replace("\"\"", "\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(csv: &str, family: Family) -> Result<RangeTable, Error> {
        let mut b = Builder::default();
        b.add_csv(csv.as_bytes(), Path::new("t.csv"), family)?;
        Ok(b.build())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn finds_the_range_holding_an_address_and_nothing_between_ranges() {
        // 192.0.2.0/25 and 192.0.2.192/26 as integers, out of order.
        let t = table(
            "3221226176,3221226239,64497,\"Example, Inc.\"\n3221225984,3221226111,64496,Doc Net\n",
            Family::V4,
        )
        .unwrap();
        assert_eq!(
            t.lookup(ip("192.0.2.0")).map(|(a, o)| (a, &**o)),
            Some((64496, "Doc Net"))
        );
        assert_eq!(t.lookup(ip("192.0.2.127")).map(|(a, _)| a), Some(64496));
        assert_eq!(t.lookup(ip("192.0.2.128")), None);
        assert_eq!(
            t.lookup(ip("192.0.2.200")).map(|(a, o)| (a, &**o)),
            Some((64497, "Example, Inc."))
        );
        assert_eq!(t.lookup(ip("192.0.1.255")), None);
        assert_eq!(t.lookup(ip("192.0.3.0")), None);
        assert_eq!(t.lookup(ip("2001:db8::1")), None);
    }

    #[test]
    fn reads_dotted_and_ipv6_ranges_and_quotes() {
        let t = table(
            "2001:db8::,2001:db8:0:ffff:ffff:ffff:ffff:ffff,64500,\"Say \"\"hi\"\"\"\n198.51.100.0,198.51.100.255,64501,\n",
            Family::V4,
        )
        .unwrap();
        assert_eq!(
            t.lookup(ip("2001:db8::5")).map(|(a, o)| (a, o.to_string())),
            Some((64500, "Say \"hi\"".into()))
        );
        assert_eq!(t.lookup(ip("2001:db8:1::5")), None);
        assert_eq!(
            t.lookup(ip("198.51.100.9")).map(|(a, o)| (a, o.is_empty())),
            Some((64501, true))
        );
        assert_eq!(t.len(), (1, 1));
    }

    #[test]
    fn ipv6_integers_follow_the_family() {
        let start = u128::from("2001:db8::".parse::<Ipv6Addr>().unwrap());
        let t = table(
            &format!("{start},{},64502,V6 Net\n", start + 0xffff),
            Family::V6,
        )
        .unwrap();
        assert_eq!(t.lookup(ip("2001:db8::ff")).map(|(a, _)| a), Some(64502));
    }

    #[test]
    fn ipv6_ranges_are_found_in_every_bucket_and_across_buckets() {
        let t = table(
            "1000::,1000::ffff,1,below\n\
             2001:db8::,2001:db8:ffff::,2,doc\n\
             2a00::,2a00:ffff:ffff::,3,wide\n\
             2fff::,3fff::,4,straddles\n\
             f000::,f000::1,5,above\n",
            Family::V6,
        )
        .unwrap();
        for (addr, asn) in [
            ("1000::5", Some(1)),
            ("1000::1:0", None),
            ("2001:db8:1::", Some(2)),
            ("2001:db9::", None),
            ("2a00:1450::1", Some(3)),
            ("2a01::", None),
            ("2fff:1::", Some(4)),
            ("3000:0:1::", Some(4)),
            ("3fff::", Some(4)),
            ("3fff::1", None),
            ("f000::1", Some(5)),
            ("ffff::", None),
            ("::1", None),
        ] {
            assert_eq!(t.lookup(ip(addr)).map(|(a, _)| a), asn, "{addr}");
        }
    }

    #[test]
    fn damaged_lines_are_refused_with_their_line_number() {
        for (csv, reason) in [
            ("1,2,3,a\nnot,an,7,x\n", "start or end is not an address"),
            ("1,2,3,a\n5,4,3,b\n", "range ends before it starts"),
            ("1,2,3,a\n1,2\n", "no AS number"),
            (
                "1,2,3,a\n1,2,99999999999,c\n",
                "AS number is not a number below 2^32",
            ),
            (
                "1,2,3,a\n1,2,3,\"open\n",
                "unterminated quoted organisation",
            ),
            (
                "1,2,3,a\n192.0.2.1,2001:db8::1,3,x\n",
                "range mixes IPv4 and IPv6",
            ),
        ] {
            let err = table(csv, Family::V4).unwrap_err().to_string();
            assert_eq!(err, format!("t.csv:2: {reason}"), "{csv:?}");
        }
    }

    #[test]
    fn long_organisation_names_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_ORG_LEN);
        let t = table(&format!("1,2,3,{long}\n"), Family::V4).unwrap();
        let (_, org) = t.lookup(ip("0.0.0.1")).unwrap();
        assert!(org.len() <= MAX_ORG_LEN && org.chars().all(|c| c == 'é'));
    }
}
