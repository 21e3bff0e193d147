//! The range tables compiled to a binary file, so a start after the first
//! reads one file instead of parsing 33 MB of CSV and walking a MaxMind
//! tree.
//!
//! The file is a cache: it is used only when it says it was built from
//! exactly the source files a load would read now (path, device, inode,
//! size, modification and change times of each), and anything wrong with it
//! (truncated, damaged, another format version, built from other files)
//! makes the load ignore it, build the table from the sources and write it
//! again. Every length, count and offset in it is checked before use and a
//! checksum covers all of it, so a damaged file is refused rather than
//! answering wrongly.
//!
//! Layout, all integers little-endian:
//!
//! | part | contents |
//! |---|---|
//! | header | magic `TSNETTAB`, format version (u32), reserved u32 = 0, body length (u64), checksum of the body (u64) |
//! | identity | length (u32), the source files' identity bytes |
//! | sources | count (u32); each: kind (u8), credit (u8), path, snapshot (flag u8 + text); texts as length (u32) + bytes |
//! | tables | flags (u8): bit 0, an ASN table follows; bit 1, a country table |
//! | ASN table | organisations: count (u32), arena length (u32), each name's end offset (u32), the arena (UTF-8); IPv4 ranges: count (u32), records of start, end, AS number, organisation (u32 each); IPv6 ranges: the same with start and end u128 |
//! | country table | IPv4 ranges: count (u32), records of start, end (u32 each), country (2 ASCII letters); IPv6 ranges: the same with u128 |
//!
//! Ranges are in the order the parsed table holds them (sorted by start),
//! so a lookup finds what it finds in the parsed table.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::mmdb::CountryTable;
use crate::ranges::{Asn, Key, RangeTable, Ranges};
use crate::{CountryCode, Kind, Source, ASN_ATTRIBUTION, COUNTRY_ATTRIBUTION};

/// The tables a compiled file holds (either may be missing).
pub(crate) type Tables = (Option<RangeTable>, Option<CountryTable>);

/// The compiled table's file name inside the cache directory.
pub const FILE_NAME: &str = "network-tables.bin";

const MAGIC: [u8; 8] = *b"TSNETTAB";
/// Raised whenever the layout changes: a file of another version is rebuilt.
const VERSION: u32 = 1;
/// Magic, version, reserved, body length, checksum.
const HEADER_LEN: usize = 8 + 4 + 4 + 8 + 8;

const HAS_ASN: u8 = 1;
const HAS_COUNTRY: u8 = 2;

/// What a source file is to the load; part of the identity, so the same
/// file named by the user or found installed (credited differently) gives
/// different identities.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    AsnInstalledV4 = 1,
    AsnInstalledV6 = 2,
    AsnPackage = 3,
    AsnNamed = 4,
    CountryInstalled = 5,
    CountryPackage = 6,
    CountryNamed = 7,
}

/// The source files a load reads, as bytes that change whenever one of
/// them is replaced or rewritten (a stat of each, no reading).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity(Vec<u8>);

impl Identity {
    /// `None` when a file cannot be examined (the load then reports it).
    pub(crate) fn of(files: &[(Role, PathBuf)]) -> Option<Self> {
        let mut out = Vec::with_capacity(files.len() * 128);
        for (role, path) in files {
            let meta = std::fs::metadata(path).ok()?;
            out.push(*role as u8);
            put_bytes(&mut out, path.as_os_str().as_bytes());
            for n in [meta.dev(), meta.ino(), meta.size()] {
                out.extend_from_slice(&n.to_le_bytes());
            }
            for n in [
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec(),
            ] {
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
        Some(Self(out))
    }
}

/// Why a compiled file was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// It is intact but was built from other source files.
    Stale,
    /// It is not a compiled table of this version, or is damaged.
    Damaged(&'static str),
}

/// The compiled table of one set of source files, in one directory.
#[derive(Debug)]
pub(crate) struct Cache {
    dir: PathBuf,
    identity: Identity,
}

impl Cache {
    pub(crate) fn new(dir: &Path, identity: Identity) -> Self {
        Self {
            dir: dir.to_owned(),
            identity,
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The sources and table the file holds, when it is there, intact and
    /// built from the current sources. Says in one log line why a file
    /// that is there is not used.
    pub(crate) fn read(&self) -> Option<(Vec<Source>, Tables)> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::debug!("no compiled network table at {}: {e}", path.display());
                return None;
            }
        };
        match decode(&bytes, &self.identity) {
            Ok(found) => Some(found),
            Err(Refused::Stale) => {
                tracing::info!(
                    "network tables changed since {} was compiled; compiling them again",
                    path.display()
                );
                None
            }
            Err(Refused::Damaged(reason)) => {
                tracing::warn!(
                    "compiled network table {} ignored ({reason}); compiling it again",
                    path.display()
                );
                None
            }
        }
    }

    /// Writes the table atomically (a temporary file renamed over the
    /// old one, mode 0644; the directory is created 0700). A cache that
    /// cannot be written costs the next start a full load, nothing more:
    /// one debug line.
    pub(crate) fn write(
        &self,
        sources: &[Source],
        asn: Option<&RangeTable>,
        country: Option<&CountryTable>,
    ) {
        let bytes = encode(&self.identity, sources, asn, country);
        if let Err(e) = self.write_bytes(&bytes) {
            tracing::debug!(
                "compiled network table not written to {}: {e}",
                self.dir.display()
            );
        }
    }

    fn write_bytes(&self, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let temp = self
            .dir
            .join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(&temp)?;
            file.write_all(bytes)?;
            // The creation mode is cut by the umask (the service's is 0077).
            file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
            std::fs::rename(&temp, self.path())
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }
}

/// The compiled file's bytes.
pub(crate) fn encode(
    identity: &Identity,
    sources: &[Source],
    asn: Option<&RangeTable>,
    country: Option<&CountryTable>,
) -> Vec<u8> {
    let asn_bytes = asn.map_or(0, |t| {
        let (v4, v6, orgs) = t.parts();
        orgs.iter().map(|o| o.len() + 4).sum::<usize>() + v4.len() * 16 + v6.len() * 40
    });
    let country_bytes = country.map_or(0, |t| t.parts().0.len() * 10 + t.parts().1.len() * 34);
    let mut body = Vec::with_capacity(identity.0.len() + 1024 + asn_bytes + country_bytes);
    put_bytes(&mut body, &identity.0);

    put_u32(&mut body, sources.len());
    for source in sources {
        body.push(match source.kind {
            Kind::Asn => 0,
            Kind::Country => 1,
        });
        body.push(match source.attribution {
            Some(a) if a == ASN_ATTRIBUTION => 1,
            Some(a) if a == COUNTRY_ATTRIBUTION => 2,
            _ => 0,
        });
        put_bytes(&mut body, source.path.as_os_str().as_bytes());
        match &source.snapshot {
            Some(date) => {
                body.push(1);
                put_bytes(&mut body, date.as_bytes());
            }
            None => body.push(0),
        }
    }

    body.push(
        if asn.is_some() { HAS_ASN } else { 0 } | if country.is_some() { HAS_COUNTRY } else { 0 },
    );
    if let Some(asn) = asn {
        let (v4, v6, orgs) = asn.parts();
        put_u32(&mut body, orgs.len());
        put_u32(&mut body, orgs.iter().map(|o| o.len()).sum());
        let mut end = 0;
        for org in orgs {
            end += org.len();
            put_u32(&mut body, end);
        }
        for org in orgs {
            body.extend_from_slice(org.as_bytes());
        }
        put_ranges(&mut body, v4);
        put_ranges(&mut body, v6);
    }
    if let Some(country) = country {
        let (v4, v6) = country.parts();
        put_ranges(&mut body, v4);
        put_ranges(&mut body, v6);
    }

    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&checksum(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The sources and table of a compiled file built from `identity`.
pub(crate) fn decode(bytes: &[u8], identity: &Identity) -> Result<(Vec<Source>, Tables), Refused> {
    use Refused::Damaged;
    let mut header = Reader(bytes);
    if header.take(8)? != MAGIC {
        return Err(Damaged("not a compiled network table"));
    }
    if header.u32()? != VERSION as usize {
        return Err(Damaged("another format version"));
    }
    if header.u32()? != 0 {
        return Err(Damaged("reserved field set"));
    }
    let body_len = header.u64()?;
    let sum = header.u64()?;
    let body = header.0;
    if u64::try_from(body.len()).ok() != Some(body_len) {
        return Err(Damaged("truncated or extended"));
    }
    if checksum(body) != sum {
        return Err(Damaged("checksum mismatch"));
    }

    let mut r = Reader(body);
    if r.bytes()? != identity.0.as_slice() {
        return Err(Refused::Stale);
    }

    let count = r.u32()?;
    let mut sources = Vec::with_capacity(count.min(8));
    for _ in 0..count {
        let kind = match r.u8()? {
            0 => Kind::Asn,
            1 => Kind::Country,
            _ => return Err(Damaged("unknown table kind")),
        };
        let attribution = match r.u8()? {
            0 => None,
            1 => Some(ASN_ATTRIBUTION),
            2 => Some(COUNTRY_ATTRIBUTION),
            _ => return Err(Damaged("unknown credit")),
        };
        let path = PathBuf::from(OsStr::from_bytes(r.bytes()?));
        let snapshot = match r.u8()? {
            0 => None,
            1 => Some(
                std::str::from_utf8(r.bytes()?)
                    .map_err(|_| Damaged("snapshot date is not text"))?
                    .to_owned(),
            ),
            _ => return Err(Damaged("bad snapshot flag")),
        };
        sources.push(Source {
            kind,
            path,
            snapshot,
            attribution,
        });
    }

    let flags = r.u8()?;
    if flags & !(HAS_ASN | HAS_COUNTRY) != 0 {
        return Err(Damaged("unknown table flags"));
    }
    let asn = if flags & HAS_ASN != 0 {
        Some(get_asn_table(&mut r)?)
    } else {
        None
    };
    let country = if flags & HAS_COUNTRY != 0 {
        let v4 = get_ranges::<u32, CountryCode>(&mut r, 0)?;
        let v6 = get_ranges::<u128, CountryCode>(&mut r, 0)?;
        Some(CountryTable::from_parts(v4, v6))
    } else {
        None
    };
    if !r.0.is_empty() {
        return Err(Damaged("trailing bytes"));
    }
    Ok((sources, (asn, country)))
}

/// The ASN table: organisation names, then its IPv4 and IPv6 ranges.
fn get_asn_table(r: &mut Reader<'_>) -> Result<RangeTable, Refused> {
    use Refused::Damaged;
    let count = r.u32()?;
    let arena_len = r.u32()?;
    let ends = r.take(count.checked_mul(4).ok_or(Damaged("too many names"))?)?;
    let arena = std::str::from_utf8(r.take(arena_len)?)
        .map_err(|_| Damaged("organisation names are not UTF-8"))?;
    let mut orgs = Vec::with_capacity(count);
    let mut start = 0;
    for end in ends.chunks_exact(4) {
        let end = le_u32(end) as usize;
        let name = arena
            .get(start..end)
            .ok_or(Damaged("organisation name out of bounds"))?;
        orgs.push(Arc::from(name));
        start = end;
    }
    if start != arena.len() {
        return Err(Damaged("organisation names do not fill their arena"));
    }

    let v4 = get_ranges::<u32, Asn>(r, orgs.len())?;
    let v6 = get_ranges::<u128, Asn>(r, orgs.len())?;
    Ok(RangeTable::from_parts(v4, v6, orgs))
}

/// A range's value as it is written in a record.
trait Record: Copy + Sized {
    const LEN: usize;
    fn put(self, out: &mut Vec<u8>);
    /// The value, checked (`orgs`: how many organisation names there are).
    fn get(bytes: &[u8], orgs: usize) -> Result<Self, Refused>;
}

impl Record for Asn {
    const LEN: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
        out.extend_from_slice(&self.1.to_le_bytes());
    }
    fn get(bytes: &[u8], orgs: usize) -> Result<Self, Refused> {
        let (asn, org) = (le_u32(bytes), le_u32(&bytes[4..]));
        if org as usize >= orgs {
            return Err(Refused::Damaged("organisation index out of bounds"));
        }
        Ok((asn, org))
    }
}

impl Record for CountryCode {
    const LEN: usize = 2;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn get(bytes: &[u8], _: usize) -> Result<Self, Refused> {
        let code = [bytes[0], bytes[1]];
        std::str::from_utf8(&code)
            .ok()
            .and_then(CountryCode::new)
            .filter(|c| c.0 == code)
            .ok_or(Refused::Damaged("bad country code"))
    }
}

/// An address as it is written in a record.
trait Wire: Key {
    const LEN: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
}

impl Wire for u32 {
    const LEN: usize = 4;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        le_u32(bytes)
    }
}

impl Wire for u128 {
    const LEN: usize = 16;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        let mut b = [0; 16];
        b.copy_from_slice(&bytes[..16]);
        u128::from_le_bytes(b)
    }
}

/// Bytes of one record.
const fn record_len<K: Wire, V: Record>() -> usize {
    2 * K::LEN + V::LEN
}

fn put_ranges<K: Wire, V: Record>(out: &mut Vec<u8>, ranges: &Ranges<K, V>) {
    put_u32(out, ranges.len());
    for (start, end, value) in ranges.iter() {
        start.put(out);
        end.put(out);
        value.put(out);
    }
}

/// The ranges of one family, every record checked: start not after end,
/// starts in order, the value valid.
fn get_ranges<K: Wire, V: Record>(
    r: &mut Reader<'_>,
    orgs: usize,
) -> Result<Ranges<K, V>, Refused> {
    use Refused::Damaged;
    let count = r.u32()?;
    let len = count
        .checked_mul(record_len::<K, V>())
        .ok_or(Damaged("too many ranges"))?;
    let records = r.take(len)?;
    let mut ranges = Ranges::default();
    ranges.reserve(count);
    let mut previous: Option<K> = None;
    for record in records.chunks_exact(record_len::<K, V>()) {
        let (start, end) = (K::get(record), K::get(&record[K::LEN..]));
        if start > end {
            return Err(Damaged("range ends before it starts"));
        }
        if previous.is_some_and(|p| p > start) {
            return Err(Damaged("ranges out of order"));
        }
        previous = Some(start);
        ranges.push(start, end, V::get(&record[2 * K::LEN..], orgs)?);
    }
    ranges.finish();
    Ok(ranges)
}

/// Checked reads from the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Refused> {
        if n > self.0.len() {
            return Err(Refused::Damaged("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Refused> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<usize, Refused> {
        Ok(le_u32(self.take(4)?) as usize)
    }

    fn u64(&mut self) -> Result<u64, Refused> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    /// A length (u32) and that many bytes.
    fn bytes(&mut self) -> Result<&'a [u8], Refused> {
        let n = self.u32()?;
        self.take(n)
    }
}

/// The first four bytes of `bytes` (the caller's slice holds them).
fn le_u32(bytes: &[u8]) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(b)
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    // Counts and lengths are bounded far below 2^32 (ranges::MAX_RANGES,
    // MAX_ORG_LEN names); saturating keeps a freak value detectable.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// A 64-bit checksum of `bytes`, four independent lanes of 8-byte words so
/// the ~25 MB of a full table take a few milliseconds. Each step is a
/// bijection of the lane's state for a given word and of the word for a
/// given state, so any change confined to one word (every single-bit flip)
/// always changes the sum.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    fn step(lane: u64, word: u64) -> u64 {
        (lane ^ word).wrapping_mul(K).rotate_left(29)
    }
    fn words(lanes: &mut [u64; 4], block: &[u8]) {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            let mut b = [0; 8];
            b.copy_from_slice(word);
            *lane = step(*lane, u64::from_le_bytes(b));
        }
    }
    let mut lanes = [
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    ];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        words(&mut lanes, block);
    }
    let mut tail = [0u8; 32];
    tail[..blocks.remainder().len()].copy_from_slice(blocks.remainder());
    words(&mut lanes, &tail);
    lanes
        .iter()
        .fold(bytes.len() as u64, |sum, &lane| step(sum, lane))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranges::Builder;

    fn asn() -> RangeTable {
        let mut b = Builder::default();
        b.add_csv(
            "1,5,64496,Doc Net\n10,19,64497,\"Example, Inc.\"\n20,20,0,\n\
             4294967200,4294967295,64498,Ünïcødé Org\n\
             2001:db8::,2001:db8::ff,64499,V6 Net\n"
                .as_bytes(),
            Path::new("t.csv"),
            crate::ranges::Family::V4,
        )
        .unwrap();
        b.build()
    }

    fn country() -> CountryTable {
        let mut v4 = Ranges::default();
        v4.push(3, 12, CountryCode::new("NL").unwrap());
        v4.push(30, 40, CountryCode::new("JP").unwrap());
        v4.finish();
        let mut v6 = Ranges::default();
        v6.push(1 << 125, (1 << 125) + 99, CountryCode::new("DE").unwrap());
        v6.finish();
        CountryTable::from_parts(v4, v6)
    }

    fn table() -> Vec<u8> {
        encode(&identity(), &sources(), Some(&asn()), Some(&country()))
    }

    fn identity() -> Identity {
        Identity(b"sources as they are".to_vec())
    }

    fn sources() -> Vec<Source> {
        vec![Source {
            kind: Kind::Asn,
            path: PathBuf::from("/x/asn-ipv4-num.csv"),
            snapshot: Some("2026-06-17".into()),
            attribution: Some(ASN_ATTRIBUTION),
        }]
    }

    fn rows<K: Key, V: Copy>(r: &Ranges<K, V>) -> Vec<(K, K, V)> {
        r.iter().collect()
    }

    #[test]
    fn a_compiled_table_decodes_to_the_same_ranges_names_and_sources() {
        let (asn, country) = (asn(), country());
        let (got_sources, (got_asn, got_country)) = decode(&table(), &identity()).unwrap();
        assert_eq!(got_sources, sources());
        let (got_asn, got_country) = (got_asn.unwrap(), got_country.unwrap());
        let ((a4, a6, ao), (b4, b6, bo)) = (asn.parts(), got_asn.parts());
        assert_eq!(rows(a4), rows(b4));
        assert_eq!(rows(a6), rows(b6));
        assert_eq!(ao, bo);
        assert_eq!(rows(a4).len(), 4);
        assert_eq!(rows(a6).len(), 1);
        let ((c4, c6), (d4, d6)) = (country.parts(), got_country.parts());
        assert_eq!(rows(c4), rows(d4));
        assert_eq!(rows(c6), rows(d6));
        // Either table may be missing.
        let only = encode(&identity(), &[], None, Some(&country));
        let (_, (none, some)) = decode(&only, &identity()).unwrap();
        assert!(none.is_none() && some.is_some());
    }

    #[test]
    fn other_sources_make_the_file_stale() {
        let bytes = table();
        let other = Identity(b"sources as they were".to_vec());
        assert_eq!(decode(&bytes, &other).err(), Some(Refused::Stale));
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_refused() {
        let bytes = table();
        for len in 0..bytes.len() {
            assert!(
                matches!(decode(&bytes[..len], &identity()), Err(Refused::Damaged(_))),
                "cut to {len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, &identity()).is_err());
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(decode(&flipped, &identity()), Err(Refused::Damaged(_))),
                "bit {bit} flipped"
            );
        }
    }

    #[test]
    fn another_version_is_refused() {
        let mut bytes = table();
        bytes[8] = 2;
        assert_eq!(
            decode(&bytes, &identity()).err(),
            Some(Refused::Damaged("another format version"))
        );
    }

    /// Records that pass the checksum (re-summed after tampering) are
    /// still checked one by one.
    #[test]
    fn inconsistent_records_are_refused_even_with_a_valid_checksum() {
        let bytes = table();
        let resum = |mut b: Vec<u8>| {
            let sum = checksum(&b[HEADER_LEN..]);
            b[24..32].copy_from_slice(&sum.to_le_bytes());
            b
        };
        assert!(decode(&resum(bytes.clone()), &identity()).is_ok());
        // The first ASN record (1 to 5) and the first country one (3 to 12).
        let find = |pattern: [u8; 8]| bytes.windows(8).position(|w| w == pattern).unwrap();
        let asn = find([1, 0, 0, 0, 5, 0, 0, 0]);
        let country = find([3, 0, 0, 0, 12, 0, 0, 0]);
        for (at, value, reason) in [
            (asn, 9, "range ends before it starts"),
            (asn + 12, 200, "organisation index out of bounds"),
            (asn + 16, 0, "ranges out of order"),
            (country + 8, b'n', "bad country code"),
            (country + 9, 0, "bad country code"),
        ] {
            let mut bad = bytes.clone();
            bad[at] = value;
            assert_eq!(
                decode(&resum(bad), &identity()).err(),
                Some(Refused::Damaged(reason)),
                "byte {at} = {value}"
            );
        }
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in [0, 1, 31, 32, 33, 100, 4096] {
            let mut junk: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            assert!(decode(&junk, &identity()).is_err());
            if junk.len() >= 8 {
                junk[..8].copy_from_slice(&MAGIC);
                assert!(decode(&junk, &identity()).is_err());
            }
        }
    }
}
