//! `tetherscope read` on small committed fixtures and bad input.

use std::process::Command;

use crate::common;

#[test]
fn not_a_capture_is_one_line_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("tetherscope-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notes.pcap");
    std::fs::write(&path, b"these are not packets\n").unwrap();
    let out = Command::new(common::bin())
        .args(["read"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a capture file"), "{err}");
    let missing = Command::new(common::bin())
        .args(["read", "/nonexistent/x.pcap"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

fn flow_to<'a>(flows: &'a [serde_json::Value], server: &str, port: u64) -> &'a serde_json::Value {
    flows
        .iter()
        .find(|f| f["server_ip"] == server && f["server_port"] == port)
        .unwrap_or_else(|| panic!("no flow to {server}:{port}"))
}

#[test]
fn seed_fixture_names_flows_by_sni_host_and_dns_chain() {
    let out = common::read_jsonl(&common::fixture("seed-domains.pcap"), &[]);
    assert!(out.status.success());
    let flows = common::records(&out.stdout);
    assert_eq!(flows.len(), 14);

    // The study's CNAME chain names the SNI-less connection to the CDN.
    let xtra_tls = flow_to(&flows, "198.51.100.102", 443);
    assert_eq!(xtra_tls["domain"], "xtrapath3.izatcloud.net");
    assert_eq!(xtra_tls["name_source"], "dns");
    assert_eq!(
        xtra_tls["cname_chain"],
        serde_json::json!([
            "xtrapath3.qcomgeo2.com",
            "xp3.gpsonextra.net",
            "d3nj9ptoklgw8o.cloudfront.net"
        ])
    );
    assert_eq!(xtra_tls["sni"], serde_json::Value::Null);
    assert_eq!(xtra_tls["client_mac"], "02:00:5e:00:01:82");

    // The plain-HTTP XTRA download: Host wins, and it is cleartext.
    let xtra_http = flow_to(&flows, "198.51.100.26", 80);
    assert_eq!(xtra_http["name_source"], "http_host");
    assert_eq!(xtra_http["http_path"], "/xtra3grc.bin");
    assert_eq!(xtra_http["cleartext"], true);
    assert_eq!(xtra_http["tcp_state"], "closed");

    let push = flow_to(&flows, "192.0.2.30", 5228);
    assert_eq!(
        (push["sni"].as_str(), push["name_source"].as_str()),
        (Some("mtalk.google.com"), Some("tls_sni"))
    );
    assert_eq!(push["alpn"], serde_json::json!(["h2", "http/1.1"]));
    assert_eq!(push["cleartext"], false);

    // DNS flows carry the question, not a domain.
    let dns = flows
        .iter()
        .find(|f| f["dns_query"] == "mtalk.google.com")
        .unwrap();
    assert_eq!(
        (dns["domain"].is_null(), dns["app_protocol"].as_str()),
        (true, Some("dns"))
    );

    // NTP is named from the DNS cache.
    let ntp = flow_to(&flows, "192.0.2.40", 123);
    assert_eq!(
        (ntp["domain"].as_str(), ntp["app_protocol"].as_str()),
        (Some("time.android.com"), Some("ntp"))
    );

    // A direct-IP connection is never given a guessed name.
    let direct = flow_to(&flows, "203.0.113.50", 443);
    assert!(direct["domain"].is_null(), "{direct}");
    // SYN, ACK, ClientHello, FIN, ACK from the phone.
    assert_eq!(direct["packets_up"], 5);
}

#[test]
fn cut_short_capture_reports_what_was_read_and_warns() {
    let bytes = std::fs::read(common::fixture("seed-domains.pcap")).unwrap();
    let dir = std::env::temp_dir().join(format!("tetherscope-cut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cut.pcap");
    std::fs::write(&path, &bytes[..bytes.len() - 30]).unwrap();
    let out = common::read_jsonl(&path, &[]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning") && err.contains("cut short"),
        "{err}"
    );
    assert_eq!(common::records(&out.stdout).len(), 14);
}

#[test]
fn seed_fixture_purposes_and_verdicts() {
    let out = common::read_jsonl(&common::fixture("seed-domains.pcap"), &[]);
    let flows = common::records(&out.stdout);
    let check = |server: &str, port: u64, purpose: &str, verdict: &str, site: &str| {
        let f = flow_to(&flows, server, port);
        assert_eq!(
            (
                f["purpose"].as_str(),
                f["verdict"].as_str(),
                f["site"].as_str()
            ),
            (Some(purpose), Some(verdict), Some(site)),
            "{f}"
        );
    };
    // The CNAME-chain case: the CDN flow is Qualcomm's GNSS assistance.
    check(
        "198.51.100.102",
        443,
        "gnss-assistance",
        "expected",
        "Qualcomm XTRA",
    );
    check(
        "198.51.100.26",
        80,
        "gnss-assistance",
        "expected",
        "Qualcomm XTRA",
    );
    check(
        "192.0.2.10",
        443,
        "os-update",
        "expected",
        "CalyxOS updates",
    );
    check(
        "192.0.2.20",
        80,
        "connectivity-check",
        "expected",
        "Android connectivity check",
    );
    check(
        "192.0.2.30",
        5228,
        "push",
        "expected",
        "Google push (microG)",
    );
    check("192.0.2.40", 123, "time-sync", "expected", "Android time");
    check("10.42.0.1", 53, "dns", "expected", "Hotspot DNS");
    // Not documented: unexpected, labelled by registrable domain.
    check("203.0.113.7", 443, "unknown", "unexpected", "example.com");
    // Direct IP: unexpected and unnamed.
    check("203.0.113.50", 443, "unknown", "unexpected", "unnamed");
    // The XTRA download is cleartext, and documented as such.
    let xtra = flow_to(&flows, "198.51.100.26", 80);
    assert_eq!(
        (
            xtra["cleartext"].as_bool(),
            xtra["cleartext_known"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(xtra["owner"], "Qualcomm");
    assert_eq!(xtra["rule"], "qualcomm-xtra");
}

#[test]
fn user_catalog_and_list_turn_a_flow_into_tracking() {
    let dir = std::env::temp_dir().join(format!("tetherscope-cat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("trackers.txt"), "0.0.0.0 tracker.example.com\n").unwrap();
    let catalog = dir.join("mine.toml");
    std::fs::write(
        &catalog,
        "[[list]]\npath = \"trackers.txt\"\npurpose = \"tracking\"\n",
    )
    .unwrap();
    let out = common::read_jsonl(
        &common::fixture("seed-domains.pcap"),
        &["--catalog", catalog.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flows = common::records(&out.stdout);
    let f = flow_to(&flows, "203.0.113.7", 443);
    assert_eq!(
        (f["purpose"].as_str(), f["verdict"].as_str()),
        (Some("tracking"), Some("unexpected"))
    );

    // A bad catalog: file:line: problem, exit 64.
    std::fs::write(&catalog, "[[rule]]\nname = \"x\"\ndomains = [\"a.example\"]\npurpose = \"nope\"\nowner = \"o\"\ndescription = \"d\"\nsource = \"s\"\n").unwrap();
    let out = common::read_jsonl(
        &common::fixture("seed-domains.pcap"),
        &["--catalog", catalog.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mine.toml:4: unknown purpose \"nope\""),
        "{err}"
    );
    let check = Command::new(common::bin())
        .args(["catalog", "check"])
        .arg(&catalog)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(64));
}

#[test]
fn catalog_explain_names_the_rule() {
    let out = Command::new(common::bin())
        .args(["catalog", "explain", "xtrapath1.izatcloud.net"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("gnss-assistance")
            && text.contains("qualcomm-xtra")
            && text.contains("expected"),
        "{text}"
    );
}

#[test]
fn config_and_catalog_faults_are_one_clear_error_and_exit_64() {
    let dir = std::env::temp_dir().join(format!("tetherscope-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    };
    let cases = [
        (
            file("type.toml", b"max_flows = \"lots\"\n"),
            "type.toml:1: invalid type",
        ),
        (
            file("syntax.toml", b"interface = \n"),
            "syntax.toml:1: invalid string",
        ),
        (
            file("key.toml", b"colour = \"blue\"\n"),
            "unknown field `colour`",
        ),
        (
            file("binary.toml", b"\xff\xfe\x00junk"),
            "did not contain valid UTF-8",
        ),
        (
            dir.join("missing.toml").display().to_string(),
            "No such file",
        ),
        (dir.display().to_string(), "a directory, not a regular file"),
    ];
    for (path, says) in &cases {
        let out = Command::new(common::bin())
            .args([
                "run",
                "--interface",
                "lo",
                "--listen",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "config {path}: {err}");
        assert!(err.starts_with(&format!("tetherscope: {path}")), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(says), "config {path}: {err}");
        // The same files as catalogs: refused before any packet is read.
        let out = common::read_jsonl(&common::fixture("seed-domains.pcap"), &["--catalog", path]);
        assert_eq!(out.status.code(), Some(64), "catalog {path}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "catalog {path}: {err}");
        assert!(out.stdout.is_empty(), "catalog {path}: flows printed");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn patched_libpcap_files_read_the_same_flows_as_the_standard_one() {
    let original = common::fixture("seed-domains.pcap");
    let expected = common::records(&common::read_jsonl(&original, &[]).stdout);
    assert_eq!(expected.len(), 14);
    let bytes = std::fs::read(&original).unwrap();
    let dir = std::env::temp_dir().join(format!("tetherscope-layouts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    use tetherscope_testkit::pcap::{with_longer_record_headers, MAGIC_LE, PATCHED_MAGIC_LE};
    for (name, magic, extra) in [
        ("kuznetsov", PATCHED_MAGIC_LE, 8),
        ("suse63", PATCHED_MAGIC_LE, 12),
        ("redhat61", MAGIC_LE, 8),
        ("nokia", MAGIC_LE, 4),
    ] {
        let path = dir.join(format!("{name}.pcap"));
        std::fs::write(&path, with_longer_record_headers(&bytes, magic, extra)).unwrap();
        let out = common::read_jsonl(&path, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {err}");
        assert_eq!(common::records(&out.stdout), expected, "{name}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A stdout whose reader is already gone, as `read x.pcap | head -1` leaves
/// it once `head` has its line: the first write fails with a broken pipe.
fn closed_pipe() -> std::process::Stdio {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into the array it is given;
    // each is then owned exactly once (the reader closed here, the writer
    // by the `Stdio`).
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0, "pipe");
        libc::close(fds[0]);
        std::process::Stdio::from(std::os::fd::OwnedFd::from_raw_fd(fds[1]))
    }
}

/// A reader that stops early is no error: exit 0 and nothing on stderr, as
/// ripgrep does (once: "Broken pipe" and exit 2, or a panic for `catalog`).
#[test]
fn a_closed_pipe_ends_quietly_with_success() {
    let capture = common::fixture("seed-domains.pcap");
    let capture = capture.to_str().unwrap();
    for args in [
        vec!["read", "--format", "jsonl", capture],
        vec!["read", "--format", "table", "--quiet", capture],
        vec!["catalog", "list"],
        vec!["catalog", "explain", "xtrapath1.izatcloud.net"],
    ] {
        let out = Command::new(common::bin())
            .args(&args)
            .stdout(closed_pipe())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("Broken pipe") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    // Without --quiet `read` says nothing more either: it stopped.
    let out = Command::new(common::bin())
        .args(["read", "--format", "jsonl", capture])
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn catalog_list_names_the_default_lists_and_the_flag_turns_them_off() {
    let list = |extra: &[&str]| {
        let out = Command::new(common::bin())
            .args(["catalog", "list"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let off = list(&["--no-default-lists"]);
    assert!(
        off.contains("Lists (a catalog rule beats a list entry):\n  none loaded"),
        "{off}"
    );
    // Every purpose is listed with its meaning.
    assert!(
        off.contains("telemetry") && off.contains("caller-id"),
        "{off}"
    );
    let on = list(&[]);
    match tetherscope_classify::find_default_list_dir(tetherscope_classify::DEFAULT_LIST_DIRS) {
        // scripts/setup.sh installs them; a machine without them loads none.
        None => assert!(on.contains("none loaded"), "{on}"),
        Some(dir) => {
            for (title, file, purpose) in [
                ("EasyPrivacy", "easyprivacy.txt", "tracking"),
                ("EasyList", "easylist.txt", "advertising"),
            ] {
                let line = on
                    .lines()
                    .find(|l| l.trim_start().starts_with(title) && l.contains(file))
                    .unwrap_or_else(|| panic!("{title} not named:\n{on}"));
                assert!(
                    line.contains(purpose) && line.contains("(default)"),
                    "{line}"
                );
                assert!(
                    line.contains(&dir.join(file).display().to_string()),
                    "{line}"
                );
                assert!(line.contains(" dated 20"), "{line}");
            }
        }
    }
}

#[test]
fn stock_phone_mix_has_a_purpose_for_nearly_every_byte() {
    let out = common::read_jsonl(&common::fixture("stock-phone-mix.pcap"), &[]);
    assert!(out.status.success());
    let flows: Vec<_> = common::records(&out.stdout)
        .into_iter()
        .filter(|r| r["server_port"] == 443)
        .collect();
    assert_eq!(flows.len(), 17);
    for f in &flows {
        let named = f["domain"].is_string();
        assert_eq!(
            f["purpose"] == "unknown",
            !named,
            "{}: {}",
            f["domain"],
            f["purpose"]
        );
    }
    let purpose = |d: &str| {
        flows
            .iter()
            .find(|f| f["domain"] == d)
            .map(|f| f["purpose"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        purpose("dc.di.atlas.samsung.com").as_deref(),
        Some("telemetry")
    );
    assert_eq!(purpose("app-measurement.com").as_deref(), Some("analytics"));
    assert_eq!(
        purpose("gllto.glpals.com").as_deref(),
        Some("gnss-assistance")
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let share: f64 = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("purpose unknown for ")?
                .strip_suffix("% of bytes")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no unknown-bytes share in:\n{stderr}"));
    assert!(share > 0.0 && share < 10.0, "{share}% of bytes unknown");
}

/// The device lines `read` prints after its summary, as JSON.
fn device_lines(stderr: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("device "))
        .map(|l| serde_json::from_str(l).expect("a device line is JSON"))
        .collect()
}

#[test]
fn device_identity_shows_the_os_from_dhcp_and_the_model_from_mdns() {
    let out = common::read_jsonl(&common::fixture("device-identity.pcap"), &[]);
    assert!(out.status.success());
    let devices = device_lines(&out.stderr);
    let phone = devices
        .iter()
        .find(|d| d["mac"] == "02:00:5e:00:01:82")
        .unwrap_or_else(|| panic!("no phone in {devices:?}"));
    // The forged request from the second station renamed no one.
    assert_eq!(phone["device"], "pixel-7a");
    let id = &phone["identity"];
    assert_eq!(id["os"], "Android 14");
    assert_eq!(id["os_family"], "Android");
    assert_eq!(id["vendor_class"], "android-dhcp-14");
    assert_eq!(id["vendor"], serde_json::Value::Null, "randomised MAC");
    assert_eq!(id["mdns_host"], "Pixel-7a");
    assert_eq!(id["model"], "Pixel 7a");
    assert!(
        !devices.iter().any(|d| d["identity"]["os"] == "Windows"),
        "the forged request's vendor class was kept: {devices:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dhcp_client_mismatch=1"), "{stderr}");
    // The flows are read as before.
    let flows = common::records(&out.stdout);
    assert!(
        flows.iter().any(|f| f["sni"] == "www.example.com"),
        "{flows:?}"
    );
}
