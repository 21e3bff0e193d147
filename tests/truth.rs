//! Names against the benchmark generator's ground truth: TLS ClientHellos
//! split over two segments, QUIC v1/v2 Initials split and reordered, HTTP.
//! Every name in the truth file must be reproduced, and reading or
//! replaying the same capture again gives the same records in the same
//! order.

use std::path::PathBuf;
use std::process::Command;

use crate::common;

#[test]
fn generator_truth_is_reproduced() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let generator = std::env::var_os("TETHERSCOPE_BENCH_GENERATOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/bench/gen_phone_pcap.py"));
    let have_crypto = Command::new("python3")
        .args(["-c", "import cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    if !generator.is_file() || !have_crypto {
        let msg = format!(
            "truth test NOT RUN: need {} and python3-cryptography",
            generator.display()
        );
        eprintln!("\n!!! {msg} !!!\n");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("tetherscope-truth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pcap, truth, flows) = (
        dir.join("t.pcap"),
        dir.join("t.truth.tsv"),
        dir.join("t.jsonl"),
    );
    let gen = Command::new("python3")
        .arg(&generator)
        .arg(&pcap)
        .args([
            "--packets",
            "30000",
            "--flows",
            "400",
            "--domains",
            "300",
            "--seed",
            "7",
            "--truth",
        ])
        .arg(&truth)
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let out = common::read_jsonl(&pcap, &["--quiet"]);
    assert!(out.status.success());
    std::fs::write(&flows, &out.stdout).unwrap();
    // The same capture gives the same records in the same order every
    // time, novelty included (a fresh store each time), and the store
    // changes nothing but novelty.
    let with_state = |i: usize| {
        let store = dir.join(format!("state{i}.db"));
        let out = common::read_jsonl(&pcap, &["--quiet", "--state", store.to_str().unwrap()]);
        assert!(out.status.success());
        out.stdout
    };
    let (first, second) = (with_state(0), with_state(1));
    assert!(first == second, "two reads of one capture differ");
    let without_novelty = |stdout: &[u8]| {
        let mut records = common::records(stdout);
        for r in &mut records {
            r.as_object_mut().unwrap().remove("novelty");
        }
        records
    };
    assert!(
        without_novelty(&first) == without_novelty(&out.stdout),
        "--state changed more than novelty"
    );
    // The live path too: two replays, the same flow log.
    let logs: Vec<Vec<serde_json::Value>> = (0..2)
        .map(|i| {
            let store = dir.join(format!("replay{i}.db"));
            crate::baseline::replay(&store, &pcap, &dir.join(format!("replay{i}.jsonl")))
        })
        .collect();
    assert!(!logs[0].is_empty());
    assert!(
        logs[0] == logs[1],
        "two replays of one capture logged differently"
    );
    let check = Command::new("python3")
        .arg(root.join("bench/check_truth.py"))
        .arg(&truth)
        .arg(&flows)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    eprintln!("{report}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        check.status.success() && report.contains("(100.00%)"),
        "{report}"
    );
    assert!(
        report.contains("quic=") && report.contains("tls="),
        "{report}"
    );
}
