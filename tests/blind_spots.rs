//! `tetherscope read` on the blind-spots fixture: every unnamed flow is
//! given its reason, and the real-ECH flow is told apart from GREASE.

use crate::common;

#[test]
fn read_summary_lists_unnamed_flows_by_reason() {
    let out = common::read_jsonl(&common::fixture("blind-spots.pcap"), &[]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("unnamed flows by reason:"))
        .unwrap_or_else(|| panic!("no blind-spot line in {err}"));
    for reason in [
        "ech=1 ",
        "encrypted_dns=1 ",
        "no_dns_seen=1 ",
        "no_handshake_seen=1 ",
        "malformed=1 ",
    ] {
        assert!(line.contains(reason), "{reason} missing from {line}");
    }
    let flows = common::records(&out.stdout);
    let ech = flows
        .iter()
        .find(|f| f["server_ip"] == "203.0.113.99")
        .expect("the real-ECH flow");
    assert_eq!(ech["ech"], "real");
    assert_eq!(ech["sni"], "cover.example.net");
    assert!(ech["domain"].is_null(), "{ech}");
    // A ClientHello without the extension says nothing about ECH.
    let plain = flows
        .iter()
        .find(|f| f["server_ip"] == "203.0.113.50")
        .unwrap();
    assert!(plain["ech"].is_null(), "{plain}");
}
