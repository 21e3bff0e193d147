//! The snapshot `scripts/setup.sh` installs: well-known public blocks
//! resolve to their well-known networks. A lookup in a local file; no
//! traffic. Skipped, saying why, on a machine where setup has not run.

use std::net::IpAddr;

use tetherscope_netinfo::{Config, Kind, NetInfo};

fn installed() -> Option<NetInfo> {
    let info = NetInfo::load(&Config::standard()).expect("the installed snapshot loads");
    if info.sources().len() < 2 {
        println!(
            "skipped: no installed ip-location-db snapshot under {:?} (scripts/setup.sh installs it)",
            tetherscope_netinfo::DEFAULT_DIRS
        );
        return None;
    }
    Some(info)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn well_known_blocks_resolve_to_their_networks() {
    let Some(info) = installed() else { return };
    for (addr, asn, org, country) in [
        ("8.8.8.8", 15169, "Google", "US"),
        ("2001:4860:4860::8888", 15169, "Google", "US"),
        ("1.1.1.1", 13335, "Cloudflare", "AU"),
    ] {
        let net = info
            .lookup(ip(addr))
            .unwrap_or_else(|| panic!("{addr} has no network"));
        assert_eq!(net.asn, Some(asn), "{addr}: {net:?}");
        assert!(
            net.as_org.as_deref().unwrap_or("").contains(org),
            "{addr}: {net:?}"
        );
        assert_eq!(
            net.country.map(|c| c.to_string()).as_deref(),
            Some(country),
            "{addr}: {net:?}"
        );
    }
    assert_eq!(info.lookup(ip("10.42.0.1")), None);
    assert_eq!(info.lookup(ip("192.0.2.1")), None);
}

#[test]
fn installed_snapshot_is_dated_and_credited() {
    let Some(info) = installed() else { return };
    for kind in [Kind::Asn, Kind::Country] {
        let source = info
            .sources()
            .iter()
            .find(|s| s.kind == kind)
            .expect("both tables");
        let date = source.snapshot.as_deref().expect("a snapshot date");
        assert!(date.len() == 10 && date.starts_with("20"), "{date}");
        assert!(source.attribution.is_some_and(|a| a.contains("CC BY 4.0")));
    }
}
