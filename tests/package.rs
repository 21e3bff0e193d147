//! The Debian package, built as users build it (`cargo deb --strip`): its
//! file list and modes, the conffiles, the systemd unit, maintainer scripts
//! that pass shellcheck, and dependencies Debian 12 satisfies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A tool's output; a missing tool fails under `CI=true` and is reported
/// loudly otherwise (`scripts/setup.sh --test` installs them all).
fn run(program: &str, args: &[&str]) -> Option<std::process::Output> {
    match Command::new(program).args(args).output() {
        Ok(out) => Some(out),
        Err(e) => {
            let msg = format!("package test NOT RUN: {program} missing ({e}); ./scripts/setup.sh --test installs it");
            eprintln!("\n!!! {msg} !!!\n");
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
            None
        }
    }
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the package into a fresh directory. In a release test run the
/// binary under test is the one packaged (built already: rebuilding it here
/// would replace it under the other tests); otherwise cargo-deb builds it.
fn build_package(out_dir: &Path) -> Option<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let version = run(&cargo, &["deb", "--version"])?;
    if !version.status.success() {
        let msg = "package test NOT RUN: cargo-deb missing; ./scripts/setup.sh --test installs it";
        eprintln!("\n!!! {msg} !!!\n");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        return None;
    }
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root())
        .args(["deb", "--strip", "--output"])
        .arg(out_dir);
    if !cfg!(debug_assertions) {
        cmd.arg("--no-build");
    }
    let out = cmd.output().expect("cargo deb");
    assert!(
        out.status.success(),
        "cargo deb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");
    Some(deb)
}

/// `path -> mode` of the package's regular files (`dpkg-deb -c`).
fn file_list(deb: &Path) -> BTreeMap<String, String> {
    let out = Command::new("dpkg-deb")
        .arg("-c")
        .arg(deb)
        .output()
        .unwrap();
    assert!(out.status.success());
    text(&out)
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            let path = l.split_whitespace().last()?.trim_start_matches('.');
            Some((path.to_owned(), l[..10].to_owned()))
        })
        .collect()
}

/// Whether some version Debian's archive (as apt sees it) offers of
/// `package` satisfies `op version` (`dpkg --compare-versions`).
fn debian_satisfies(package: &str, constraint: Option<(&str, &str)>) -> bool {
    let madison = Command::new("apt-cache")
        .args(["madison", package])
        .output()
        .unwrap();
    text(&madison)
        .lines()
        .filter_map(|l| l.split('|').nth(1).map(str::trim))
        .any(|available| match constraint {
            None => true,
            Some((op, wanted)) => Command::new("dpkg")
                .args(["--compare-versions", available, op, wanted])
                .status()
                .is_ok_and(|s| s.success()),
        })
}

#[test]
fn debian_package_contents_scripts_and_dependencies() {
    let work = std::env::temp_dir().join(format!("tetherscope-deb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let Some(deb) = build_package(&work) else {
        return;
    };

    // File list and modes: exactly what Cargo.toml's assets and the unit give.
    let files = file_list(&deb);
    let expected = [
        ("/usr/bin/tetherscope", "-rwxr-xr-x"),
        ("/usr/bin/tetherscope-hotspot", "-rwxr-xr-x"),
        ("/etc/tetherscope/tetherscope.toml", "-rw-r-----"),
        (
            "/etc/NetworkManager/dispatcher.d/90-tetherscope",
            "-rwxr-xr-x",
        ),
        ("/usr/lib/systemd/system/tetherscope.service", "-rw-r--r--"),
        ("/usr/share/doc/tetherscope/README.md", "-rw-r--r--"),
        ("/usr/share/doc/tetherscope/copyright", "-rw-r--r--"),
        ("/usr/share/tetherscope/compose.yaml", "-rw-r--r--"),
        ("/usr/share/tetherscope/prometheus/agent.yml", "-rw-r--r--"),
        (
            "/usr/share/tetherscope/prometheus/central.yml",
            "-rw-r--r--",
        ),
        (
            "/usr/share/tetherscope/prometheus/prometheus.yml",
            "-rw-r--r--",
        ),
        (
            "/usr/share/tetherscope/prometheus/rules/tetherscope.yml",
            "-rw-r--r--",
        ),
        (
            "/usr/share/tetherscope/prometheus/tests/tetherscope.test.yml",
            "-rw-r--r--",
        ),
        (
            "/usr/share/tetherscope/alertmanager/alertmanager.yml",
            "-rw-r--r--",
        ),
        ("/usr/share/tetherscope/clickhouse/flows.sql", "-rw-r--r--"),
        (
            "/usr/share/tetherscope/clickhouse/retention.sh",
            "-rwxr-xr-x",
        ),
        (
            "/usr/share/tetherscope/grafana/provisioning/dashboards/tetherscope.yaml",
            "-rw-r--r--",
        ),
        (
            "/usr/share/tetherscope/grafana/provisioning/datasources/tetherscope.yaml",
            "-rw-r--r--",
        ),
    ];
    for (path, mode) in expected {
        assert_eq!(
            files.get(path).map(String::as_str),
            Some(mode),
            "{path} in {files:#?}"
        );
    }
    let dashboards: Vec<_> = std::fs::read_dir(root().join("grafana/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    for d in &dashboards {
        let path = format!("/usr/share/tetherscope/grafana/dashboards/{d}");
        assert!(files.contains_key(&path), "{path} missing");
    }
    assert_eq!(files.len(), expected.len() + dashboards.len(), "{files:#?}");

    // Unpacked: the stripped binary runs, the unit is the shipped one.
    let tree = work.join("tree");
    let control = work.join("control");
    for (flag, dir) in [("-x", &tree), ("-e", &control)] {
        let st = Command::new("dpkg-deb")
            .arg(flag)
            .arg(&deb)
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let bin = tree.join("usr/bin/tetherscope");
    let size = std::fs::metadata(&bin).unwrap().len();
    assert!(size < 12 << 20, "binary of {size} bytes: not stripped?");
    if let Some(sections) = run("readelf", &["-S", bin.to_str().unwrap()]) {
        assert!(
            !text(&sections).contains(".debug_info"),
            "debug info left in the binary"
        );
    }
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(text(&version).starts_with("tetherscope "), "{version:?}");
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/lib/systemd/system/tetherscope.service")).unwrap(),
        std::fs::read_to_string(root().join("deploy/systemd/tetherscope.service")).unwrap()
    );

    // Conffiles: the configuration and the dispatcher script, which users may
    // edit and upgrades must not overwrite silently.
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    let mut conffiles: Vec<&str> = conffiles.lines().collect();
    conffiles.sort_unstable();
    assert_eq!(
        conffiles,
        [
            "/etc/NetworkManager/dispatcher.d/90-tetherscope",
            "/etc/tetherscope/tetherscope.toml"
        ]
    );

    // Maintainer scripts (ours plus cargo-deb's systemd snippets) and the
    // shipped shell scripts pass shellcheck; the unit is neither enabled nor
    // started by installing.
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("adduser --system"), "{postinst}");
    assert!(!postinst.contains("#DEBHELPER#"), "{postinst}");
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");
    let mut scripts: Vec<PathBuf> = ["postinst", "postrm", "prerm"]
        .iter()
        .map(|s| control.join(s))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(scripts.len(), 3, "maintainer scripts: {scripts:?}");
    scripts.push(tree.join("etc/NetworkManager/dispatcher.d/90-tetherscope"));
    scripts.push(tree.join("usr/bin/tetherscope-hotspot"));
    let mut args = vec!["--shell=sh", "--severity=style"];
    args.extend(scripts.iter().map(|p| p.to_str().unwrap()));
    if let Some(out) = run("shellcheck", &args) {
        assert!(
            out.status.success(),
            "shellcheck:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    // Dependencies: each relation satisfiable from Debian 12's archive.
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    if !release.contains("VERSION_ID=\"12\"") || !release.contains("ID=debian") {
        let msg = "package dependency check NOT RUN: needs apt on Debian 12";
        eprintln!("\n!!! {msg} !!!\n");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        return;
    }
    for field in ["Depends", "Recommends"] {
        let out = Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .arg(field)
            .output()
            .unwrap();
        let relations = text(&out);
        assert!(!relations.trim().is_empty() || field != "Depends");
        for relation in relations.trim().split(',').filter(|r| !r.trim().is_empty()) {
            let satisfied = relation.split('|').any(|alt| {
                let alt = alt.trim();
                let (name, constraint) = match alt.split_once('(') {
                    Some((name, rest)) => {
                        let rest = rest.trim_end_matches(')').trim();
                        let (op, ver) = rest.split_once(' ').expect("op version");
                        (name.trim(), Some((op.trim(), ver.trim())))
                    }
                    None => (alt, None),
                };
                let op = constraint.map(|(op, v)| {
                    let op = match op {
                        ">=" => "ge",
                        "<=" => "le",
                        ">>" => "gt",
                        "<<" => "lt",
                        "=" => "eq",
                        other => panic!("relation operator {other}"),
                    };
                    (op, v)
                });
                debian_satisfies(name, op)
            });
            assert!(
                satisfied,
                "{field}: {relation} not satisfiable from Debian 12"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}
