//! Lookups against small tables each test writes itself: the installed
//! snapshot's layout (ASN CSV + country `.mmdb`), the users' MaxMind files
//! (GeoLite2/DB-IP and IPinfo field names), missing and damaged files.

mod support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use support::{map, s, Value, Writer};
use tetherscope_netinfo::{Config, Error, Kind, NetInfo, Network};

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("netinfo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, relative: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn int4(text: &str) -> u32 {
    u32::from(text.parse::<std::net::Ipv4Addr>().unwrap())
}

fn int6(text: &str) -> u128 {
    u128::from(text.parse::<std::net::Ipv6Addr>().unwrap())
}

/// 2026-06-17 12:00 UTC.
const EPOCH: u64 = 1_781_697_600;

/// Lays out what `npm install @ip-location-db/asn
/// @ip-location-db/geo-whois-asn-country-mmdb` leaves in a search directory,
/// with documentation ranges standing in for real networks.
fn install_snapshot(dir: &Scratch) {
    let asn = "node_modules/@ip-location-db/asn";
    dir.write(
        &format!("{asn}/asn-ipv4-num.csv"),
        format!(
            "{},{},64496,\"Documentation Net, Inc.\"\n{},{},64497,Example Hosting\n{},{},0,Not routed\n",
            int4("192.0.2.0"),
            int4("192.0.2.255"),
            int4("198.51.100.0"),
            int4("198.51.100.127"),
            int4("203.0.113.0"),
            int4("203.0.113.255"),
        )
        .as_bytes(),
    );
    dir.write(
        &format!("{asn}/asn-ipv6-num.csv"),
        format!(
            "{},{},64498,IPv6 Example\n",
            int6("2001:db8::"),
            int6("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")
        )
        .as_bytes(),
    );
    dir.write(
        &format!("{asn}/package.json"),
        br#"{"name":"@ip-location-db/asn","version":"2.3.2026061719"}"#,
    );
    let country = "node_modules/@ip-location-db/geo-whois-asn-country-mmdb";
    let mut w = Writer::new("country", EPOCH);
    w.insert("192.0.2.0/24", &map(&[("country_code", s("NL"))]));
    w.insert("2001:db8::/32", &map(&[("country_code", s("JP"))]));
    w.insert("10.0.0.0/8", &map(&[("country_code", s("ZZ"))]));
    dir.write(
        &format!("{country}/geo-whois-asn-country.mmdb"),
        &w.finish(),
    );
    dir.write(
        &format!("{country}/package.json"),
        br#"{"version":"2.3.2026061519"}"#,
    );
}

fn snapshot_config(dir: &Scratch) -> Config {
    Config {
        search_dirs: vec![dir.0.clone()],
        documentation_ranges: true,
        ..Config::default()
    }
}

fn network(asn: Option<u32>, org: Option<&str>, country: Option<&str>) -> Option<Network> {
    let info = tetherscope_netinfo::CountryCode::new;
    Some(Network {
        asn,
        as_org: org.map(Into::into),
        country: country.and_then(info),
    })
}

#[test]
fn installed_snapshot_gives_asn_organisation_and_country() {
    let dir = Scratch::new("snapshot");
    install_snapshot(&dir);
    let info = NetInfo::load(&snapshot_config(&dir)).unwrap();
    assert_eq!(
        info.lookup(ip("192.0.2.10")),
        network(Some(64496), Some("Documentation Net, Inc."), Some("NL"))
    );
    assert_eq!(
        info.lookup(ip("::ffff:192.0.2.10")),
        info.lookup(ip("192.0.2.10")),
        "IPv4-mapped is IPv4"
    );
    assert_eq!(
        info.lookup(ip("198.51.100.5")),
        network(Some(64497), Some("Example Hosting"), None)
    );
    assert_eq!(
        info.lookup(ip("198.51.100.200")),
        None,
        "outside every range"
    );
    assert_eq!(
        info.lookup(ip("203.0.113.1")),
        network(None, Some("Not routed"), None),
        "AS 0 is no AS"
    );
    assert_eq!(
        info.lookup(ip("2001:db8::1")),
        network(Some(64498), Some("IPv6 Example"), Some("JP"))
    );
    assert_eq!(info.lookup(ip("2001:db9::1")), None);
}

#[test]
fn installed_snapshot_names_its_files_dates_and_credits() {
    let dir = Scratch::new("sources");
    install_snapshot(&dir);
    let info = NetInfo::load(&snapshot_config(&dir)).unwrap();
    let sources = info.sources();
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0].kind, Kind::Asn);
    assert!(sources[0].path.ends_with("asn/asn-ipv4-num.csv"));
    assert_eq!(sources[0].snapshot.as_deref(), Some("2026-06-17"));
    assert!(sources[0].attribution.unwrap().contains("RouteViews"));
    assert!(sources[0].attribution.unwrap().contains("DB-IP"));
    assert_eq!(sources[1].kind, Kind::Country);
    assert_eq!(sources[1].snapshot.as_deref(), Some("2026-06-15"));
    assert!(sources[1].attribution.unwrap().contains("CC BY 4.0"));
}

#[test]
fn documentation_ranges_answer_nothing_unless_asked() {
    let dir = Scratch::new("doc");
    install_snapshot(&dir);
    let config = Config {
        documentation_ranges: false,
        ..snapshot_config(&dir)
    };
    let info = NetInfo::load(&config).unwrap();
    for addr in ["192.0.2.10", "198.51.100.5", "2001:db8::1"] {
        assert_eq!(info.lookup(ip(addr)), None, "{addr}");
    }
}

#[test]
fn private_ranges_answer_nothing_even_when_a_table_maps_them() {
    let dir = Scratch::new("private");
    install_snapshot(&dir);
    let info = NetInfo::load(&snapshot_config(&dir)).unwrap();
    for addr in ["10.42.0.2", "10.0.0.1", "127.0.0.1", "fe80::1", "ff02::1"] {
        assert_eq!(info.lookup(ip(addr)), None, "{addr}");
    }
}

#[test]
fn nothing_installed_answers_nothing_and_fails_nothing() {
    let dir = Scratch::new("none");
    let info = NetInfo::load(&snapshot_config(&dir)).unwrap();
    assert!(info.is_empty());
    assert!(info.sources().is_empty());
    assert_eq!(info.lookup(ip("192.0.2.10")), None);
}

#[test]
fn geolite2_style_files_replace_the_installed_ones() {
    let dir = Scratch::new("geolite");
    install_snapshot(&dir);
    let mut asn = Writer::new("GeoLite2-ASN", EPOCH);
    asn.insert(
        "192.0.2.0/25",
        &map(&[
            ("autonomous_system_number", Value::U32(64510)),
            ("autonomous_system_organization", s("User's AS")),
        ]),
    );
    asn.insert(
        "2001:db8:1::/48",
        &map(&[("autonomous_system_number", Value::U32(4_200_000_000))]),
    );
    let mut country = Writer::new("GeoLite2-Country", EPOCH);
    let names = map(&[("en", s("Germany"))]);
    country.insert(
        "192.0.2.0/24",
        &map(&[("country", map(&[("iso_code", s("DE")), ("names", names)]))]),
    );
    let config = Config {
        asn_db: Some(dir.write("GeoLite2-ASN.mmdb", &asn.finish())),
        country_db: Some(dir.write("GeoLite2-Country.mmdb", &country.finish())),
        ..snapshot_config(&dir)
    };
    let info = NetInfo::load(&config).unwrap();
    assert_eq!(
        info.lookup(ip("192.0.2.1")),
        network(Some(64510), Some("User's AS"), Some("DE"))
    );
    // The installed table knows 192.0.2.200 and 198.51.100.5; the user's does not.
    assert_eq!(
        info.lookup(ip("192.0.2.200")),
        network(None, None, Some("DE"))
    );
    assert_eq!(info.lookup(ip("198.51.100.5")), None);
    assert_eq!(
        info.lookup(ip("2001:db8:1::9")),
        network(Some(4_200_000_000), None, None)
    );
    let sources = info.sources();
    assert_eq!(sources.len(), 2);
    assert!(sources
        .iter()
        .all(|s| s.attribution.is_none() && s.snapshot.as_deref() == Some("2026-06-17")));
}

#[test]
fn ipinfo_lite_style_file_gives_network_and_country_alone() {
    let dir = Scratch::new("ipinfo");
    let mut w = Writer::new("ipinfo lite", EPOCH);
    w.insert(
        "198.51.100.0/24",
        &map(&[
            ("asn", s("AS64511")),
            ("as_name", s("Lite Example")),
            ("country", s("Sweden")),
            ("country_code", s("SE")),
        ]),
    );
    let config = Config {
        asn_db: Some(dir.write("ipinfo_lite.mmdb", &w.finish())),
        documentation_ranges: true,
        ..Config::default()
    };
    let info = NetInfo::load(&config).unwrap();
    assert_eq!(
        info.lookup(ip("198.51.100.77")),
        network(Some(64511), Some("Lite Example"), Some("SE"))
    );
}

#[test]
fn a_users_asn_csv_is_read_in_either_form() {
    let dir = Scratch::new("csv");
    let path = dir.write("asn.csv", b"192.0.2.0,192.0.2.255,64512,Dotted Form\n");
    let config = Config {
        asn_db: Some(path),
        documentation_ranges: true,
        ..Config::default()
    };
    let info = NetInfo::load(&config).unwrap();
    assert_eq!(
        info.lookup(ip("192.0.2.3")),
        network(Some(64512), Some("Dotted Form"), None)
    );
}

fn load_err(config: &Config) -> Error {
    NetInfo::load(config).expect_err("load should fail")
}

#[test]
fn damaged_files_are_errors_that_name_the_file() {
    let dir = Scratch::new("damaged");
    let mut w = Writer::new("country", EPOCH);
    w.insert("192.0.2.0/24", &map(&[("country_code", s("NL"))]));
    let good = w.finish();
    let cases: [(&str, Vec<u8>); 3] = [
        ("truncated.mmdb", good[..good.len() - 40].to_vec()),
        ("garbage.mmdb", b"this is not a database".repeat(100)),
        ("empty.mmdb", Vec::new()),
    ];
    for (name, bytes) in cases {
        let path = dir.write(name, &bytes);
        for config in [
            Config {
                country_db: Some(path.clone()),
                ..Config::default()
            },
            Config {
                asn_db: Some(path.clone()),
                ..Config::default()
            },
        ] {
            let err = load_err(&config);
            assert!(matches!(err, Error::Mmdb { .. }), "{name}: {err:?}");
            assert!(
                err.to_string()
                    .starts_with(&format!("{}: not a usable MaxMind DB", path.display())),
                "{err}"
            );
        }
    }
    let csv = dir.write(
        "asn.csv",
        b"192.0.2.0,192.0.2.255,64512,ok\n192.0.2.0,oops,1,bad\n",
    );
    let err = load_err(&Config {
        asn_db: Some(csv.clone()),
        ..Config::default()
    });
    assert_eq!(
        err.to_string(),
        format!("{}:2: start or end is not an address", csv.display())
    );
}

#[test]
fn a_damaged_installed_table_is_an_error_too() {
    let dir = Scratch::new("damaged-installed");
    install_snapshot(&dir);
    let v6 = dir.write(
        "node_modules/@ip-location-db/asn/asn-ipv6-num.csv",
        b"1,2,3,x\n\x00\x01\x02\n",
    );
    let err = load_err(&snapshot_config(&dir));
    assert_eq!(
        err.to_string(),
        format!("{}:2: no end address", v6.display())
    );
}

#[test]
fn a_named_file_that_is_missing_is_an_error() {
    let missing = Path::new("/nonexistent/GeoLite2-ASN.mmdb").to_path_buf();
    let err = load_err(&Config {
        asn_db: Some(missing),
        ..Config::default()
    });
    assert!(matches!(err, Error::Read { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("/nonexistent/GeoLite2-ASN.mmdb: "),
        "{err}"
    );
}
