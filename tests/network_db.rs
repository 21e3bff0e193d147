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
