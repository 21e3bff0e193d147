//! The shipped deployment files: Prometheus config and rules (checked and
//! unit-tested by promtool), Alertmanager config (amtool), Grafana
//! provisioning and dashboards (structure), systemd unit, scripts, and the
//! Debian package's asset list.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a tool from Debian's packages; missing tools fail under `CI=true`
/// and are reported loudly otherwise.
fn tool(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    match Command::new(program).args(args).current_dir(dir).output() {
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
            Some(text)
        }
        Err(e) => {
            let msg = format!("{program} NOT RUN ({e}); ./scripts/setup.sh --test installs it");
            eprintln!("\n!!! {msg} !!!\n");
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
            None
        }
    }
}

#[test]
fn prometheus_config_and_rules_pass_promtool() {
    let dir = root().join("deploy/prometheus");
    for config in ["prometheus.yml", "agent.yml", "central.yml"] {
        tool("promtool", &["check", "config", config], &dir);
    }
    tool(
        "promtool",
        &["check", "rules", "rules/tetherscope.yml"],
        &dir,
    );
    if let Some(out) = tool(
        "promtool",
        &["test", "rules", "tests/tetherscope.test.yml"],
        &dir,
    ) {
        assert!(out.contains("SUCCESS"), "{out}");
    }
}

#[test]
fn alertmanager_config_passes_amtool() {
    let dir = root().join("deploy/alertmanager");
    tool("amtool", &["check-config", "alertmanager.yml"], &dir);
}

/// The uid of the provisioned Prometheus datasource.
fn datasource_uid() -> String {
    let text =
        std::fs::read_to_string(root().join("grafana/provisioning/datasources/tetherscope.yaml"))
            .unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("uid:"))
        .expect("datasource uid")
        .trim()
        .to_owned()
}

/// Every shipped dashboard, parsed.
pub fn dashboards() -> Vec<(PathBuf, Value)> {
    let mut out: Vec<(PathBuf, Value)> = std::fs::read_dir(root().join("grafana/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every PromQL expression of every panel: (dashboard uid, panel title, expr).
pub fn dashboard_queries() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (_, d) in dashboards() {
        let uid = d["uid"].as_str().unwrap_or_default().to_owned();
        for p in d["panels"].as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push((
                    uid.clone(),
                    p["title"].as_str().unwrap_or_default().to_owned(),
                    t["expr"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    }
    out
}

#[test]
fn dashboards_are_complete_and_consistent() {
    let ds = datasource_uid();
    let all = dashboards();
    let uids: HashSet<&str> = all
        .iter()
        .map(|(_, d)| d["uid"].as_str().unwrap())
        .collect();
    assert_eq!(
        uids,
        HashSet::from([
            "tetherscope-overview",
            "tetherscope-device",
            "tetherscope-health"
        ])
    );
    for (path, d) in &all {
        let name = path.display();
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{name}: title"
        );
        let vars: HashSet<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                assert_eq!(
                    v["datasource"]["uid"],
                    ds.as_str(),
                    "{name}: variable datasource"
                );
                v["name"].as_str().unwrap()
            })
            .collect();
        let panels = d["panels"].as_array().expect("panels");
        assert!(panels.len() >= 6, "{name}: {} panels", panels.len());
        let mut ids = HashSet::new();
        let mut cells = HashSet::new();
        for p in panels {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{name}: untitled panel");
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{name}: duplicate id"
            );
            assert_eq!(
                p["datasource"]["uid"],
                ds.as_str(),
                "{name}/{title}: datasource"
            );
            // Panels fit the 24-column grid and do not overlap.
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(x + w <= 24 && w > 0 && h > 0, "{name}/{title}: gridPos");
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(cells.insert((cx, cy)), "{name}/{title}: overlaps");
                }
            }
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{name}/{title}: no targets");
            let mut refs = HashSet::new();
            for t in targets {
                assert!(
                    refs.insert(t["refId"].as_str().unwrap()),
                    "{name}/{title}: refId"
                );
                assert_eq!(
                    t["datasource"]["uid"],
                    ds.as_str(),
                    "{name}/{title}: target ds"
                );
                let expr = t["expr"].as_str().unwrap_or_default();
                assert!(expr.contains("tetherscope_") || expr.contains("job=\"tetherscope\""));
                // Every $variable is Grafana's own or defined here.
                for var in expr.split('$').skip(1) {
                    let v: String = var
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        v.starts_with("__") || vars.contains(v.as_str()),
                        "{name}/{title}: undefined ${v}"
                    );
                }
            }
        }
    }
    // The device dashboard filters every query by its variable.
    let device = &all
        .iter()
        .find(|(_, d)| d["uid"] == "tetherscope-device")
        .unwrap()
        .1;
    for p in device["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            assert!(t["expr"].as_str().unwrap().contains("device=~\"$device\""));
        }
    }
    // Every dashboard has a sensor variable, all sensors by default (also
    // matching series without a sensor label, on a single laptop), and every
    // query filters by it.
    for (path, d) in &all {
        let vars = d["templating"]["list"].as_array().unwrap();
        let sensor = vars
            .iter()
            .find(|v| v["name"] == "sensor")
            .unwrap_or_else(|| panic!("{}: no sensor variable", path.display()));
        assert_eq!(sensor["includeAll"], true);
        assert_eq!(sensor["allValue"], ".*");
        assert_eq!(sensor["current"]["value"][0], "$__all");
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_default();
                assert!(
                    expr.matches("sensor=~\"$sensor\"").count()
                        >= expr.matches("tetherscope_").count(),
                    "{}: {expr}",
                    path.display()
                );
            }
        }
    }
    // Provisioning points at where compose mounts the dashboards.
    let prov =
        std::fs::read_to_string(root().join("grafana/provisioning/dashboards/tetherscope.yaml"))
            .unwrap();
    let compose = std::fs::read_to_string(root().join("deploy/compose.yaml")).unwrap();
    let path = prov
        .lines()
        .find_map(|l| l.trim().strip_prefix("path:"))
        .unwrap()
        .trim();
    assert!(compose.contains(&format!("../grafana/dashboards:{path}:ro")));
}

#[test]
fn systemd_unit_holds_only_capture_capabilities() {
    let unit = std::fs::read_to_string(root().join("deploy/systemd/tetherscope.service")).unwrap();
    for line in [
        "User=tetherscope",
        "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN",
        "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET",
        "ExecStart=/usr/bin/tetherscope run --config /etc/tetherscope/tetherscope.toml",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line}");
    }
    // systemd's own parser, where present (no running systemd needed).
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let dir = std::env::temp_dir().join(format!("tetherscope-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("tetherscope.service");
        std::fs::write(&copy, unit.replace("/usr/bin/tetherscope", "/bin/true")).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !err.contains("Unknown key"),
            "systemd-analyze verify: {err}"
        );
    }
}

#[test]
fn default_config_is_accepted_by_run() {
    // The shipped config parses: with a missing interface `run` gets past
    // the config and stops at the capture, saying so.
    let dir = std::env::temp_dir().join(format!("tetherscope-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("tetherscope.toml");
    let text = std::fs::read_to_string(root().join("deploy/tetherscope.toml"))
        .unwrap()
        .replace(
            "/var/lib/tetherscope/flows.jsonl",
            dir.join("f.jsonl").to_str().unwrap(),
        );
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(crate::common::bin())
        .args([
            "run",
            "--interface",
            "tetherscope-none0",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no interface named tetherscope-none0"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(64), "{err}");
}

#[test]
fn shell_scripts_parse() {
    for s in [
        "deploy/networkmanager/tetherscope-hotspot",
        "deploy/networkmanager/90-tetherscope",
        "deploy/debian/postinst",
        "deploy/debian/postrm",
    ] {
        let out = Command::new("sh")
            .arg("-n")
            .arg(root().join(s))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{s}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn debian_package_assets_exist() {
    let toml = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let meta = &toml[toml.find("[package.metadata.deb]").expect("deb metadata")..];
    let mut n = 0;
    for line in meta.lines().filter(|l| l.trim_start().starts_with("[\"")) {
        let src = line.trim_start().trim_start_matches("[\"");
        let src = &src[..src.find('"').unwrap()];
        if src.starts_with("target/") {
            continue;
        }
        n += 1;
        if let Some(dir) = src.strip_suffix("/*.json") {
            assert!(root().join(dir).read_dir().unwrap().count() >= 3, "{src}");
        } else {
            assert!(root().join(src).is_file(), "missing asset {src}");
        }
    }
    assert!(n >= 10, "only {n} assets");
    assert!(root().join("deploy/systemd/tetherscope.service").is_file());
}

#[test]
fn config_cannot_expose_the_exporter() {
    let dir = std::env::temp_dir().join(format!("tetherscope-listen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("tetherscope.toml");
    std::fs::write(&cfg, "listen = \"0.0.0.0:9433\"\n").unwrap();
    let out = Command::new(crate::common::bin())
        .args(["run", "--interface", "tetherscope-none0", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("not a loopback address") && err.contains("--listen 0.0.0.0:9433"),
        "{err}"
    );
}

/// A config file may set the baseline's keys (`learn_for`, `retain`,
/// `max_destinations`), and a flag given with the default's value still wins
/// over the file: here the file names a profile that does not exist and
/// `--profile calyxos` (the default) overrides it, so `run` gets past the
/// config and stops at the missing interface.
#[test]
fn config_sets_baseline_keys_and_a_flag_at_its_default_wins() {
    let dir = std::env::temp_dir().join(format!("tetherscope-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("tetherscope.toml");
    std::fs::write(
        &cfg,
        "profile = \"no-such-profile\"\nlearn_for = \"1w\"\nretain = \"30d\"\n\
         max_destinations = 100\nlabel_idle = \"2w\"\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(crate::common::bin())
            .args([
                "run",
                "--interface",
                "tetherscope-none0",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The file alone: its profile is refused, so its other keys were read.
    let (code, err) = run(&[]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("no-such-profile"), "{err}");
    let (code, err) = run(&["--profile", "calyxos"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("no interface named tetherscope-none0"),
        "{err}"
    );
}

/// `scripts/start.sh` finds the hotspot as `run` does: NetworkManager's
/// active shared connection first (the first by interface name), else the
/// interface holding 10.42.0.1. Stub `nmcli` and `ip` stand in for the
/// system's.
#[test]
fn start_script_finds_the_hotspot_through_networkmanager_first() {
    let dir = std::env::temp_dir().join(format!("tetherscope-start-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let stub = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // 10.42.0.1 is on another interface than NetworkManager's hotspot.
    stub(
        "ip",
        "echo '2: eth9    inet 10.42.0.1/24 brd 10.42.0.255 scope global eth9'\n",
    );
    let find = || {
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
        let out = Command::new("bash")
            .arg(root().join("scripts/start.sh"))
            .env("PATH", path)
            .env("START_FIND_ONLY", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    stub(
        "nmcli",
        r#"case "$*" in
  "-t -f UUID,DEVICE connection show --active") printf 'u-wired:eth0\nu-hot:wlp9s0\nu-hot2:wlan1\n' ;;
  "-g ipv4.method connection show u-hot"|"-g ipv4.method connection show u-hot2") echo shared ;;
  "-g ipv4.method connection show u-wired") echo auto ;;
  *) exit 10 ;;
esac
"#,
    );
    assert_eq!(find(), "wlan1", "the first shared connection by name");
    // NetworkManager shares nothing: the interface holding 10.42.0.1.
    stub(
        "nmcli",
        r#"case "$*" in
  "-t -f UUID,DEVICE connection show --active") echo 'u-wired:eth0' ;;
  *) echo auto ;;
esac
"#,
    );
    assert_eq!(find(), "eth9");
    // No NetworkManager at all (nmcli fails): the same.
    stub("nmcli", "exit 8\n");
    assert_eq!(find(), "eth9");
    let _ = std::fs::remove_dir_all(&dir);
}
