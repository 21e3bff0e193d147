//! `tetherscope report` writing its file: never through a link planted at
//! its temporary name, never over its own capture.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tetherscope-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `report ARGS` with `dir` as working directory.
fn report(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(common::bin())
        .arg("report")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `report x.html` (its default output is its input) and `-o` naming the
/// capture, also through a link: refused with one line and exit 64, the
/// capture untouched.
#[test]
fn report_refuses_to_overwrite_its_own_capture() {
    let dir = scratch("self");
    let capture = std::fs::read(common::fixture("seed-domains.pcap")).unwrap();
    std::fs::write(dir.join("x.html"), &capture).unwrap();
    std::fs::write(dir.join("y.pcap"), &capture).unwrap();
    std::os::unix::fs::symlink("y.pcap", dir.join("link.html")).unwrap();
    for args in [
        &["x.html"][..],
        &["--quiet", "x.html"],
        &["y.pcap", "-o", "y.pcap"],
        &["y.pcap", "-o", "./link.html"],
    ] {
        let out = report(&dir, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("would overwrite its own capture"), "{err}");
    }
    assert_eq!(std::fs::read(dir.join("x.html")).unwrap(), capture);
    assert_eq!(std::fs::read(dir.join("y.pcap")).unwrap(), capture);
    // Another output is fine.
    let out = report(&dir, &["--quiet", "x.html", "-o", "x-report.html"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// In a directory others can write, a link planted at every temporary
/// name the report could have used before (`OUT.tmpPID`; the report runs
/// as PID 1 of a PID namespace of its own, so the PIDs are few) takes
/// nothing: the link's target is untouched and the report lands at OUT.
#[test]
fn report_never_writes_through_a_planted_link() {
    if crate::common::sim::skip_without_root("report-symlink") {
        return;
    }
    let dir = scratch("link");
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let out_file = dir.join("shared/out.html");
    std::fs::create_dir_all(out_file.parent().unwrap()).unwrap();
    for pid in 1..=64 {
        let mut name = out_file.as_os_str().to_owned();
        name.push(format!(".tmp{pid}"));
        std::os::unix::fs::symlink(&victim, name).unwrap();
    }
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child"])
        .arg(common::bin())
        .args(["report", "--quiet", "-o"])
        .arg(&out_file)
        .arg(common::fixture("seed-domains.pcap"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let meta = std::fs::symlink_metadata(&out_file).unwrap();
    assert!(meta.is_file(), "the report is a file of its own");
    let html = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        html.starts_with("<!doctype html>"),
        "{}",
        &html[..40.min(html.len())]
    );
    // Nothing temporary is left beside it but the planted links.
    let left: Vec<String> = std::fs::read_dir(out_file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("out.html.tmp") && n != "out.html")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
