//! The compiled table in the cache directory: it answers exactly as the
//! tables parsed from their files do, it is used only while those files
//! are unchanged, a damaged one is rebuilt, and a cache directory that
//! cannot be written costs nothing but speed.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use support::{map, s, Writer};
use tetherscope_netinfo::{Config, NetInfo, COMPILED_FILE};

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("netinfo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Where the generated tables are installed.
    fn share(&self) -> PathBuf {
        self.0.join("share")
    }
}

/// Writes `root/relative`, creating its directories.
fn put(root: &Path, relative: &str, bytes: &[u8]) -> PathBuf {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const ASN: &str = "node_modules/@ip-location-db/asn";
const COUNTRY: &str = "node_modules/@ip-location-db/geo-whois-asn-country-mmdb";

/// Deterministic pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Every address where a table's answer may change: each range's first
/// and last address and their neighbours.
#[derive(Default)]
struct Boundaries(Vec<IpAddr>);

impl Boundaries {
    fn v4(&mut self, start: u32, end: u32) {
        for n in [start.wrapping_sub(1), start, end, end.wrapping_add(1)] {
            self.0.push(IpAddr::V4(Ipv4Addr::from(n)));
        }
    }

    fn v6(&mut self, start: u128, end: u128) {
        for n in [start.wrapping_sub(1), start, end, end.wrapping_add(1)] {
            self.0.push(IpAddr::V6(Ipv6Addr::from(n)));
        }
    }
}

/// Lays out the installed snapshot's files with a generated table: ASN
/// ranges across the whole IPv4 space and 2000::/4 (gaps, touching ranges,
/// repeated organisations, AS 0, names with quotes and commas), and a
/// country network of a random prefix length in every /8 and in a run of
/// IPv6 /16s, so country ranges start and end inside AS ranges.
fn install_generated(root: &Path, seed: u64) -> Boundaries {
    let mut rng = Rng(seed);
    let mut at = Boundaries::default();
    let orgs = [
        "Example Hosting",
        "\"Documentation Net, Inc.\"",
        "Not routed",
        "Ünïcødé Networks",
        "",
    ];
    let mut csv4 = String::new();
    let mut start: u64 = rng.next() % 4096;
    while start <= u64::from(u32::MAX) {
        let end = (start + rng.next() % (1 << 22)).min(u64::from(u32::MAX));
        let asn = if rng.next().is_multiple_of(10) {
            0
        } else {
            64496 + rng.next() % 16
        };
        let org = orgs[(rng.next() % orgs.len() as u64) as usize];
        csv4.push_str(&format!("{start},{end},{asn},{org}\n"));
        at.v4(start as u32, end as u32);
        // Touching ranges half the time, a gap otherwise.
        start = end + 1 + (rng.next() % 2) * (rng.next() % (1 << 20));
    }
    let mut csv6 = String::new();
    let mut start: u128 = 0x2000 << 112;
    while start < 0x3000 << 112 {
        let end = start + (u128::from(rng.next() % 64) << 108) + u128::from(rng.next() % 4096);
        let org = orgs[(rng.next() % orgs.len() as u64) as usize];
        csv6.push_str(&format!("{start},{end},{},{org}\n", 64512 + rng.next() % 8));
        at.v6(start, end);
        start = end + 1 + u128::from(rng.next() % 2) * (u128::from(rng.next() % 16) << 108);
    }
    put(root, &format!("{ASN}/asn-ipv4-num.csv"), csv4.as_bytes());
    put(root, &format!("{ASN}/asn-ipv6-num.csv"), csv6.as_bytes());
    put(
        root,
        &format!("{ASN}/package.json"),
        br#"{"version":"2.3.2026061719"}"#,
    );

    let codes = ["NL", "JP", "US", "DE", "BR"];
    let mut w = Writer::new("country", 1_781_697_600);
    for a in 1u32..=223 {
        let prefix = 8 + (rng.next() % 21) as u32;
        let base = (a << 24) | (rng.next() as u32 & 0x00ff_ffff);
        let start = base & !(u32::MAX >> prefix);
        let end = start | (u32::MAX >> prefix);
        let code = codes[(rng.next() % codes.len() as u64) as usize];
        w.insert(
            &format!("{}/{prefix}", Ipv4Addr::from(start)),
            &map(&[("country_code", s(code))]),
        );
        at.v4(start, end);
    }
    for k in 0u128..48 {
        let prefix = 16 + (rng.next() % 40) as u32;
        let start = ((0x2000 + k * 0x155) << 112) & !(u128::MAX >> prefix);
        let end = start | (u128::MAX >> prefix);
        let code = codes[(rng.next() % codes.len() as u64) as usize];
        w.insert(
            &format!("{}/{prefix}", Ipv6Addr::from(start)),
            &map(&[("country_code", s(code))]),
        );
        at.v6(start, end);
    }
    put(
        root,
        &format!("{COUNTRY}/geo-whois-asn-country.mmdb"),
        &w.finish(),
    );
    put(
        root,
        &format!("{COUNTRY}/package.json"),
        br#"{"version":"2.3.2026061519"}"#,
    );
    at
}

fn config(dir: &Scratch, cache: Option<&Path>) -> Config {
    Config {
        search_dirs: vec![dir.0.join("share")],
        documentation_ranges: true,
        cache_dir: cache.map(Path::to_owned),
        ..Config::default()
    }
}

#[test]
fn compiled_lookups_equal_fresh_lookups_on_every_range_boundary() {
    let dir = Scratch::new("compiled-boundaries");
    let cache = dir.0.join("cache");
    let boundaries = install_generated(&dir.share(), 0x9e37_79b9_7f4a_7c15);
    let fresh = NetInfo::load(&config(&dir, None)).unwrap();
    let first = NetInfo::load(&config(&dir, Some(&cache))).unwrap();
    assert!(!first.is_compiled(), "nothing compiled yet");
    let compiled = NetInfo::load(&config(&dir, Some(&cache))).unwrap();
    assert!(
        compiled.is_compiled(),
        "the second load reads the compiled file"
    );
    assert_eq!(compiled.sources(), fresh.sources());
    assert!(boundaries.0.len() > 4000, "{}", boundaries.0.len());
    let mut answered = 0;
    for &ip in &boundaries.0 {
        let want = fresh.lookup(ip);
        assert_eq!(compiled.lookup(ip), want, "{ip}");
        assert_eq!(first.lookup(ip), want, "{ip}");
        answered += usize::from(want.is_some());
    }
    // The comparison means something: most boundaries are in a range.
    assert!(answered * 2 > boundaries.0.len(), "{answered}");
}

#[test]
fn the_cache_file_is_world_readable_in_a_private_directory() {
    let dir = Scratch::new("compiled-modes");
    let cache = dir.0.join("cache/tetherscope");
    install_generated(&dir.share(), 7);
    NetInfo::load(&config(&dir, Some(&cache))).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&cache.join(COMPILED_FILE)), 0o644);
    // Only the compiled file: the temporary one was renamed.
    let names: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn a_changed_source_invalidates_the_compiled_table() {
    let dir = Scratch::new("compiled-changed");
    let cache = dir.0.join("cache");
    let share = dir.share();
    install_generated(&share, 11);
    let ip: IpAddr = "192.0.2.10".parse().unwrap();
    let csv = |org: &str| format!("3221225984,3221226239,64496,{org}\n");
    let csv_path = put(
        &share,
        &format!("{ASN}/asn-ipv4-num.csv"),
        csv("First Org").as_bytes(),
    );
    let org_of = |info: &NetInfo| {
        info.lookup(ip)
            .and_then(|n| n.as_org)
            .map(|o| o.to_string())
    };

    NetInfo::load(&config(&dir, Some(&cache))).unwrap();
    let cached = NetInfo::load(&config(&dir, Some(&cache))).unwrap();
    assert!(cached.is_compiled());
    assert_eq!(org_of(&cached).as_deref(), Some("First Org"));

    // A different size.
    std::fs::write(&csv_path, csv("Second Org Ltd")).unwrap();
    let changed = NetInfo::load(&config(&dir, Some(&cache))).unwrap();
    assert!(!changed.is_compiled());
    assert_eq!(org_of(&changed).as_deref(), Some("Second Org Ltd"));
    let again = NetInfo::load(&config(&dir, Some(&cache))).unwrap();
    assert!(again.is_compiled(), "compiled again from the new file");
    assert_eq!(org_of(&again).as_deref(), Some("Second Org Ltd"));

    // The same size, another modification time.
    std::fs::write(&csv_path, csv("Third Org Ltd.")).unwrap();
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    std::fs::File::options()
        .write(true)
        .open(&csv_path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let changed = NetInfo::load(&config(&dir, Some(&cache))).unwrap();
    assert!(!changed.is_compiled());
    assert_eq!(org_of(&changed).as_deref(), Some("Third Org Ltd."));

    // A source that appears (the IPv6 file) or disappears changes the set.
    std::fs::remove_file(share.join(format!("{ASN}/asn-ipv6-num.csv"))).unwrap();
    let fewer = NetInfo::load(&config(&dir, Some(&cache))).unwrap();
    assert!(!fewer.is_compiled());
    assert_eq!(
        fewer.lookup("2000::1".parse().unwrap()).and_then(|n| n.asn),
        None
    );
}

#[test]
fn a_damaged_compiled_table_is_rebuilt() {
    let dir = Scratch::new("compiled-damaged");
    let cache = dir.0.join("cache");
    let boundaries = install_generated(&dir.share(), 13);
    let fresh = NetInfo::load(&config(&dir, None)).unwrap();
    NetInfo::load(&config(&dir, Some(&cache))).unwrap();
    let file = cache.join(COMPILED_FILE);
    let good = std::fs::read(&file).unwrap();
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x10;
    for damaged in [
        flipped,
        good[..good.len() / 3].to_vec(),
        b"not a table".to_vec(),
        Vec::new(),
    ] {
        std::fs::write(&file, &damaged).unwrap();
        let rebuilt = NetInfo::load(&config(&dir, Some(&cache))).unwrap();
        assert!(!rebuilt.is_compiled());
        for &ip in boundaries.0.iter().step_by(7) {
            assert_eq!(rebuilt.lookup(ip), fresh.lookup(ip), "{ip}");
        }
        assert_eq!(std::fs::read(&file).unwrap(), good, "written again");
        assert!(NetInfo::load(&config(&dir, Some(&cache)))
            .unwrap()
            .is_compiled());
    }
}

#[test]
fn an_unwritable_cache_directory_still_answers() {
    let dir = Scratch::new("compiled-unwritable");
    let boundaries = install_generated(&dir.share(), 17);
    // A regular file where the directory should be: not even root can
    // create the directory under it.
    let blocker = put(&dir.0, "blocker", b"");
    let cache = blocker.join("tetherscope");
    let fresh = NetInfo::load(&config(&dir, None)).unwrap();
    for _ in 0..2 {
        let info = NetInfo::load(&config(&dir, Some(&cache))).unwrap();
        assert!(!info.is_compiled());
        for &ip in boundaries.0.iter().step_by(5) {
            assert_eq!(info.lookup(ip), fresh.lookup(ip), "{ip}");
        }
    }
}

#[test]
fn without_tables_nothing_is_compiled_or_written() {
    let dir = Scratch::new("compiled-none");
    let cache = dir.0.join("cache");
    let info = NetInfo::load(&config(&dir, Some(&cache))).unwrap();
    assert!(info.is_empty() && !info.is_compiled());
    assert_eq!(info.lookup("192.0.2.1".parse().unwrap()), None);
    assert!(!cache.exists());
}
