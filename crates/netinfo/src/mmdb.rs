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

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use maxminddb::{PathElement, Reader};

use crate::{CountryCode, Error};

/// An opened `.mmdb` file, held in memory.
pub struct Mmdb {
    reader: Reader<Vec<u8>>,
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
        let reader = Reader::from_source(bytes).map_err(|source| Error::Mmdb {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self { reader })
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
        if !found.has_data() {
            return None;
        }
        let code = found
            .decode_path::<&str>(&[PathElement::Key("country_code")])
            .ok()
            .flatten()
            .or_else(|| {
                found
                    .decode_path::<&str>(&[
                        PathElement::Key("country"),
                        PathElement::Key("iso_code"),
                    ])
                    .ok()
                    .flatten()
            })?;
        CountryCode::new(code)
    }
}
