//! The built-in catalog against what stock phones really contact.
//!
//! `fixtures/endpoints.tsv` lists endpoints that public sources (Google's
//! Android Enterprise network requirements, Leith's Pixel measurements,
//! GrapheneOS's default connections, Liu/Patras/Leith's OEM study, /e/OS
//! and microG docs, SDK documentation) say Android phones contact, with the
//! purpose the source gives. Every rule's own `examples` are held to it too.

use tetherscope_classify::{Catalog, FlowFacts, Purpose, RuleOrigin, Transport};

fn tls<'a>(names: &'a [&'a str]) -> FlowFacts<'a> {
    FlowFacts {
        transport: Transport::Tcp,
        server_port: Some(443),
        server_is_local: false,
        app: Some("tls"),
        names,
        http_path: None,
    }
}

fn endpoints() -> Vec<(String, Purpose, String)> {
    include_str!("fixtures/endpoints.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            let (name, purpose, source) = (f.next().unwrap(), f.next(), f.next());
            let purpose = purpose
                .unwrap_or_else(|| panic!("{name}: no purpose"))
                .parse()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let source = source.unwrap_or_else(|| panic!("{name}: no source"));
            assert!(!source.trim().is_empty(), "{name}: empty source");
            (name.to_owned(), purpose, source.to_owned())
        })
        .collect()
}

/// At least 90% of the endpoints get the purpose their source gives, none a
/// different one; prints the share.
#[test]
fn stock_phone_endpoints_get_their_sources_purpose() {
    let catalog = Catalog::builtin();
    let list = endpoints();
    assert!(list.len() >= 100, "the evaluation list shrank");
    let (mut right, mut unknown, mut wrong) = (0, Vec::new(), Vec::new());
    for (name, want, source) in &list {
        let names = [name.as_str()];
        let got = catalog.classify(&tls(&names)).purpose;
        if got == *want {
            right += 1;
        } else if got == Purpose::Unknown {
            unknown.push(name.as_str());
        } else {
            wrong.push(format!("{name}: {got}, but {source} says {want}"));
        }
    }
    let share = right as f64 / list.len() as f64;
    println!(
        "endpoints: {right}/{} right ({:.1}%), {} unknown {unknown:?}, {} wrong",
        list.len(),
        share * 100.0,
        unknown.len(),
        wrong.len()
    );
    assert!(wrong.is_empty(), "wrong purposes:\n{}", wrong.join("\n"));
    assert!(share >= 0.9, "only {:.1}% right", share * 100.0);
}

/// Every built-in rule answers for the names its source mentions, and for
/// its own plain domains, with its own purpose.
#[test]
fn every_rule_answers_for_its_examples() {
    let catalog = Catalog::builtin();
    let mut checked = 0;
    for rule in catalog.rules() {
        assert_eq!(rule.origin, RuleOrigin::Builtin);
        assert!(
            !rule.source.is_empty() && !rule.description.is_empty(),
            "{}: no source",
            rule.name
        );
        let constrained = rule.http_path_prefix.is_some() || rule.app.is_some();
        let plain = rule
            .domains
            .iter()
            .filter(|_| !constrained)
            .map(|d| d.trim_start_matches('=').replace("*.", "a."));
        for name in rule.examples.iter().cloned().chain(plain) {
            let names = [name.as_str()];
            let mut facts = tls(&names);
            if let Some(&port) = rule.ports.first() {
                facts.server_port = Some(port);
            }
            let c = catalog.classify(&facts);
            let got = c.rule.map(|r| r.name.as_str());
            // Another rule may answer for a more specific name, but never
            // with another purpose.
            assert_eq!(
                c.purpose, rule.purpose,
                "{name}: rule {:?} answers, not {}",
                got, rule.name
            );
            checked += 1;
        }
    }
    assert!(checked > 300, "only {checked} names checked");
}

/// Vendor profiles expect their vendor's own services and nobody else's.
#[test]
fn vendor_profiles_expect_their_vendors_services() {
    use tetherscope_classify::Verdict;
    let mut catalog = Catalog::builtin();
    let cases = [
        (
            "samsung",
            "dc.di.atlas.samsung.com",
            "tracking.intl.miui.com",
        ),
        (
            "xiaomi",
            "data.mistat.intl.xiaomi.com",
            "metrics1.data.hicloud.com",
        ),
        (
            "huawei",
            "metrics1.data.hicloud.com",
            "ifota.realmemobile.com",
        ),
        ("realme", "ifota.realmemobile.com", "moto-cds.svcmot.com"),
        ("oneplus", "open.oneplus.net", "gos-api.gos-gsp.io"),
        ("motorola", "moto-cds.svcmot.com", "dc.di.atlas.samsung.com"),
        ("pixel", "ota.googlezip.net", "config.samsungads.com"),
        (
            "grapheneos",
            "releases.grapheneos.org",
            "stats.lineageos.org",
        ),
        ("lineageos", "stats.lineageos.org", "ota.ecloud.global"),
        ("e-os", "ota.ecloud.global", "releases.grapheneos.org"),
    ];
    for (profile, own, other) in cases {
        catalog.set_profile(profile).unwrap();
        let verdict = |name: &str| catalog.classify(&tls(&[name])).verdict;
        assert_eq!(verdict(own), Verdict::Expected, "{profile}: {own}");
        assert_eq!(verdict(other), Verdict::Unexpected, "{profile}: {other}");
        // Every vendor profile builds on a base that expects Android time.
        assert_eq!(verdict("time.android.com"), Verdict::Expected, "{profile}");
        // Third-party SDK trackers are never expected.
        assert_eq!(
            verdict("app-measurement.com"),
            Verdict::Unexpected,
            "{profile}"
        );
    }
    catalog.set_profile("stock-android").unwrap();
    assert_eq!(
        catalog.classify(&tls(&["accounts.google.com"])).verdict,
        Verdict::Expected
    );
    assert_eq!(
        catalog.classify(&tls(&["dc.di.atlas.samsung.com"])).verdict,
        Verdict::Unexpected
    );
}
