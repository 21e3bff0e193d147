//! Runtime faults and privileges on the simulated hotspot: tetherscope runs
//! as an unprivileged user holding only CAP_NET_RAW and CAP_NET_ADMIN, keeps
//! them in the capture thread alone, serves 200 concurrent scrapes while
//! capturing, and resumes capture when the hotspot interface is deleted and
//! recreated, with counters that continue.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common;
use crate::common::sim::{parse_metrics, skip_without_root, value, wait_for, Sim};

/// CapEff of each thread of `pid`, by thread name.
pub(crate) fn thread_caps(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let caps = u64::from_str_radix(&field("CapEff:"), 16).unwrap_or(u64::MAX);
        out.push((field("Name:"), caps));
    }
    out
}

fn metrics(sim: &Sim) -> std::collections::HashMap<String, f64> {
    parse_metrics(&sim.get("/metrics").unwrap_or_default())
}

#[test]
fn unprivileged_capture_concurrent_scrapes_and_interface_loss() {
    if skip_without_root("hardening") {
        return;
    }
    let mut sim = Sim::up(&format!("h{}", std::process::id() % 10_000));
    // A copy of the binary any user can execute, wherever the checkout is.
    let bin = sim.dir.join("tetherscope");
    std::fs::copy(common::bin(), &bin).unwrap();
    let leases = sim.dir.join("dnsmasq-ap0.leases");
    // A store of its own, so the baseline writer thread runs too.
    let state = sim.dir.join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let monitor = Command::new("ip")
        .args(["netns", "exec", &sim.ns("laptop"), "setpriv"])
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["--inh-caps=-all,+net_raw,+net_admin"])
        .args(["--ambient-caps=-all,+net_raw,+net_admin"])
        .args(["--bounding-set=-all,+net_raw,+net_admin"])
        .arg(&bin)
        .args(["run", "--interface", "ap0", "--leases"])
        .arg(&leases)
        .arg("--state")
        .arg(state.join("state.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tetherscope as nobody");
    let pid = monitor.id();
    sim.monitor = Some(monitor);
    assert!(
        wait_for(Duration::from_secs(20), || sim.get("/healthz")).is_some(),
        "unprivileged tetherscope never became healthy"
    );

    // Only the capture thread holds capabilities, and only the two; the
    // baseline writer, started with the store, holds none.
    let threads = thread_caps(pid);
    assert!(
        threads.iter().any(|(n, _)| n == "baseline-writer"),
        "no baseline writer: {threads:?}"
    );
    let capture: Vec<_> = threads.iter().filter(|(n, _)| n == "capture").collect();
    assert_eq!(capture.len(), 1, "{threads:?}");
    assert_eq!(
        capture[0].1,
        (1 << 12) | (1 << 13),
        "capture thread: {threads:?}"
    );
    for (name, caps) in threads.iter().filter(|(n, _)| n != "capture") {
        assert_eq!(*caps, 0, "thread {name} holds capabilities {caps:#x}");
    }
    let uid = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(uid.lines().any(|l| l.starts_with("Uid:\t65534")), "{uid}");

    // It captures: a round of phone traffic is seen and named.
    assert!(sim.script(&["traffic", "1"]).status.success());
    let m = wait_for(Duration::from_secs(20), || {
        let m = metrics(&sim);
        // libpcap's counters are sampled once a second: wait for both.
        (value(&m, "tetherscope_flows_total", &[("purpose", "os-update")]) >= 1.0
            && value(&m, "tetherscope_capture_packets_total", &[]) > 10.0)
            .then_some(m)
    })
    .expect("no flows captured as nobody");
    assert!(value(&m, "tetherscope_capture_packets_total", &[]) > 10.0);

    // 200 concurrent scrapes while the phone keeps talking: all answered,
    // and the capture neither stalls nor drops.
    let before = value(&metrics(&sim), "tetherscope_capture_packets_total", &[]);
    let traffic = sim
        .script_command(&["traffic", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let scrapes = sim.exec(
        "laptop",
        &[
            "python3",
            "-c",
            "import concurrent.futures as f, urllib.request as u\n\
             get = lambda _: u.urlopen('http://127.0.0.1:9433/metrics', timeout=8).status\n\
             with f.ThreadPoolExecutor(200) as p: r = list(p.map(get, range(200)))\n\
             print(sum(s == 200 for s in r))",
        ],
    );
    let mut traffic = traffic;
    let status = wait_for(Duration::from_secs(60), || {
        traffic.try_wait().ok().flatten()
    })
    .expect("traffic did not finish");
    assert!(status.success());
    let ok: u32 = String::from_utf8_lossy(&scrapes.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert_eq!(ok, 200, "{}", String::from_utf8_lossy(&scrapes.stderr));
    let m = wait_for(Duration::from_secs(10), || {
        let m = metrics(&sim);
        (value(&m, "tetherscope_capture_packets_total", &[]) > before + 50.0).then_some(m)
    })
    .expect("capture stalled during the scrapes");
    assert_eq!(
        value(
            &m,
            "tetherscope_capture_dropped_total",
            &[("where", "kernel")]
        ),
        0.0
    );

    // The interface disappears: tetherscope keeps serving and says so...
    let packets_before = value(&m, "tetherscope_capture_packets_total", &[]);
    let flows_before = value(&m, "tetherscope_flows_total", &[]);
    let relink = sim
        .script_command(&["relink", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let down = wait_for(Duration::from_secs(4), || {
        let m = metrics(&sim);
        (value(&m, "tetherscope_capture_up", &[]) == 0.0).then_some(m)
    });
    assert!(down.is_some(), "capture_up never went to 0");
    let out = relink.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ...and re-attaches (as nobody: the capture thread kept its capabilities).
    let up = wait_for(Duration::from_secs(10), || {
        let m = metrics(&sim);
        (value(&m, "tetherscope_capture_up", &[("interface", "ap0")]) == 1.0).then_some(())
    });
    assert!(up.is_some(), "capture never resumed");
    assert!(sim.script(&["direct"]).status.success());
    let after = wait_for(Duration::from_secs(15), || {
        let m = metrics(&sim);
        (value(&m, "tetherscope_capture_packets_total", &[]) > packets_before
            && value(&m, "tetherscope_flows_total", &[]) > flows_before)
            .then_some(m)
    })
    .expect("no packets counted after the interface came back");
    // Counters continued from where they were, none went back.
    assert!(value(&after, "tetherscope_flows_total", &[]) >= flows_before + 1.0);
    assert!(
        sim.monitor.as_mut().unwrap().try_wait().unwrap().is_none(),
        "tetherscope exited"
    );
}

/// Replays the seed capture with `extra` options and a flow log in `dir`,
/// stops it with SIGTERM once every packet was read, and returns the log's
/// files, newest first (`flows.jsonl`, `flows.jsonl.1`, ...) with their
/// lines.
fn replay_with_flow_log(dir: &std::path::Path, extra: &[&str]) -> Vec<(String, Vec<String>)> {
    use crate::common::{free_port, get_local};
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    let mut child = Command::new(common::bin())
        .arg("replay")
        .arg(common::fixture("seed-domains.pcap"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--state")
        .arg(dir.join("state.db"))
        .arg("--flow-log")
        .arg(dir.join("flows.jsonl"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let read = wait_for(Duration::from_secs(15), || {
        let m = parse_metrics(&get_local(port, "/metrics")?);
        (value(&m, "tetherscope_pipeline_packets_total", &[]) >= 65.0).then_some(())
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_for(Duration::from_secs(5), || child.try_wait().ok().flatten());
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(read.is_some(), "replay never read the whole capture");
    assert!(status.is_some_and(|s| s.success()), "replay did not stop");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("flows.jsonl") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "{name} ends inside a line"
            );
            files.push((name, text.lines().map(str::to_owned).collect()));
        }
    }
    let age = |name: &str| -> u32 {
        name.strip_prefix("flows.jsonl")
            .and_then(|n| n.strip_prefix('.'))
            .map_or(0, |n| n.parse().expect("numbered flow log"))
    };
    files.sort_by_key(|(name, _)| age(name));
    files
}

/// The flow log is rotated by size: at most `keep` old files besides the
/// current one, no line split across files, none lost while they are kept.
#[test]
fn flow_log_rotation_keeps_whole_lines_and_at_most_n_files() {
    let base = std::env::temp_dir().join(format!("tetherscope-rotation-{}", std::process::id()));
    // The reference: one file, never rotated.
    let whole = replay_with_flow_log(&base.join("whole"), &["--flow-log-max-mib", "0"]);
    assert_eq!(whole.len(), 1, "{whole:?}");
    let all = &whole[0].1;
    assert_eq!(all.len(), 14);
    for line in all {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    // 1 KiB files, 40 kept: several rotations, every line still there, in
    // order, and no file past its size unless it holds a single line.
    let rotated = replay_with_flow_log(
        &base.join("rotated"),
        &[
            "--flow-log-max-mib",
            "0.0009765625",
            "--flow-log-keep",
            "40",
        ],
    );
    assert!(rotated.len() > 3, "{rotated:?}");
    let mut joined: Vec<String> = Vec::new();
    for (name, lines) in rotated.iter().rev() {
        let size: usize = lines.iter().map(|l| l.len() + 1).sum();
        assert!(size <= 1024 || lines.len() == 1, "{name}: {size} bytes");
        joined.extend(lines.iter().cloned());
    }
    assert_eq!(&joined, all);
    // Two kept: the current file and .1, .2, holding the newest lines.
    let kept = replay_with_flow_log(
        &base.join("kept"),
        &["--flow-log-max-mib", "0.0009765625", "--flow-log-keep", "2"],
    );
    let names: Vec<&str> = kept.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["flows.jsonl", "flows.jsonl.1", "flows.jsonl.2"]);
    let newest: Vec<String> = kept.iter().rev().flat_map(|(_, l)| l.clone()).collect();
    assert!(all.ends_with(&newest), "{newest:?}");
    let _ = std::fs::remove_dir_all(&base);
}

/// Names hiding a zero-width space and a right-to-left override: every
/// table and report shows them escaped, JSON keeps the real string.
#[test]
fn invisible_characters_in_names_are_shown_escaped() {
    use crate::common::frames::{tls_connection, PcapWriter};
    let dir = std::env::temp_dir().join(format!("tetherscope-invisible-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let capture = dir.join("invisible.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&capture).unwrap());
    let (zero_width, override_) = ("gsta\u{200b}tic.com", "\u{202e}moc.elgoog.example");
    // 2026-01-01, two short TLS connections to documentation addresses.
    tls_connection(
        &mut w,
        1_767_225_600_000_000,
        [192, 0, 2, 7].into(),
        40_001,
        zero_width,
    );
    tls_connection(
        &mut w,
        1_767_225_601_000_000,
        [192, 0, 2, 8].into(),
        40_002,
        override_,
    );
    w.finish();
    let hidden = |s: &str| s.contains('\u{200b}') || s.contains('\u{202e}');
    let escaped = |s: &str| s.contains("gsta\\u{200b}tic.com") && s.contains("\\u{202e}moc.elgoog");

    // read: the table escapes, JSON lines keep the name.
    let db = dir.join("state.db");
    let table = Command::new(common::bin())
        .args(["read", "--quiet", "--format", "table", "--state"])
        .arg(&db)
        .arg(&capture)
        .output()
        .unwrap();
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(escaped(&table) && !hidden(&table), "{table}");
    let jsonl = common::read_jsonl(&capture, &["--quiet"]);
    let domains: Vec<String> = common::records(&jsonl.stdout)
        .iter()
        .filter_map(|r| r["domain"].as_str().map(str::to_owned))
        .collect();
    assert!(domains.iter().any(|d| d == zero_width), "{domains:?}");
    assert!(domains.iter().any(|d| d == override_), "{domains:?}");

    // baseline list: the table escapes, JSON keeps the name.
    let list = |format: &str| {
        let out = Command::new(common::bin())
            .args(["baseline", "list", "--format", format, "--state"])
            .arg(&db)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // (Destinations are registrable domains: the override's label may go.)
    let listed = list("table");
    assert!(
        listed.contains("gsta\\u{200b}tic.com") && !hidden(&listed),
        "{listed}"
    );
    let json: Vec<serde_json::Value> = serde_json::from_str(&list("json")).unwrap();
    assert!(
        json.iter().any(|e| e["destination"] == zero_width),
        "{json:?}"
    );

    // report: the HTML escapes.
    let html = dir.join("report.html");
    let out = Command::new(common::bin())
        .args(["report", "--quiet", "-o"])
        .arg(&html)
        .arg(&capture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(&html).unwrap();
    assert!(
        escaped(&report) && !hidden(&report),
        "report shows hidden characters"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs tetherscope with `args`, killed after 10 s: (exit code, stderr).
fn bounded(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let mut child = Command::new(common::bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for(Duration::from_secs(10), || child.try_wait().ok().flatten());
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("tetherscope {args:?} still running after 10 s");
    }
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.and_then(|s| s.code()), err)
}

/// Catalogs, lists and imports that are not regular files, or too large,
/// are refused with one line and exit 64, without hanging.
#[test]
fn inputs_that_are_not_regular_files_or_too_large_are_refused() {
    let dir = std::env::temp_dir().join(format!("tetherscope-inputs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // 64 MiB and one byte, sparse: nothing of it is written.
    let big = dir.join("big.txt");
    std::fs::File::create(&big)
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    let catalog_listing = |name: &str, list: &std::path::Path| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "[[list]]\npath = {:?}\npurpose = \"tracking\"\n",
                list.display().to_string()
            ),
        )
        .unwrap();
        path
    };
    let one_line = |(code, err): (Option<i32>, String), what: &str, why: &str| {
        assert_eq!(code, Some(64), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.contains(why), "{what}: {err}");
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    for (what, file, why) in [
        ("FIFO catalog", fifo.clone(), "a FIFO, not a regular file"),
        ("device catalog", "/dev/zero".into(), "a character device"),
        ("directory catalog", dir.clone(), "a directory"),
        ("large catalog", big.clone(), "larger than 64 MiB"),
        ("FIFO list", catalog_listing("fifo.toml", &fifo), "a FIFO"),
        (
            "device list",
            catalog_listing("zero.toml", "/dev/zero".as_ref()),
            "a character device",
        ),
        (
            "large list",
            catalog_listing("big.toml", &big),
            "larger than 64 MiB",
        ),
    ] {
        let check = bounded(&[
            os("catalog").as_os_str(),
            os("check").as_os_str(),
            file.as_os_str(),
        ]);
        one_line(check, what, why);
        // `run` loads its catalog before it captures anything; a scratch
        // store, should it ever get further.
        let store = dir.join("state.db");
        let run = bounded(&[
            os("run").as_os_str(),
            os("--state").as_os_str(),
            store.as_os_str(),
            os("--interface").as_os_str(),
            os("lo").as_os_str(),
            os("--listen").as_os_str(),
            os("127.0.0.1:1").as_os_str(),
            os("--catalog").as_os_str(),
            file.as_os_str(),
        ]);
        one_line(run, what, why);
    }
    for (what, file, why) in [
        ("FIFO import", fifo.clone(), "a FIFO"),
        ("device import", "/dev/zero".into(), "a character device"),
        ("large import", big.clone(), "larger than 64 MiB"),
    ] {
        let db = dir.join("state.db");
        let import = bounded(&[
            os("baseline").as_os_str(),
            os("import").as_os_str(),
            file.as_os_str(),
            os("--state").as_os_str(),
            db.as_os_str(),
        ]);
        one_line(import, what, why);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
