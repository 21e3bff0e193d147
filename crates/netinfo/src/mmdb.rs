//! MaxMind DB (`.mmdb`) files read through the `maxminddb` crate.
//!
//! The field names differ between the free databases, so each value is
//! looked for under every name it is known by:
//!
//! | value | GeoLite2 / DB-IP lite | IPinfo lite | ip-location-db |
//! |---|---|---|---|
//! | AS number | `autonomous_system_number` (integer) | `asn` (`"AS15169"`) | — |
//! | organisation | `autonomous_system_organization` | `as_name` | — |
//! | country | `country.iso_code` | `country_code` | `country_code` |

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use maxminddb::{PathElement, Reader};

use crate::ranges::{Key, Ranges};
use crate::{CountryCode, Error};

/// An opened `.mmdb` file, held in memory.
pub struct Mmdb {
    reader: Reader<Vec<u8>>,
    len: usize,
}

impl std::fmt::Debug for Mmdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mmdb")
            .field("database_type", &self.reader.metadata().database_type)
            .finish()
    }
}

impl Mmdb {
    /// Opens and checks a file's metadata; a file that is not a MaxMind DB
    /// (or is cut short) is an error.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let len = bytes.len();
        let reader = Reader::from_source(bytes).map_err(|source| Error::Mmdb {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self { reader, len })
    }

    /// Size of the file held in memory.
    pub fn file_bytes(&self) -> usize {
        self.len
    }

    /// When the database was built, as `YYYY-MM-DD`.
    pub fn build_date(&self) -> Option<String> {
        let epoch = i64::try_from(self.reader.metadata().build_epoch).ok()?;
        let at = time::OffsetDateTime::from_unix_timestamp(epoch).ok()?;
        Some(at.date().to_string())
    }

    /// The AS number and organisation the database gives `ip`. A record
    /// that fails to decode answers nothing: one damaged record must not
    /// stop a monitor.
    pub fn asn(&self, ip: IpAddr) -> (Option<u32>, Option<Arc<str>>) {
        let Ok(found) = self.reader.lookup(ip) else {
            return (None, None);
        };
        if !found.has_data() {
            return (None, None);
        }
        let number = found
            .decode_path::<u32>(&[PathElement::Key("autonomous_system_number")])
            .ok()
            .flatten()
            .or_else(|| {
                let text = found
                    .decode_path::<&str>(&[PathElement::Key("asn")])
                    .ok()??;
                text.strip_prefix("AS").unwrap_or(text).parse().ok()
            });
        let org = ["autonomous_system_organization", "as_name"]
            .iter()
            .find_map(|key| found.decode_path::<&str>(&[PathElement::Key(key)]).ok()?)
            .map(|name| Arc::from(crate::ranges::clip(name)));
        (number, org)
    }

    /// The country the database gives `ip`.
    pub fn country(&self, ip: IpAddr) -> Option<CountryCode> {
        let found = self.reader.lookup(ip).ok()?;
        found.has_data().then(|| country_of(&found))?
    }
}

/// A country `.mmdb` turned into ranges at load: a lookup then costs a
/// bucket search like the ASN table's instead of a walk down a tree of up
/// to 128 levels, and the file's bytes are not kept.
#[derive(Debug, Default)]
pub struct CountryTable {
    v4: Ranges<u32, CountryCode>,
    v6: Ranges<u128, CountryCode>,
}

impl CountryTable {
    /// Reads every network of `db`; a damaged tree or record is an error.
    pub fn from_mmdb(db: &Mmdb, path: &Path) -> Result<Self, Error> {
        let damaged = |source| Error::Mmdb {
            path: path.to_owned(),
            source,
        };
        let mut table = Self::default();
        // Records are shared by many networks (one per country), so each
        // is decoded once.
        let mut decoded: HashMap<usize, Option<CountryCode>> = HashMap::new();
        let mut last4: Option<(u32, u32, CountryCode)> = None;
        let mut last6: Option<(u128, u128, CountryCode)> = None;
        for found in db.reader.networks(Default::default()).map_err(damaged)? {
            let found = found.map_err(damaged)?;
            let Some(offset) = found.offset() else {
                continue;
            };
            let code = match decoded.get(&offset) {
                Some(code) => *code,
                None => {
                    let code = country_of(&found);
                    decoded.insert(offset, code);
                    code
                }
            };
            let Some(code) = code else { continue };
            let network = found.network().map_err(damaged)?;
            let prefix = u32::from(network.prefix());
            match network.ip() {
                IpAddr::V4(ip) => {
                    let start = u32::from(ip);
                    let end = start | u32::MAX.checked_shr(prefix).unwrap_or(0);
                    last4 = merge(&mut table.v4, last4, (start, end, code));
                }
                IpAddr::V6(ip) => {
                    let start = u128::from(ip);
                    let end = start | u128::MAX.checked_shr(prefix).unwrap_or(0);
                    last6 = merge(&mut table.v6, last6, (start, end, code));
                }
            }
        }
        if let Some((s, e, c)) = last4 {
            table.v4.push(s, e, c);
        }
        if let Some((s, e, c)) = last6 {
            table.v6.push(s, e, c);
        }
        table.v4.finish();
        table.v6.finish();
        Ok(table)
    }

    /// The country of `ip`.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<CountryCode> {
        match ip {
            IpAddr::V4(v4) => self.v4.lookup(u32::from(v4)),
            IpAddr::V6(v6) => self.v6.lookup(u128::from(v6)),
        }
    }

    /// Approximate heap bytes the table holds.
    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes() + self.v6.heap_bytes()
    }

    /// The IPv4 and IPv6 ranges, for the compiled table.
    pub(crate) fn parts(&self) -> (&Ranges<u32, CountryCode>, &Ranges<u128, CountryCode>) {
        (&self.v4, &self.v6)
    }

    /// A table from finished ranges read back from the compiled table.
    pub(crate) fn from_parts(v4: Ranges<u32, CountryCode>, v6: Ranges<u128, CountryCode>) -> Self {
        Self { v4, v6 }
    }
}

/// Extends the pending range when `next` continues it with the same
/// country; otherwise stores the pending one and starts `next`.
fn merge<K: Key + Into<u128>>(
    ranges: &mut Ranges<K, CountryCode>,
    pending: Option<(K, K, CountryCode)>,
    next: (K, K, CountryCode),
) -> Option<(K, K, CountryCode)> {
    match pending {
        Some((s, e, c)) if c == next.2 && e.into() + 1 == next.0.into() => Some((s, next.1, c)),
        Some((s, e, c)) => {
            ranges.push(s, e, c);
            Some(next)
        }
        None => Some(next),
    }
}

fn country_of<S: AsRef<[u8]>>(found: &maxminddb::LookupResult<'_, S>) -> Option<CountryCode> {
    let code = found
        .decode_path::<&str>(&[PathElement::Key("country_code")])
        .ok()
        .flatten()
        .or_else(|| {
            found
                .decode_path::<&str>(&[PathElement::Key("country"), PathElement::Key("iso_code")])
                .ok()
                .flatten()
        })?;
    CountryCode::new(code)
}
