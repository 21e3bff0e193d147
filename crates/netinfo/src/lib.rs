//! Who runs the network a server address is in, and where: the AS number,
//! the AS's organisation and the country of an IP address, from offline
//! tables. Nothing here touches the network.
//!
//! * The installed snapshot: ip-location-db's `@ip-location-db/asn` (CSV,
//!   from RouteViews, the five RIRs via the NRO and DB-IP; CC BY 4.0) and
//!   `@ip-location-db/geo-whois-asn-country-mmdb` (a MaxMind DB, from
//!   GeoFeeds and the RIRs via the NRO; CC BY 4.0), installed by
//!   `scripts/setup.sh` under one of [`DEFAULT_DIRS`].
//! * Any MaxMind-format `.mmdb` the user names (GeoLite2 ASN/Country, DB-IP
//!   lite, IPinfo lite), or an ASN CSV in ip-location-db's format.
//!
//! [`NetInfo::load`] with no database anywhere gives a `NetInfo` whose
//! lookups answer `None`; a damaged file is an [`Error`]. Addresses no
//! public network serves (private, loopback, link-local, multicast, ...)
//! and the documentation ranges always answer `None`, whatever a database
//! says about them, unless [`Config::documentation_ranges`] asks for the
//! latter.
//!
//! A lookup costs a binary search over about 412,000 IPv4 (or 103,000 IPv6)
//! ranges plus a walk of the country tree: see `benches/lookup.rs`.
//!
//! Parsing the tables takes half a second, so the tables are also
//! written to a compiled file in a cache directory ([`Config::cache_dir`],
//! [`default_cache_dir`]) and later loads read that instead, as long as the
//! source files are the ones it was built from (see `compiled.rs` and
//! `benches/load.rs`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod compiled;
mod mmdb;
pub mod ranges;
pub mod special;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use compiled::{Cache, Identity, Role};
use mmdb::{CountryTable, Mmdb};
use ranges::{Family, RangeTable};

/// Where `scripts/setup.sh` may have installed the snapshot, searched in
/// this order (the first directory holding a package is used for it).
pub const DEFAULT_DIRS: &[&str] = &[
    "/usr/local/share/tetherscope/ip-location-db",
    "/usr/share/tetherscope/ip-location-db",
];

/// Environment variable naming the one directory to search instead of
/// [`DEFAULT_DIRS`].
pub const DIR_ENV: &str = "TETHERSCOPE_NETWORK_DB_DIR";

/// The ASN package, inside a search directory.
const ASN_PACKAGE: &str = "node_modules/@ip-location-db/asn";
/// The country package, inside a search directory.
const COUNTRY_PACKAGE: &str = "node_modules/@ip-location-db/geo-whois-asn-country-mmdb";
/// The country package's file covering IPv4 and IPv6.
const COUNTRY_FILE: &str = "geo-whois-asn-country.mmdb";

/// What the data's licence (CC BY 4.0) asks to be credited, wherever it is shown.
pub const ASN_ATTRIBUTION: &str = "IP to ASN data: RouteViews (routeviews.org), the NRO's RIR \
     statistics (nro.net) and DB-IP (db-ip.com), CC BY 4.0, compiled by ip-location-db";
/// The country table's credit, as [`ASN_ATTRIBUTION`].
pub const COUNTRY_ATTRIBUTION: &str = "Country data: GeoFeeds and the NRO's RIR WHOIS and \
     statistics (nro.net), CC BY 4.0, compiled by ip-location-db";

/// A file that exists but cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of an ASN CSV is not `start,end,asn,organisation`.
    #[error("{}:{line}: {reason}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The file is not a MaxMind DB, or a damaged one.
    #[error("{}: not a usable MaxMind DB file: {source}", path.display())]
    Mmdb {
        /// The file.
        path: PathBuf,
        /// The reader's complaint.
        source: maxminddb::MaxMindDbError,
    },
}

/// A two-letter ISO 3166-1 country code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// `code` if it is two ASCII letters (upper-cased).
    pub fn new(code: &str) -> Option<Self> {
        match code.as_bytes() {
            &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// The code, e.g. `"US"`.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl std::fmt::Display for CountryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What the tables say about an address. At least one field is set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Network {
    /// The autonomous system announcing the address (15169).
    pub asn: Option<u32>,
    /// The organisation holding that AS ("Google LLC"), as the data spells
    /// it: a name from a file, to be escaped wherever it is shown.
    pub as_org: Option<Arc<str>>,
    /// The country the address is registered or located in.
    pub country: Option<CountryCode>,
}

/// Which kind of table a [`Source`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// IP → AS number and organisation.
    Asn,
    /// IP → country.
    Country,
}

/// A loaded table, for the page's footer and `catalog list`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    /// What it answers.
    pub kind: Kind,
    /// The file (for the installed ASN table, its IPv4 file).
    pub path: PathBuf,
    /// When the data was compiled, `YYYY-MM-DD`, when the file says.
    pub snapshot: Option<String>,
    /// The credit its licence asks for (`None` for a file the user brought:
    /// its licence is theirs to honour).
    pub attribution: Option<&'static str>,
}

/// Which tables to load.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// An ASN table the user names (`.mmdb`, else ip-location-db CSV); it
    /// replaces the installed one.
    pub asn_db: Option<PathBuf>,
    /// A country `.mmdb` the user names; it replaces the installed one.
    pub country_db: Option<PathBuf>,
    /// Directories searched for the installed snapshot, in order; empty:
    /// the installed snapshot is not used.
    pub search_dirs: Vec<PathBuf>,
    /// Answer for the documentation ranges too (a simulated hotspot's
    /// servers live there, and so do test tables); off for real traffic.
    pub documentation_ranges: bool,
    /// Where the tables' compiled file is kept; `None`: the tables
    /// are always parsed from their files.
    pub cache_dir: Option<PathBuf>,
}

impl Config {
    /// The installed snapshot from `$TETHERSCOPE_NETWORK_DB_DIR` when set,
    /// else from [`DEFAULT_DIRS`].
    pub fn standard() -> Self {
        let search_dirs = match std::env::var_os(DIR_ENV) {
            Some(dir) if !dir.is_empty() => vec![PathBuf::from(dir)],
            _ => DEFAULT_DIRS.iter().map(PathBuf::from).collect(),
        };
        Self {
            search_dirs,
            cache_dir: default_cache_dir(),
            ..Self::default()
        }
    }
}

/// The file name of the compiled table inside [`Config::cache_dir`].
pub const COMPILED_FILE: &str = compiled::FILE_NAME;

/// Where the compiled table is kept: systemd's `$CACHE_DIRECTORY` (the
/// unit's `CacheDirectory=`) when set, else `$XDG_CACHE_HOME/tetherscope`,
/// else `~/.cache/tetherscope`; `None` without any of them.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dirs) = var("CACHE_DIRECTORY") {
        // systemd joins several directories with ':'; the first is ours.
        let first = dirs.to_string_lossy().split(':').next().map(PathBuf::from);
        if let Some(dir) = first.filter(|d| d.is_absolute()) {
            return Some(dir);
        }
    }
    // The XDG base directory specification ignores a relative value.
    if let Some(dir) = var("XDG_CACHE_HOME").map(PathBuf::from) {
        if dir.is_absolute() {
            return Some(dir.join("tetherscope"));
        }
    }
    var("HOME").map(|home| PathBuf::from(home).join(".cache/tetherscope"))
}

#[derive(Debug)]
enum AsnTable {
    Ranges(RangeTable),
    Mmdb(Mmdb),
}

/// The loaded tables. Cheap to share (`Arc`); lookups take `&self`.
#[derive(Debug, Default)]
pub struct NetInfo {
    asn: Option<AsnTable>,
    /// Without it, a user's ASN `.mmdb` may give countries (IPinfo lite does).
    country: Option<CountryTable>,
    sources: Vec<Source>,
    documentation_ranges: bool,
    /// The tables were read from their compiled file.
    compiled: bool,
}

impl NetInfo {
    /// No tables: every lookup answers `None`.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Loads what `config` names and what the search finds. A named file
    /// that is missing or damaged, or an installed one that is damaged, is
    /// an error; nothing installed is not.
    ///
    /// With a [`Config::cache_dir`], the tables are read from its
    /// compiled file when that was built from the very files the load
    /// would read; otherwise it is built from them and the compiled file
    /// written for the next load.
    pub fn load(config: &Config) -> Result<Self, Error> {
        let cache = config.cache_dir.as_deref().and_then(|dir| {
            let identity = Identity::of(&source_files(config)?)?;
            Some(Cache::new(dir, identity))
        });
        if let Some((sources, (asn, country))) = cache.as_ref().and_then(Cache::read) {
            return Ok(Self {
                asn: asn.map(AsnTable::Ranges),
                country,
                sources,
                documentation_ranges: config.documentation_ranges,
                compiled: true,
            });
        }
        let info = Self::load_sources(config)?;
        if let Some(cache) = &cache {
            let asn = match &info.asn {
                Some(AsnTable::Ranges(t)) => Some(t),
                Some(AsnTable::Mmdb(_)) => return Ok(info),
                None => None,
            };
            cache.write(&info.sources, asn, info.country.as_ref());
        }
        Ok(info)
    }

    /// Loads the tables from their files.
    fn load_sources(config: &Config) -> Result<Self, Error> {
        // The two tables are independent: read them side by side.
        let (asn, country) = std::thread::scope(|scope| {
            let country = scope.spawn(|| load_country(config));
            let asn = load_asn(config);
            (
                asn,
                country
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            )
        });
        let (asn, country) = (asn?, country?);
        let mut info = Self {
            documentation_ranges: config.documentation_ranges,
            ..Self::default()
        };
        if let Some((table, source)) = asn {
            info.asn = Some(table);
            info.sources.push(source);
        }
        if let Some((table, source)) = country {
            info.country = Some(table);
            info.sources.push(source);
        }
        Ok(info)
    }

    /// Whether the tables were read from their compiled file rather than
    /// parsed from their sources.
    pub fn is_compiled(&self) -> bool {
        self.compiled
    }

    /// The tables loaded, in the order they were found.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Approximate heap bytes the tables hold (a user's ASN `.mmdb` is
    /// counted as its file size).
    pub fn table_bytes(&self) -> usize {
        let asn = match &self.asn {
            Some(AsnTable::Ranges(t)) => t.heap_bytes(),
            Some(AsnTable::Mmdb(db)) => db.file_bytes(),
            None => 0,
        };
        asn + self.country.as_ref().map_or(0, CountryTable::heap_bytes)
    }

    /// Whether any table is loaded.
    pub fn is_empty(&self) -> bool {
        self.asn.is_none() && self.country.is_none()
    }

    /// The network and country of `ip` (an IPv4-mapped IPv6 address is
    /// looked up as IPv4), or `None` when no table knows it or it is in a
    /// range no public network serves.
    pub fn lookup(&self, ip: IpAddr) -> Option<Network> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        if self.is_empty()
            || special::is_unroutable(ip)
            || (!self.documentation_ranges && special::is_documentation(ip))
        {
            return None;
        }
        let (asn, as_org) = match &self.asn {
            Some(AsnTable::Ranges(t)) => t.lookup(ip).map_or((None, None), |(n, o)| {
                // AS 0 marks a range announced by nobody ("Not routed").
                (
                    Some(n).filter(|&n| n != 0),
                    Some(o.clone()).filter(|o| !o.is_empty()),
                )
            }),
            Some(AsnTable::Mmdb(db)) => db.asn(ip),
            None => (None, None),
        };
        let country = match (&self.country, &self.asn) {
            (Some(table), _) => table.lookup(ip),
            (None, Some(AsnTable::Mmdb(db))) => db.country(ip),
            (None, _) => None,
        };
        (asn.is_some() || as_org.is_some() || country.is_some()).then_some(Network {
            asn,
            as_org,
            country,
        })
    }
}

/// The files a load reads when its tables can be compiled, each with what
/// it is to the load; `None` when they cannot (an ASN `.mmdb`) or there
/// are none. Follows `load_asn` and `load_country`.
fn source_files(config: &Config) -> Option<Vec<(Role, PathBuf)>> {
    let mut files = Vec::new();
    if let Some(path) = &config.asn_db {
        if is_mmdb(path) {
            return None;
        }
        files.push((Role::AsnNamed, path.clone()));
    } else if let Some(dir) = find_package(&config.search_dirs, ASN_PACKAGE, "asn-ipv4-num.csv") {
        files.push((Role::AsnInstalledV4, dir.join("asn-ipv4-num.csv")));
        for (role, name) in [
            (Role::AsnInstalledV6, "asn-ipv6-num.csv"),
            (Role::AsnPackage, "package.json"),
        ] {
            let path = dir.join(name);
            if path.exists() {
                files.push((role, path));
            }
        }
    }
    if let Some(path) = &config.country_db {
        files.push((Role::CountryNamed, path.clone()));
    } else if let Some(dir) = find_package(&config.search_dirs, COUNTRY_PACKAGE, COUNTRY_FILE) {
        files.push((Role::CountryInstalled, dir.join(COUNTRY_FILE)));
        let path = dir.join("package.json");
        if path.exists() {
            files.push((Role::CountryPackage, path));
        }
    }
    (!files.is_empty()).then_some(files)
}

fn load_asn(config: &Config) -> Result<Option<(AsnTable, Source)>, Error> {
    if let Some(path) = &config.asn_db {
        let (table, snapshot) = if is_mmdb(path) {
            let db = Mmdb::open(path)?;
            let date = db.build_date();
            (AsnTable::Mmdb(db), date)
        } else {
            let mut b = ranges::Builder::default();
            let family = if path.to_string_lossy().contains("ipv6") {
                Family::V6
            } else {
                Family::V4
            };
            b.add_csv_file(path, family)?;
            (AsnTable::Ranges(b.build()), None)
        };
        let source = Source {
            kind: Kind::Asn,
            path: path.clone(),
            snapshot,
            attribution: None,
        };
        return Ok(Some((table, source)));
    }
    let Some(dir) = find_package(&config.search_dirs, ASN_PACKAGE, "asn-ipv4-num.csv") else {
        return Ok(None);
    };
    let mut b = ranges::Builder::default();
    let v4 = dir.join("asn-ipv4-num.csv");
    b.add_csv_file(&v4, Family::V4)?;
    let v6 = dir.join("asn-ipv6-num.csv");
    if v6.exists() {
        b.add_csv_file(&v6, Family::V6)?;
    }
    let source = Source {
        kind: Kind::Asn,
        path: v4,
        snapshot: package_date(&dir),
        attribution: Some(ASN_ATTRIBUTION),
    };
    Ok(Some((AsnTable::Ranges(b.build()), source)))
}

fn load_country(config: &Config) -> Result<Option<(CountryTable, Source)>, Error> {
    let (path, snapshot, attribution) = if let Some(path) = &config.country_db {
        (path.clone(), None, None)
    } else if let Some(dir) = find_package(&config.search_dirs, COUNTRY_PACKAGE, COUNTRY_FILE) {
        (
            dir.join(COUNTRY_FILE),
            package_date(&dir),
            Some(COUNTRY_ATTRIBUTION),
        )
    } else {
        return Ok(None);
    };
    let db = Mmdb::open(&path)?;
    let table = CountryTable::from_mmdb(&db, &path)?;
    let source = Source {
        kind: Kind::Country,
        snapshot: snapshot.or_else(|| db.build_date()),
        path,
        attribution,
    };
    Ok(Some((table, source)))
}

fn is_mmdb(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mmdb"))
}

/// The first `dir/package` holding `file`.
fn find_package(dirs: &[PathBuf], package: &str, file: &str) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| d.join(package))
        .find(|p| p.join(file).is_file())
}

/// The snapshot date of an ip-location-db package: its version is
/// `MAJOR.MINOR.YYYYMMDDHH` (e.g. `2.3.2026061719`, built on 2026-06-17).
fn package_date(package_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(package_dir.join("package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    version_date(json.get("version")?.as_str()?)
}

fn version_date(version: &str) -> Option<String> {
    let stamp = version.rsplit('.').next()?;
    let digits = stamp
        .get(..8)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?;
    Some(format!(
        "{}-{}-{}",
        &digits[..4],
        &digits[4..6],
        &digits[6..8]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_date_comes_from_the_package_version() {
        assert_eq!(
            version_date("2.3.2026061719").as_deref(),
            Some("2026-06-17")
        );
        assert_eq!(version_date("1.0.0"), None);
        assert_eq!(version_date("2.3.20x6061719"), None);
    }

    #[test]
    fn country_codes_are_two_letters() {
        assert_eq!(
            CountryCode::new("us").map(|c| c.to_string()).as_deref(),
            Some("US")
        );
        assert_eq!(CountryCode::new("USA"), None);
        assert_eq!(CountryCode::new("1A"), None);
        assert_eq!(CountryCode::new("é"), None);
    }

    #[test]
    fn empty_answers_nothing() {
        let info = NetInfo::load(&Config::default()).unwrap();
        assert!(info.is_empty() && info.sources().is_empty());
        assert_eq!(info.lookup("8.8.8.8".parse().unwrap()), None);
    }
}
