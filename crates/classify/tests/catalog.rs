//! The built-in catalog against the seeds, matching precedence, profiles,
//! user files and lists.

use std::path::Path;

use tetherscope_classify::{Catalog, FlowFacts, ListFormat, Purpose, Transport, Verdict};

fn facts<'a>(names: &'a [&'a str], port: u16) -> FlowFacts<'a> {
    FlowFacts {
        transport: Transport::Tcp,
        server_port: Some(port),
        server_is_local: false,
        app: Some("tls"),
        names,
        http_path: None,
    }
}

/// Every destination the seeds name: (domain, purpose, owner).
const SEEDS: &[(&str, &str, &str)] = &[
    ("release.calyxinstitute.org", "os-update", "Calyx Institute"),
    ("www.bromite.org", "filter-update", "Bromite"),
    ("api.positon.xyz", "location", "Positon"),
    ("api.beacondb.net", "location", "BeaconDB"),
    ("xtrapath1.izatcloud.net", "gnss-assistance", "Qualcomm"),
    ("xtrapath3.izatcloud.net", "gnss-assistance", "Qualcomm"),
    ("xtrapath2.qcomgeo2.com", "gnss-assistance", "Qualcomm"),
    ("xp3.gpsonextra.net", "gnss-assistance", "Qualcomm"),
    (
        "connectivitycheck.gstatic.com",
        "connectivity-check",
        "Google",
    ),
    ("play.googleapis.com", "connectivity-check", "Google"),
    ("www.googleapis.cn", "connectivity-check", "Google"),
    ("time.android.com", "time-sync", "Google"),
    (
        "android.clients.google.com",
        "device-registration",
        "Google",
    ),
    ("supl.google.com", "gnss-assistance", "Google"),
    (
        "remoteprovisioning.googleapis.com",
        "key-attestation",
        "Google",
    ),
    ("mtalk.google.com", "push", "Google"),
    ("f-droid.org", "app-store", "F-Droid"),
    ("mirror.f-droid.org", "app-store", "F-Droid"),
    ("ftp-push.lysator.liu.se", "app-store", "F-Droid"),
    ("plug-mirror.rcac.purdue.edu", "app-store", "F-Droid"),
    (
        "fdroid-repo.calyxinstitute.org",
        "app-store",
        "Calyx Institute",
    ),
    ("goolag.store", "app-store", "Aurora OSS"),
    ("gitlab.com", "app-store", "GitLab"),
    ("play-lh.googleusercontent.com", "app-store", "Google"),
];

#[test]
fn every_seed_destination_is_labelled_and_expected() {
    let catalog = Catalog::builtin();
    for (domain, purpose, owner) in SEEDS {
        let c = catalog.classify(&facts(&[domain], 443));
        let rule = c.rule.unwrap_or_else(|| panic!("{domain}: no rule"));
        assert_eq!(c.purpose.as_str(), *purpose, "{domain}");
        assert_eq!(rule.owner, *owner, "{domain}");
        assert_eq!(c.verdict, Verdict::Expected, "{domain}");
        assert!(
            !rule.description.is_empty() && !rule.source.is_empty(),
            "{domain}"
        );
    }
}

#[test]
fn seed_cname_chain_classifies_the_cloudfront_flow() {
    let catalog = Catalog::builtin();
    let chain = [
        "xtrapath3.izatcloud.net",
        "xtrapath3.qcomgeo2.com",
        "xp3.gpsonextra.net",
        "d3nj9ptoklgw8o.cloudfront.net",
    ];
    let c = catalog.classify(&facts(&chain, 443));
    assert_eq!(
        (c.purpose, c.rule.unwrap().owner.as_str()),
        (Purpose::GnssAssistance, "Qualcomm")
    );
    assert_eq!(c.site, "Qualcomm XTRA");
    assert!(c.cleartext_known);
    // The CDN name alone says nothing.
    let c = catalog.classify(&facts(&["d3nj9ptoklgw8o.cloudfront.net"], 443));
    assert_eq!(
        (c.purpose, c.verdict, c.site.as_str()),
        (Purpose::Unknown, Verdict::Unexpected, "cloudfront.net")
    );
    // But a chain that only reaches an XTRA name further down still counts.
    let c = catalog.classify(&facts(&["cdn.example.net", "xp3.gpsonextra.net"], 443));
    assert_eq!(c.purpose, Purpose::GnssAssistance);
}

#[test]
fn www_google_com_is_a_connectivity_check_only_for_generate_204() {
    let catalog = Catalog::builtin();
    let mut f = facts(&["www.google.com"], 80);
    f.http_path = Some("/generate_204");
    let c = catalog.classify(&f);
    assert_eq!(
        (c.purpose, c.verdict, c.cleartext_known),
        (Purpose::ConnectivityCheck, Verdict::Expected, true)
    );
    f.http_path = Some("/search?q=x");
    let c = catalog.classify(&f);
    assert_eq!(
        (c.purpose, c.verdict),
        (Purpose::GoogleServices, Verdict::Unexpected)
    );
}

#[test]
fn suffixes_are_label_aligned_and_most_specific_wins() {
    let catalog = Catalog::builtin();
    // "notf-droid.org" must not match "f-droid.org".
    assert_eq!(
        catalog.classify(&facts(&["notf-droid.org"], 443)).purpose,
        Purpose::Unknown
    );
    // mtalk.google.com beats google.com.
    assert_eq!(
        catalog
            .classify(&facts(&["MTALK.google.com."], 5228))
            .purpose,
        Purpose::Push
    );
    assert_eq!(
        catalog.classify(&facts(&["maps.google.com"], 443)).purpose,
        Purpose::GoogleServices
    );
    // www.bromite.org is exact: a subdomain is not the filter update.
    assert_eq!(
        catalog
            .classify(&facts(&["cdn.www.bromite.org"], 443))
            .purpose,
        Purpose::Unknown
    );
}

#[test]
fn flows_without_names_use_flow_rules() {
    let catalog = Catalog::builtin();
    let dns = |local: bool, app: &'static str, transport, port| FlowFacts {
        transport,
        server_port: Some(port),
        server_is_local: local,
        app: Some(app),
        names: &[],
        http_path: None,
    };
    let c = catalog.classify(&dns(true, "dns", Transport::Udp, 53));
    assert_eq!(
        (c.purpose, c.verdict, c.site.as_str()),
        (Purpose::Dns, Verdict::Expected, "Hotspot DNS")
    );
    let c = catalog.classify(&dns(false, "dns", Transport::Udp, 53));
    assert_eq!((c.purpose, c.verdict), (Purpose::Dns, Verdict::Unexpected));
    let c = catalog.classify(&dns(true, "ntp", Transport::Udp, 123));
    assert_eq!(
        (c.purpose, c.verdict),
        (Purpose::TimeSync, Verdict::Expected)
    );
    let c = catalog.classify(&dns(false, "tls", Transport::Tcp, 853));
    assert_eq!(
        (c.purpose, c.verdict),
        (Purpose::EncryptedDns, Verdict::Unexpected)
    );
    // A direct-IP connection: unknown, unexpected, bounded site label.
    let c = catalog.classify(&dns(false, "tls", Transport::Tcp, 443));
    assert_eq!(
        (c.purpose, c.verdict, c.site.as_str()),
        (Purpose::Unknown, Verdict::Unexpected, "unnamed")
    );
}

#[test]
fn private_dns_to_dns_google_is_encrypted_dns() {
    let catalog = Catalog::builtin();
    let c = catalog.classify(&facts(&["dns.google"], 853));
    assert_eq!(
        (c.purpose, c.verdict),
        (Purpose::EncryptedDns, Verdict::Unexpected)
    );
    let c = catalog.classify(&facts(&["mozilla.cloudflare-dns.com"], 443));
    assert_eq!(c.purpose, Purpose::EncryptedDns);
}

#[test]
fn user_rules_override_and_profiles_extend() {
    let mut catalog = Catalog::builtin();
    let user = r#"
[[rule]]
name = "my-nas"
domains = ["nas.example.org"]
purpose = "local-network"
owner = "me"
description = "my NAS"
source = "me"

[[rule]]
name = "microg-push"
domains = ["mtalk.google.com"]
purpose = "push"
owner = "Google (user override)"
description = "overridden"
source = "me"

[[profile]]
name = "mine"
extends = "calyxos"
expect_rules = ["my-nas"]
"#;
    catalog
        .load_str(
            Path::new("user.toml"),
            user,
            tetherscope_classify::RuleOrigin::User("user.toml".into()),
            None,
        )
        .unwrap();
    catalog.set_profile("mine").unwrap();
    let c = catalog.classify(&facts(&["mtalk.google.com"], 5228));
    assert_eq!(
        (c.rule.unwrap().owner.as_str(), c.verdict),
        ("Google (user override)", Verdict::Expected)
    );
    assert_eq!(
        catalog
            .classify(&facts(&["files.nas.example.org"], 443))
            .verdict,
        Verdict::Expected
    );
    assert!(catalog.set_profile("nope").is_err());
}

#[test]
fn bad_catalog_files_name_file_line_and_problem() {
    let mut catalog = Catalog::builtin();
    let bad_purpose = "[[rule]]\nname = \"x\"\ndomains = [\"a.example\"]\npurpose = \"shopping\"\nowner = \"o\"\ndescription = \"d\"\nsource = \"s\"\n";
    let err = catalog
        .load_str(
            Path::new("mine.toml"),
            bad_purpose,
            tetherscope_classify::RuleOrigin::User("mine.toml".into()),
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("mine.toml:4: unknown purpose \"shopping\""),
        "{err}"
    );

    let bad_domain = "[[rule]]\nname = \"x\"\ndomains = [\"ok.example\", \"bad domain\"]\npurpose = \"push\"\nowner = \"o\"\ndescription = \"d\"\nsource = \"s\"\n";
    let err = catalog
        .load_str(
            Path::new("mine.toml"),
            bad_domain,
            tetherscope_classify::RuleOrigin::User("mine.toml".into()),
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("mine.toml:3: invalid domain pattern"),
        "{err}"
    );

    let syntax = "[[rule]\nname = 1\n";
    let err = catalog
        .load_str(
            Path::new("s.toml"),
            syntax,
            tetherscope_classify::RuleOrigin::User("s.toml".into()),
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("s.toml:1:"), "{err}");

    let unknown_key = "[[rule]]\nname = \"x\"\nfoo = 1\n";
    let err = catalog
        .load_str(
            Path::new("k.toml"),
            unknown_key,
            tetherscope_classify::RuleOrigin::User("k.toml".into()),
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("k.toml:") && err.contains("foo"), "{err}");

    let missing = catalog
        .load_file(Path::new("/nonexistent/catalog.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.starts_with("/nonexistent/catalog.toml: "),
        "{missing}"
    );
}

#[test]
fn imported_lists_tag_flows_unexpected() {
    let mut catalog = Catalog::builtin();
    let stats = catalog.import_list_str(
        Path::new("trackers.txt"),
        "0.0.0.0 tracker.example.com\n||ads.example.net^\nmetrics.example.org\n||x.example/path^\n",
        Purpose::Tracking,
        ListFormat::Auto,
    );
    assert_eq!((stats.domains, stats.skipped), (3, 1));
    for name in [
        "beacon.tracker.example.com",
        "ads.example.net",
        "metrics.example.org",
    ] {
        let c = catalog.classify(&facts(&[name], 443));
        assert_eq!(
            (c.purpose, c.verdict),
            (Purpose::Tracking, Verdict::Unexpected),
            "{name}"
        );
        assert_eq!(c.rule.unwrap().name, "list:trackers");
    }
    // A list entry cannot hijack a more specific catalog rule...
    catalog.import_list_str(
        Path::new("broad.txt"),
        "google.com\n",
        Purpose::Advertising,
        ListFormat::Domains,
    );
    assert_eq!(
        catalog
            .classify(&facts(&["mtalk.google.com"], 5228))
            .purpose,
        Purpose::Push
    );
    // ...nor any catalog rule: the catch-all google.com still answers.
    assert_eq!(
        catalog.classify(&facts(&["maps.google.com"], 443)).purpose,
        Purpose::GoogleServices
    );
    // A list entry more specific than a catalog rule loses to it as well,
    // and says which list it came from where it answers.
    catalog.import_list_str(
        Path::new("easyprivacy.txt"),
        "[Adblock Plus 2.0]\n! Title: EasyPrivacy\n||region1.app-measurement.com^\n||beacon.example.org^$third-party\n",
        Purpose::Tracking,
        ListFormat::Adblock,
    );
    let c = catalog.classify(&facts(&["region1.app-measurement.com"], 443));
    assert_eq!(c.purpose, Purpose::Analytics);
    let c = catalog.classify(&facts(&["beacon.example.org"], 443));
    assert_eq!(c.purpose, Purpose::Tracking);
    assert_eq!(c.rule.unwrap().name, "list:easyprivacy");
    assert!(c.rule.unwrap().description.contains("EasyPrivacy"));
    let listed = catalog.lists().last().unwrap();
    assert_eq!(
        (listed.title.as_str(), listed.stats.domains, listed.default),
        ("EasyPrivacy", 2, false)
    );
}

#[test]
fn default_lists_load_from_their_directory_and_name_themselves() {
    let dir = std::env::temp_dir().join(format!("ts-default-lists-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("easyprivacy.txt"),
        "[Adblock Plus 1.1]\n! Title: EasyPrivacy\n||tracker.example^\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("easylist.txt"),
        "[Adblock Plus 2.0]\n! Title: EasyList\n||ads.example^\n##.banner\n",
    )
    .unwrap();
    let mut catalog = Catalog::builtin();
    let loaded = catalog.load_default_lists_from(&dir);
    assert_eq!(loaded.len(), 2);
    assert!(loaded.iter().all(|(_, r)| r.is_ok()));
    let lists = catalog.lists();
    assert_eq!(
        lists
            .iter()
            .map(|l| (l.title.as_str(), l.purpose, l.default))
            .collect::<Vec<_>>(),
        [
            ("EasyPrivacy", Purpose::Tracking, true),
            ("EasyList", Purpose::Advertising, true)
        ]
    );
    let date = lists[0].date.as_deref().unwrap();
    assert!(date.len() == 10 && date.starts_with("20"), "{date}");
    assert_eq!(
        catalog.classify(&facts(&["ads.example"], 443)).purpose,
        Purpose::Advertising
    );
    assert_eq!(
        tetherscope_classify::find_default_list_dir(&["/nonexistent", dir.to_str().unwrap()]),
        Some(dir.as_path())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
