//! The network tables on the command line: a table the user names that is
//! missing or damaged is one line and exit 64 on every command that loads
//! tables; turning the installed ones off is no error.

use std::process::Command;

use crate::common;

#[test]
fn damaged_or_missing_network_table_is_one_line_and_exit_64() {
    let dir = std::env::temp_dir().join(format!("tetherscope-netdb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    };
    let garbage = file("garbage.mmdb", &b"not a MaxMind database".repeat(50));
    let csv = file(
        "asn.csv",
        b"192.0.2.0,192.0.2.255,64496,ok\n192.0.2.0,oops\n",
    );
    let missing = dir.join("missing.mmdb").display().to_string();
    let capture = common::fixture("seed-domains.pcap");
    let report = dir.join("report.html");
    let cases = [
        ("--asn-db", &garbage, "not a usable MaxMind DB file"),
        ("--country-db", &garbage, "not a usable MaxMind DB file"),
        ("--asn-db", &csv, ":2: no AS number"),
        ("--country-db", &missing, "No such file"),
    ];
    for (flag, path, says) in cases {
        let runs = [
            common::read_jsonl(&capture, &[flag, path]),
            Command::new(common::bin())
                .arg("report")
                .arg("--quiet")
                .arg("--output")
                .arg(&report)
                .args([flag, path])
                .arg(&capture)
                .output()
                .unwrap(),
            Command::new(common::bin())
                .args(["replay", "--listen", "127.0.0.1:0", flag, path])
                .arg(&capture)
                .output()
                .unwrap(),
        ];
        for out in runs {
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{flag} {path}: {err}");
            assert!(
                err.starts_with(&format!("tetherscope: network table {path}")),
                "{err}"
            );
            assert!(err.contains(says), "{flag} {path}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        }
    }
    assert!(!report.exists(), "no report is written after a table error");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_network_tables_a_capture_reads_as_before() {
    let capture = common::fixture("seed-domains.pcap");
    let with = common::read_jsonl(&capture, &[]);
    let without = common::read_jsonl(&capture, &["--no-default-network-db"]);
    assert!(
        without.status.success(),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    assert_eq!(with.stdout, without.stdout);
    assert!(!common::records(&without.stdout).is_empty());
}

/// Network tables for `owner-mix.pcap` written into `dir`: the ASN CSV
/// (with `org_of` choosing each organisation's name) and the country
/// `.mmdb`, as `read`'s options.
fn owner_mix_tables(dir: &std::path::Path, org_of: impl Fn(&str) -> String) -> Vec<String> {
    use std::net::Ipv4Addr;
    use tetherscope_testkit::fixtures::OWNER_MIX_NETWORKS;
    use tetherscope_testkit::mmdb::{map, s, Writer};
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::new();
    let mut country = Writer::new("test-country", 1_780_000_000);
    for (network, asn, org, code) in OWNER_MIX_NETWORKS {
        let (start, prefix) = network.split_once('/').unwrap();
        let start = u32::from(start.parse::<Ipv4Addr>().unwrap());
        let end = start | (u32::MAX >> prefix.parse::<u32>().unwrap());
        let org = org_of(org).replace('"', "\"\"");
        csv.push_str(&format!("{start},{end},{asn},\"{org}\"\n"));
        country.insert(network, &map(&[("country_code", s(code))]));
    }
    let asn_path = dir.join("asn-ipv4-num.csv");
    let country_path = dir.join("country.mmdb");
    std::fs::write(&asn_path, csv).unwrap();
    std::fs::write(&country_path, country.finish()).unwrap();
    vec![
        "--no-default-network-db".into(),
        "--asn-db".into(),
        asn_path.display().to_string(),
        "--country-db".into(),
        country_path.display().to_string(),
    ]
}

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tetherscope-{name}-{}", std::process::id()))
}

/// A percentage the summary prints after `prefix`.
fn share(summary: &str, prefix: &str) -> f64 {
    let line = summary
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {summary}"));
    line.split('%').next().unwrap().trim().parse().unwrap()
}

#[test]
fn every_public_address_of_a_mixed_capture_gets_owner_asn_and_country() {
    let dir = scratch("owner-mix");
    let tables = owner_mix_tables(&dir, str::to_owned);
    let args: Vec<&str> = tables.iter().map(String::as_str).collect();
    let out = common::read_jsonl(&common::fixture("owner-mix.pcap"), &args);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{summary}");
    let flows = common::records(&out.stdout);
    let public: Vec<_> = flows
        .iter()
        .filter(|f| !f["server_ip"].as_str().unwrap().starts_with("10.42."))
        .collect();
    assert_eq!(public.len(), 18, "13 named and 5 direct-IP connections");
    for f in &public {
        for key in ["owner", "owner_source", "asn", "as_org", "country"] {
            assert!(!f[key].is_null(), "{key} missing: {f}");
        }
    }
    // The hotspot's resolver is no one's network.
    let dns = flows
        .iter()
        .find(|f| f["server_ip"] == "10.42.0.1")
        .unwrap();
    assert!(dns["asn"].is_null() && dns["as_org"].is_null() && dns["country"].is_null());
    // A named flow keeps the catalog's owner; the network is said beside it.
    let xtra = public
        .iter()
        .find(|f| f["domain"] == "xtrapath3.izatcloud.net")
        .unwrap();
    assert_eq!(xtra["owner"], "Qualcomm");
    assert_eq!(xtra["owner_source"], "catalog");
    assert_eq!(xtra["asn"], 16509);
    assert_eq!(xtra["as_org"], "Amazon.com, Inc.");
    assert_eq!(xtra["country"], "DE");
    // A direct-IP flow: the AS organisation stands in as its owner.
    let direct = public
        .iter()
        .find(|f| f["server_ip"] == "142.250.74.14")
        .unwrap();
    assert!(direct["domain"].is_null());
    assert_eq!(direct["owner"], "Google LLC");
    assert_eq!(direct["owner_source"], "network");
    assert_eq!(direct["asn"], 15169);
    assert_eq!(direct["country"], "US");
    // The statement's bar: both shares below 10%.
    let unknown = share(&summary, "purpose unknown for ");
    let ownerless = share(&summary, "no owner for ");
    assert!(unknown > 0.0 && unknown < 10.0, "{summary}");
    assert!(ownerless < 10.0, "{summary}");
    assert!(
        summary.contains("no owner for 0.0% of flows to servers off the local network (0 of 18)"),
        "{summary}"
    );

    // Without tables the direct-IP flows have no owner: the share says so.
    let bare = common::read_jsonl(
        &common::fixture("owner-mix.pcap"),
        &["--no-default-network-db"],
    );
    let bare_summary = String::from_utf8_lossy(&bare.stderr);
    assert!(
        bare_summary.contains("(5 of 18)"),
        "direct-IP flows have no owner without tables: {bare_summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_table_and_the_report_name_the_network_instead_of_a_bare_address() {
    let dir = scratch("owner-view");
    let tables = owner_mix_tables(&dir, str::to_owned);
    let table = Command::new(common::bin())
        .args(["read", "--quiet", "--format", "table"])
        .args(&tables)
        .arg(common::fixture("owner-mix.pcap"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success());
    let row = text
        .lines()
        .find(|l| l.contains("142.250.74.14:443"))
        .unwrap();
    // The network stands where a name would (the client software column
    // follows it).
    assert!(row.contains("  AS15169 Google LLC, US "), "{row}");
    assert!(row.contains("Google LLC (network)"), "{row}");
    let xtra = text
        .lines()
        .find(|l| l.contains(":443") && l.contains("xtrapath3.izatcloud.net"))
        .unwrap();
    assert!(
        xtra.contains("Qualcomm, served by Amazon.com, Inc."),
        "{xtra}"
    );

    let report = dir.join("report.html");
    let out = Command::new(common::bin())
        .args(["report", "--quiet", "--output"])
        .arg(&report)
        .args(&tables)
        .arg(common::fixture("owner-mix.pcap"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains(r#"<div class="network">AS15169 Google LLC, US</div>"#));
    assert!(html.contains("Qualcomm, served by Amazon.com, Inc."));
    assert!(
        html.contains("network data: "),
        "the footer credits the tables"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_hostile_organisation_name_is_shown_as_text() {
    let dir = scratch("owner-hostile");
    let hostile = "<script>alert(1)</script>\u{7}\u{202e}Evil & Co";
    let tables = owner_mix_tables(&dir, |org| {
        if org == "Google LLC" {
            hostile.to_owned()
        } else {
            org.to_owned()
        }
    });
    let report = dir.join("report.html");
    let out = Command::new(common::bin())
        .args(["report", "--quiet", "--output"])
        .arg(&report)
        .args(&tables)
        .arg(common::fixture("owner-mix.pcap"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        !html.contains("<script>alert"),
        "markup from a data file ran"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\x07\\u{202e}Evil &amp; Co"));
    assert!(!html.contains('\u{7}') && !html.contains('\u{202e}'));
    // The JSON record carries it as data, escaped by JSON itself.
    let read = common::read_jsonl(&common::fixture("owner-mix.pcap"), &{
        let v: Vec<&str> = tables.iter().map(String::as_str).collect();
        v
    });
    let flows = common::records(&read.stdout);
    let direct = flows
        .iter()
        .find(|f| f["server_ip"] == "142.250.74.14")
        .unwrap();
    assert_eq!(direct["as_org"], hostile);
    let _ = std::fs::remove_dir_all(&dir);
}
