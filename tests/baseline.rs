//! The per-device baseline through the binary: a multi-day scenario in
//! packet time through `read` and through `replay` with the store kept
//! between captures, triage
//! from the CLI, export/import, stores that must not be touched, and
//! durability under `kill -9`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common;

const PHONE: &str = "da:a1:19:42:00:23";
const T0: u64 = 1_700_000_000;
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// A scratch directory unique to this test process and test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tetherscope-baseline-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One flow line for `common::frames::flows_capture`.
fn flow(t: u64, host: &str, server: &str) -> String {
    format!(
        r#"{{"t": {t}, "mac": "{PHONE}", "ip": "10.42.0.23", "host": "{host}", "server": "{server}", "name": "pixel-7a"}}"#
    )
}

/// Writes a capture of `flows` (lines of JSON) to `path`.
fn capture(path: &Path, flows: &[String]) {
    common::frames::flows_capture(path, flows);
}

/// `read --state` a capture: (destination → novelties in order).
fn read(store: &Path, cap: &Path, extra: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut args = vec!["--quiet", "--state", store.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = common::read_jsonl(cap, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    novelties(&common::records(&out.stdout))
}

/// The novelty of each TCP flow, in order, by domain (`-` unnamed).
fn novelties(records: &[serde_json::Value]) -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in records.iter().filter(|r| r["transport"] == "tcp") {
        seen.entry(r["domain"].as_str().unwrap_or("-").to_owned())
            .or_default()
            .push(r["novelty"].as_str().unwrap_or("null").to_owned());
    }
    seen
}

fn baseline(args: &[&str]) -> Output {
    Command::new(common::bin())
        .arg("baseline")
        .args(args)
        .output()
        .expect("run tetherscope baseline")
}

/// `baseline list --format json`: destination → state.
fn states(store: &Path) -> BTreeMap<String, String> {
    let out = baseline(&[
        "list",
        "--format",
        "json",
        "--state",
        store.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    list.iter()
        .map(|e| {
            assert_eq!(e["device"], "pixel-7a");
            assert_eq!(e["mac"], PHONE);
            (
                e["destination"].as_str().unwrap().to_owned(),
                e["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The destinations in `state`, sorted.
fn in_state<'a>(states: &'a BTreeMap<String, String>, state: &str) -> Vec<&'a str> {
    states
        .iter()
        .filter(|(_, s)| *s == state)
        .map(|(d, _)| d.as_str())
        .collect()
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn baseline_multi_day_read_learns_then_reports_exactly_the_new() {
    let dir = scratch("days");
    let store = dir.join("state.db");
    // Days 0-1: learning (48 h from the first packet).
    let learn = dir.join("learn.pcap");
    capture(
        &learn,
        &[
            flow(T0, "www.example.com", "203.0.113.10"),
            flow(T0 + HOUR, "api.example.net", "203.0.113.11"),
            flow(T0 + 30 * HOUR, "cdn.example.org", "203.0.113.12"),
        ],
    );
    let seen = read(&store, &learn, &[]);
    assert!(seen.values().flatten().all(|n| n == "learning"), "{seen:?}");
    // Days 3-4, read in another process with the same store: known
    // destinations (another name under a learned registrable domain too),
    // one the profile expects, and exactly two never seen.
    let later = dir.join("later.pcap");
    capture(
        &later,
        &[
            flow(T0 + 3 * DAY, "static.example.com", "203.0.113.10"),
            flow(T0 + 3 * DAY + 60, "tracker.example.io", "203.0.113.20"),
            flow(
                T0 + 3 * DAY + 120,
                "connectivitycheck.gstatic.com",
                "203.0.113.21",
            ),
            flow(T0 + 3 * DAY + 180, "ads.example.edu", "203.0.113.22"),
            flow(T0 + 4 * DAY, "tracker.example.io", "203.0.113.20"),
            flow(T0 + 4 * DAY + 60, "cdn.example.org", "203.0.113.12"),
        ],
    );
    let seen = read(&store, &later, &[]);
    assert_eq!(seen["static.example.com"], v(&["known"]));
    assert_eq!(seen["connectivitycheck.gstatic.com"], v(&["known"]));
    assert_eq!(seen["cdn.example.org"], v(&["known"]));
    assert_eq!(seen["tracker.example.io"], v(&["new", "new"]));
    assert_eq!(seen["ads.example.edu"], v(&["new"]));
    let st = states(&store);
    let new = in_state(&st, "new");
    assert_eq!(new, ["example.edu", "example.io"]);
    assert_eq!(st["example.com"], "baseline");
    assert_eq!(st["gstatic.com"], "baseline");

    // Triage from the CLI, by DHCP host name and by MAC.
    let s = store.to_str().unwrap();
    let out = baseline(&["accept", "example.io", "--device", "pixel-7a", "--state", s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = baseline(&["flag", "example.edu", "--device", PHONE, "--state", s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = baseline(&["accept", "example.io", "--device", "nobody", "--state", s]);
    assert_eq!(out.status.code(), Some(64));
    let out = baseline(&["accept", "nowhere.example", "--device", PHONE, "--state", s]);
    assert_eq!(out.status.code(), Some(64));

    // Day 5: accepted is known, flagged stays flagged on every flow, and
    // the replay of day 3-4 (a restart) alerts on nothing it knew.
    let day5 = dir.join("day5.pcap");
    capture(
        &day5,
        &[
            flow(T0 + 5 * DAY, "tracker.example.io", "203.0.113.20"),
            flow(T0 + 5 * DAY + 60, "ads.example.edu", "203.0.113.22"),
            flow(T0 + 5 * DAY + 120, "ads.example.edu", "203.0.113.22"),
        ],
    );
    let seen = read(&store, &day5, &[]);
    assert_eq!(seen["tracker.example.io"], v(&["known"]));
    assert_eq!(seen["ads.example.edu"], v(&["flagged", "flagged"]));

    // Export, import into a fresh store: the same baseline.
    let out = baseline(&["export", "--state", s]);
    assert!(out.status.success());
    let exported = dir.join("export.json");
    std::fs::write(&exported, &out.stdout).unwrap();
    let fresh = dir.join("fresh.db");
    let out = baseline(&[
        "import",
        exported.to_str().unwrap(),
        "--state",
        fresh.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(states(&fresh), states(&store));
    // Learned elsewhere, compared here: nothing learns, only the unseen is new.
    let seen = read(&fresh, &day5, &["--learn-for", "0"]);
    assert_eq!(seen["tracker.example.io"], v(&["known"]));
    assert_eq!(seen["ads.example.edu"], v(&["flagged", "flagged"]));

    // Forget: the next flow is judged afresh.
    let out = baseline(&["forget", "example.io", "--device", "pixel-7a", "--state", s]);
    assert!(out.status.success());
    let seen = read(&store, &day5, &[]);
    assert_eq!(seen["tracker.example.io"], v(&["new"]));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A DNS answer seen before the store was closed still names a connection
/// read after it reopened, while the answer's TTL lasts.
#[test]
fn baseline_saved_dns_answers_name_connections_after_a_restart() {
    let dir = scratch("dns");
    let store = dir.join("state.db");
    let answer = dir.join("answer.pcap");
    capture(
        &answer,
        &[format!(
            r#"{{"t": {T0}, "mac": "{PHONE}", "ip": "10.42.0.23", "server": "203.0.113.30", "host": "", "dns": "saved.example.org", "ttl": 3600}}"#
        )],
    );
    let connect = |at: u64, name: &str| {
        let cap = dir.join(name);
        capture(
            &cap,
            &[format!(
                r#"{{"t": {at}, "mac": "{PHONE}", "ip": "10.42.0.23", "server": "203.0.113.30", "host": "", "syn": true}}"#
            )],
        );
        cap
    };
    let soon = connect(T0 + 600, "soon.pcap");
    let late = connect(T0 + 2 * 3600, "late.pcap");
    let domain = |store: &Path, cap: &Path| {
        let out = common::read_jsonl(cap, &["--quiet", "--state", store.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let recs = common::records(&out.stdout);
        assert_eq!(recs.len(), 1);
        recs[0]["domain"].as_str().map(str::to_owned)
    };
    let out = common::read_jsonl(&answer, &["--quiet", "--state", store.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(domain(&store, &soon).as_deref(), Some("saved.example.org"));
    // Past the TTL (and its slack) the answer no longer names anything.
    assert_eq!(domain(&store, &late), None);
    // Without the store nothing remembers the answer.
    let out = common::read_jsonl(&soon, &["--quiet"]);
    assert_eq!(
        common::records(&out.stdout)[0]["domain"],
        serde_json::Value::Null
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Packets in a classic pcap file.
fn pcap_packets(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let (mut at, mut packets) = (24, 0);
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
        packets += 1;
    }
    packets
}

/// `replay --state` a capture until every packet is in, then SIGTERM: the
/// flow log's records.
pub(crate) fn replay(store: &Path, cap: &Path, log: &Path) -> Vec<serde_json::Value> {
    use crate::common::sim::{parse_metrics, value, wait_for};
    let packets = pcap_packets(cap) as f64;
    let port = common::free_port();
    let mut child = Command::new(common::bin())
        .arg("replay")
        .arg(cap)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--state")
        .arg(store)
        .arg("--flow-log")
        .arg(log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let served = wait_for(Duration::from_secs(15), || {
        let m = parse_metrics(&common::get_local(port, "/metrics")?);
        (value(&m, "tetherscope_pipeline_packets_total", &[]) >= packets).then_some(())
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(served.is_some(), "replay never served {packets} packets");
    assert!(status.success(), "replay exited with {status}");
    common::records(&std::fs::read(log).unwrap())
}

/// The multi-day story through `replay`, the live path: two replays with
/// the store kept between them (a restart, in packet time). The second
/// says exactly what is new, and a connection nothing in it names is named
/// by a DNS answer the first one saved.
#[test]
fn baseline_replay_restart_reports_exactly_the_new() {
    let dir = scratch("replay");
    let store = dir.join("state.db");
    let learn = dir.join("learn.pcap");
    capture(
        &learn,
        &[
            flow(T0, "www.example.com", "203.0.113.10"),
            flow(T0 + HOUR, "api.example.net", "203.0.113.11"),
            format!(
                r#"{{"t": {}, "mac": "{PHONE}", "ip": "10.42.0.23", "server": "203.0.113.30", "host": "", "dns": "saved.example.org", "ttl": {}}}"#,
                T0 + 2 * HOUR,
                4 * DAY
            ),
        ],
    );
    let later = dir.join("later.pcap");
    capture(
        &later,
        &[
            flow(T0 + 3 * DAY, "static.example.com", "203.0.113.10"),
            flow(T0 + 3 * DAY + 60, "tracker.example.io", "203.0.113.20"),
            flow(T0 + 3 * DAY + 120, "tracker.example.io", "203.0.113.20"),
            format!(
                r#"{{"t": {}, "mac": "{PHONE}", "ip": "10.42.0.23", "server": "203.0.113.30", "host": "", "syn": true}}"#,
                T0 + 3 * DAY + 180
            ),
        ],
    );
    let first = novelties(&replay(&store, &learn, &dir.join("learn.jsonl")));
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(
        first.values().flatten().all(|n| n == "learning"),
        "{first:?}"
    );

    let second = novelties(&replay(&store, &later, &dir.join("later.jsonl")));
    assert_eq!(second["static.example.com"], v(&["known"]), "{second:?}");
    assert_eq!(second["tracker.example.io"], v(&["new", "new"]));
    // Named only by the answer the first replay saved.
    assert_eq!(second["saved.example.org"], v(&["new"]), "{second:?}");
    let st = states(&store);
    let new = in_state(&st, "new");
    assert_eq!(new, ["example.io", "example.org"]);
    assert_eq!(st["example.com"], "baseline");
    assert_eq!(st["example.net"], "baseline");
    let _ = std::fs::remove_dir_all(&dir);
}

fn sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn baseline_refuses_stores_it_must_not_touch() {
    let dir = scratch("refuse");
    let cap = common::fixture("seed-domains.pcap");
    let check = |path: &Path, says: &str, readable: bool| {
        let before = path.is_file().then(|| sha(path));
        let out = common::read_jsonl(&cap, &["--state", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{}: {err}", path.display());
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(says), "{}: {err}", path.display());
        assert!(
            out.stdout.is_empty(),
            "no flows before the store is accepted"
        );
        if let Some(before) = before {
            assert_eq!(sha(path), before, "{} was modified", path.display());
        }
        // Listing only reads: a read-only store can be listed.
        let out = baseline(&["list", "--state", path.to_str().unwrap()]);
        let code = if readable { 0 } else { 64 };
        assert_eq!(out.status.code(), Some(code), "list {}", path.display());
    };
    let foreign = dir.join("notes.txt");
    std::fs::write(&foreign, "my shopping list\n".repeat(100)).unwrap();
    check(&foreign, "not a tetherscope state store", false);

    let other_app = dir.join("other.db");
    Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table t(x)'); c.commit()"])
        .arg(&other_app)
        .status()
        .unwrap();
    check(&other_app, "not a tetherscope state store", false);

    // A real store, then damaged in the middle, then from the future.
    let good = dir.join("good.db");
    let out = common::read_jsonl(
        &cap,
        &["--state", good.to_str().unwrap(), "--learn-for", "0"],
    );
    assert!(out.status.success());
    let damaged = dir.join("damaged.db");
    let mut bytes = sha(&good);
    let len = bytes.len();
    for b in &mut bytes[len / 2..] {
        *b = 0x5a;
    }
    std::fs::write(&damaged, &bytes).unwrap();
    check(&damaged, "damaged", false);

    let newer = dir.join("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('pragma user_version=99'); c.commit()"])
        .arg(&newer)
        .status()
        .unwrap();
    check(&newer, "newer", false);

    let read_only = dir.join("ro.db");
    std::fs::copy(&good, &read_only).unwrap();
    let mut perm = std::fs::metadata(&read_only).unwrap().permissions();
    perm.set_readonly(true);
    std::fs::set_permissions(&read_only, perm).unwrap();
    check(&read_only, "read-only", true);

    check(&dir, "is a directory", false);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `flows in all` of the last commit the writer logged.
fn last_committed(log: &str) -> Option<u64> {
    log.lines()
        .rfind(|l| l.contains("baseline: committed"))
        .and_then(|l| l.split(", ").last())
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[test]
fn baseline_survives_kill_9_at_random_points() {
    let dir = scratch("kill");
    let store = dir.join("state.db");
    // 60,000 one-packet flows from 30 devices to distinct servers over a
    // day of packet time: a row per flow, batches while reading.
    let cap = dir.join("heavy.pcap");
    let flows: Vec<String> = (0..60_000u64)
        .map(|i| {
            format!(
                r#"{{"t": {}, "mac": "02:00:00:00:{:02x}:{:02x}", "ip": "10.42.0.{}", "server": "203.0.113.{}", "host": "", "syn": true}}"#,
                T0 + i,
                (i % 30) / 256,
                i % 30,
                10 + i % 30,
                i % 250
            )
            .replace(
                "\"server\": \"203.0.113.",
                &format!("\"server\": \"198.51.{}.", (i / 250) % 200),
            )
        })
        .collect();
    capture(&cap, &flows);
    let run = |log: &Path| {
        Command::new(common::bin())
            .args(["read", "--format", "jsonl", "--quiet", "--learn-for", "0"])
            .arg("--state")
            .arg(&store)
            .arg(&cap)
            .env("TETHERSCOPE_LOG", "tetherscope_baseline=debug")
            .env("TETHERSCOPE_STATE_BATCH_MS", "20")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap()
    };
    // One whole run sets the time scale of the kills.
    let started = Instant::now();
    assert!(run(&dir.join("whole.log")).wait().unwrap().success());
    let whole = started.elapsed().as_millis() as u64;
    let mut rng = std::process::id() as u64 | 1;
    let (mut completed, mut killed_after_commit) = (0, 0);
    for round in 0..30 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let log_path = dir.join(format!("round-{round}.log"));
        let mut child = run(&log_path);
        let deadline = Instant::now() + Duration::from_millis(rng % whole.max(1));
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let exited = child.try_wait().unwrap().is_some();
        if exited {
            completed += 1;
        } else {
            child.kill().unwrap(); // SIGKILL
        }
        child.wait().unwrap();
        let log = std::fs::read_to_string(&log_path).unwrap();
        let s = tetherscope_baseline::Store::open_read_only(&store).expect("store opens");
        assert_eq!(s.integrity_check().unwrap(), "ok", "round {round}");
        let b = s.load(tetherscope_baseline::Settings::default()).unwrap();
        let flows: u64 = b
            .devices()
            .values()
            .flat_map(|d| d.destinations.values())
            .map(|d| d.flows)
            .sum();
        if let Some(committed) = last_committed(&log) {
            killed_after_commit += usize::from(!exited);
            assert!(
                flows >= committed,
                "round {round}: {flows} flows stored, {committed} committed before the kill"
            );
        }
    }
    eprintln!(
        "kill -9 loop: whole run {whole} ms; {completed} of 30 runs finished before their kill, \
         {killed_after_commit} killed after committing batches"
    );
    assert!(
        killed_after_commit >= 5,
        "too few runs killed in the middle of writing: the loop tested little"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// On the simulated hotspot, in real time: the phone learns for a few
/// seconds, `run` restarts with the same store, then exactly the one
/// destination never seen raises NewDestination once, through a real
/// Prometheus and Alertmanager; accepted over the HTTP API with the token
/// file, its next flow is `known` and alerts no more.
#[test]
fn baseline_live_restart_then_new_destination_alerts_once() {
    use crate::common::sim::{parse_metrics, skip_without_root, value, wait_for, Sim};
    use std::ffi::OsStr;
    if skip_without_root("baseline-live") {
        return;
    }
    let mut sim = Sim::up(&format!("b{}", std::process::id() % 10_000));
    let learn = [OsStr::new("--learn-for"), OsStr::new("12s")];
    sim.start_monitor(&learn);
    let received = crate::monitoring::start_stack(&mut sim);
    let learning_started = Instant::now();
    let out = sim.script(&["traffic", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let learned = wait_for(Duration::from_secs(30), || {
        sim.get("/api/baseline")
            .filter(|b| b.contains("\"izatcloud.net\"") && b.contains("\"example.com\""))
    });
    assert!(
        learned.is_some(),
        "nothing learned: {:?}",
        sim.get("/api/baseline")
    );
    let token_file = sim.dir.join("token");
    let mode = std::fs::metadata(&token_file)
        .expect("token file")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    // Restart in the middle, after learning ends (packet time is wall time).
    let pid = sim.monitor.as_ref().unwrap().id();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let stopped = sim.monitor.take().unwrap().wait().unwrap();
    assert!(stopped.success(), "run did not stop cleanly: {stopped:?}");
    let rest = Duration::from_secs(13).saturating_sub(learning_started.elapsed());
    std::thread::sleep(rest);
    sim.start_monitor(&learn);

    // The same round (all known) and one destination never seen before.
    let out = sim.script(&["traffic", "1"]);
    assert!(out.status.success());
    let novel = [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "--resolve",
        "telemetry.example.net:80:192.0.2.20",
        "http://telemetry.example.net/",
    ];
    assert!(sim.exec("phone", &novel).status.success());

    let firing = wait_for(Duration::from_secs(60), || {
        crate::monitoring::query(
            &sim,
            "ALERTS{alertname=\"NewDestination\",alertstate=\"firing\"}",
        )
        .ok()
        .filter(|r| !r.is_empty())
    })
    .expect("NewDestination never fired");
    let domains: Vec<&str> = firing
        .iter()
        .map(|a| a["metric"]["domain"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(domains, ["example.net"], "{firing:?}");
    assert_eq!(firing[0]["metric"]["device"], "pixel-7a");

    let delivered = wait_for(Duration::from_secs(45), || {
        let text = std::fs::read_to_string(&received).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
            .find(|a| a["labels"]["alertname"] == "NewDestination")
    })
    .expect("Alertmanager never delivered NewDestination");
    assert_eq!(delivered["labels"]["domain"], "example.net");
    assert_eq!(delivered["labels"]["device"], "pixel-7a");
    let first_seen = delivered["annotations"]["first_seen"]
        .as_str()
        .unwrap_or("");
    assert!(
        first_seen.contains("UTC"),
        "first_seen annotation: {delivered}"
    );

    // Accept over HTTP with the token the running process wrote.
    let token = std::fs::read_to_string(&token_file).unwrap();
    let header = format!("X-Tetherscope-Token: {token}");
    let accept = [
        "curl",
        "-sf",
        "-m",
        "5",
        "-X",
        "POST",
        "-H",
        &header,
        "-d",
        r#"{"device": "pixel-7a", "destination": "example.net"}"#,
        "http://127.0.0.1:9433/api/baseline/accept",
    ];
    let out = sim.exec("laptop", &accept);
    assert!(out.status.success(), "accept refused");
    let entry: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entry["state"], "accepted");
    assert!(sim.exec("phone", &novel).status.success());
    let known = wait_for(Duration::from_secs(20), || {
        let flows: Vec<serde_json::Value> = serde_json::from_str(&sim.get("/api/flows")?).ok()?;
        flows
            .iter()
            .filter(|f| f["domain"] == "telemetry.example.net")
            .any(|f| f["novelty"] == "known")
            .then_some(())
    });
    assert!(
        known.is_some(),
        "the accepted destination's flow is not known"
    );
    let m = parse_metrics(&sim.get("/metrics").unwrap());
    assert_eq!(
        value(
            &m,
            "tetherscope_new_destinations_total",
            &[("domain", "example.net")]
        ),
        1.0
    );
    assert_eq!(value(&m, "tetherscope_new_destinations_total", &[]), 1.0);
}

/// Unix seconds now.
fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `replay` of the seed capture with `args`, under `sh -c` (for a umask or
/// an environment), until its packets are served; then `check` runs while
/// it still does, and it is stopped with SIGTERM.
fn while_replaying(args: &[&std::ffi::OsStr], env: &[(&str, &Path)], check: impl FnOnce()) {
    use crate::common::sim::{parse_metrics, value, wait_for};
    let port = common::free_port();
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "umask 022; exec \"$@\"",
        "sh",
        common::bin(),
        "replay",
    ])
    .arg(common::fixture("seed-domains.pcap"))
    .args(["--listen", &format!("127.0.0.1:{port}")])
    .args(args)
    .env_remove("STATE_DIRECTORY")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let served = wait_for(Duration::from_secs(15), || {
        let m = parse_metrics(&common::get_local(port, "/metrics")?);
        (value(&m, "tetherscope_pipeline_packets_total", &[]) >= 65.0).then_some(())
    });
    if served.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("replay never served the fixture");
    }
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    if let Err(e) = checked {
        std::panic::resume_unwind(e);
    }
    assert!(status.success(), "replay exited with {status}");
}

/// Permission bits of `path`.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The store, its write-ahead log and shared memory, and the token are
/// the owner's only, and so is the directory made for them, under the
/// usual umask 022 (outside systemd, which sets its own modes).
#[test]
fn baseline_store_files_are_owner_only_whatever_the_umask() {
    let dir = scratch("modes");
    let store = dir.join("made/for/it/state.db");
    let state = [std::ffi::OsStr::new("--state"), store.as_os_str()];
    while_replaying(&state, &[], || {
        let wal = dir.join("made/for/it/state.db-wal");
        let shm = dir.join("made/for/it/state.db-shm");
        let token = dir.join("made/for/it/token");
        for file in [&store, &wal, &shm, &token] {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
        for d in ["made", "made/for", "made/for/it"] {
            assert_eq!(mode(&dir.join(d)), 0o700, "{d}");
        }
    });
    // An existing store left readable by others is made the owner's.
    std::fs::set_permissions(&store, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = baseline(&[
        "forget",
        "nothing.example",
        "--device",
        "02:00:00:00:00:01",
        "--state",
        store.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(mode(&store), 0o600);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `replay` keeps no store unless `--state` names one: replaying someone
/// else's capture must not rewrite the user's own baseline.
#[test]
fn replay_without_state_keeps_no_store() {
    let dir = scratch("replay-nostate");
    let (xdg, home) = (dir.join("xdg"), dir.join("home"));
    std::fs::create_dir_all(&xdg).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    // The compiled network tables are a cache of public data, not a store:
    // they go to XDG_CACHE_HOME, kept apart from the directories checked.
    let cache = dir.join("cache");
    let env = [
        ("XDG_STATE_HOME", xdg.as_path()),
        ("HOME", home.as_path()),
        ("XDG_CACHE_HOME", cache.as_path()),
    ];
    while_replaying(&[], &env, || {});
    let left: Vec<_> = [&xdg, &home]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "replay wrote {left:?}");
    // `run` still defaults to that store; with `--state` replay keeps one.
    let store = dir.join("kept.db");
    let state = [std::ffi::OsStr::new("--state"), store.as_os_str()];
    while_replaying(&state, &env, || {});
    assert!(store.is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A store this user cannot write (another user's, readable) is refused
/// with one line and exit 64 before any packet is read: in a directory of
/// that user, and in one anybody may write (as `/tmp`), where SQLite opens
/// it read-only and says so only at the first write. Root may write
/// anything, so the binary runs as `nobody`.
#[test]
fn baseline_store_this_user_cannot_write_is_refused_at_start() {
    if crate::common::sim::skip_without_root("unwritable-store") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    for (name, dir_mode) in [("unwritable", 0o755), ("unwritable-shared", 0o1777)] {
        let dir = scratch(name);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
        let store = dir.join("state.db");
        let cap = dir.join("seed.pcap");
        std::fs::copy(common::fixture("seed-domains.pcap"), &cap).unwrap();
        let out = common::read_jsonl(&cap, &["--quiet", "--state", store.to_str().unwrap()]);
        assert!(out.status.success());
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
        let bin = dir.join("tetherscope");
        std::fs::copy(common::bin(), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let before = sha(&store);
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(["read", "--format", "jsonl", "--state"])
            .arg(&store)
            .arg(&cap)
            .output()
            .expect("setpriv");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(
            err.contains("state.db") && err.contains("read-only"),
            "{name}: {err}"
        );
        assert!(
            out.stdout.is_empty(),
            "{name}: packets were read: {}",
            out.stdout.len()
        );
        assert_eq!(sha(&store), before, "{name}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A week of a phone's traffic, triaged, then one flow dated 2100: its
/// time is clamped to this machine's clock (plus a day), so retention
/// forgets nothing; and an import dated 2100, or with numbers no baseline
/// holds, is refused naming the entry, changing nothing.
#[test]
fn baseline_times_from_2100_do_not_empty_the_baseline() {
    let dir = scratch("y2100");
    let store = dir.join("state.db");
    let s = store.to_str().unwrap();
    let week_ago = now_s() - 7 * DAY;
    let week = dir.join("week.pcap");
    capture(
        &week,
        &[
            flow(week_ago, "www.example.com", "203.0.113.10"),
            flow(week_ago + HOUR, "api.example.net", "203.0.113.11"),
            flow(week_ago + 2 * HOUR, "ads.example.edu", "203.0.113.12"),
        ],
    );
    read(&store, &week, &["--learn-for", "0"]);
    for (op, d) in [("accept", "example.net"), ("flag", "example.edu")] {
        let out = baseline(&[op, d, "--device", PHONE, "--state", s]);
        assert!(out.status.success());
    }
    let before = states(&store);
    assert_eq!(before.len(), 3);

    let future = dir.join("2100.pcap");
    capture(
        &future,
        &[flow(4_102_444_800, "far.example.org", "203.0.113.13")],
    );
    read(&store, &future, &["--retain", "30d"]);
    let after = states(&store);
    assert_eq!(after.len(), 4, "{after:?}");
    for (d, st) in &before {
        assert_eq!(&after[d], st, "{d}");
    }
    let out = baseline(&["export", "--state", s]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let far = list
        .iter()
        .find(|e| e["destination"] == "example.org")
        .unwrap();
    let last_seen = far["last_seen"].as_f64().unwrap();
    assert!(last_seen <= (now_s() + DAY + 60) as f64, "{far}");

    // Imports: each bad number refused, naming the entry.
    let exported = String::from_utf8(out.stdout).unwrap();
    let listed = baseline(&["list", "--format", "json", "--state", s]).stdout;
    let spoil = |from: &str, to: &str, says: &[&str]| {
        assert!(exported.contains(from), "{from}");
        let file = dir.join("import.json");
        std::fs::write(&file, exported.replacen(from, to, 1)).unwrap();
        let out = baseline(&["import", file.to_str().unwrap(), "--state", s]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{to}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        for said in says {
            assert!(err.contains(said), "{to}: {said}: {err}");
        }
        let now = baseline(&["list", "--format", "json", "--state", s]).stdout;
        assert_eq!(now, listed, "{to}: the store changed");
    };
    let entry1 = "entry 1 (";
    spoil(
        "\"last_seen\": ",
        "\"last_seen\": 4102444800.0, \"x\": ",
        &[entry1, "last_seen"],
    );
    spoil(
        "\"first_seen\": ",
        "\"first_seen\": 1e300, \"x\": ",
        &[entry1, "first_seen"],
    );
    spoil(
        "\"first_seen\": ",
        "\"first_seen\": -1.0, \"x\": ",
        &[entry1, "first_seen"],
    );
    spoil(
        "\"flows\": ",
        "\"flows\": 18446744073709551616, \"x\": ",
        &[entry1, "flows"],
    );
    spoil(
        "\"flows\": ",
        "\"flows\": 9223372036854775808, \"x\": ",
        &[entry1, "flows"],
    );
    spoil(
        "\"bytes_up\": ",
        "\"bytes_up\": -3, \"x\": ",
        &[entry1, "-3"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A second station that sends the phone's DHCP name is told apart
/// wherever the name is shown, and triage by that name refuses, listing
/// both MACs.
#[test]
fn baseline_a_dhcp_name_two_stations_send_is_not_a_device() {
    let dir = scratch("names");
    let store = dir.join("state.db");
    let s = store.to_str().unwrap();
    const ROGUE: &str = "02:00:00:00:66:66";
    let rogue = format!(
        r#"{{"t": {}, "mac": "{ROGUE}", "ip": "10.42.0.66", "host": "www.example.com", "server": "203.0.113.10", "name": "pixel-7a"}}"#,
        T0 + HOUR
    );
    let cap = dir.join("two.pcap");
    capture(&cap, &[flow(T0, "www.example.com", "203.0.113.10"), rogue]);
    let out = common::read_jsonl(&cap, &["--quiet", "--state", s]);
    assert!(out.status.success());
    // The report (as the page) names devices by what the table holds.
    let html = dir.join("two.html");
    let out = Command::new(common::bin())
        .args(["report", "--quiet", "-o"])
        .arg(&html)
        .arg(&cap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&html).unwrap();
    let row = |mac: &str| {
        let at = html
            .find(&format!("<td class=\"mac\">{mac}</td>"))
            .unwrap_or_else(|| panic!("{mac}"));
        let start = html[..at].rfind("<tr>").unwrap();
        html[start..at].to_owned()
    };
    assert!(row(PHONE).contains(">pixel-7a<"), "{}", row(PHONE));
    assert!(
        row(ROGUE).contains(&format!(">pixel-7a ({ROGUE})<")),
        "{}",
        row(ROGUE)
    );

    let shown = || {
        let out = baseline(&["list", "--format", "json", "--state", s]);
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        list.iter()
            .map(|e| {
                (
                    e["mac"].as_str().unwrap().to_owned(),
                    e["device"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<BTreeMap<String, String>>()
    };
    assert_eq!(shown()[PHONE], "pixel-7a");
    assert_eq!(shown()[ROGUE], format!("pixel-7a ({ROGUE})"));
    // Later, in another process, the rogue sends the name first: the
    // store still knows whose it was.
    let later = dir.join("later.pcap");
    capture(
        &later,
        &[format!(
            r#"{{"t": {}, "mac": "{ROGUE}", "ip": "10.42.0.66", "host": "api.example.com", "server": "203.0.113.10", "name": "pixel-7a"}}"#,
            T0 + 2 * HOUR
        )],
    );
    let out = common::read_jsonl(&later, &["--quiet", "--state", s]);
    assert!(out.status.success());
    assert_eq!(shown()[PHONE], "pixel-7a");
    assert_eq!(shown()[ROGUE], format!("pixel-7a ({ROGUE})"));
    // The rogue never held the name, so the name is the phone's alone; an
    // import from elsewhere that gives the rogue the name makes it
    // ambiguous, and triage by it is refused.
    let import = dir.join("import.json");
    std::fs::write(
        &import,
        format!(
            r#"[{{"device": "pixel-7a", "mac": "{ROGUE}", "destination": "example.com", "state": "new", "first_seen": {}, "last_seen": {}}}]"#,
            T0 + HOUR,
            T0 + HOUR
        ),
    )
    .unwrap();
    let out = baseline(&["import", import.to_str().unwrap(), "--state", s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for op in ["accept", "flag", "forget"] {
        let out = baseline(&[op, "example.com", "--device", "pixel-7a", "--state", s]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{op}: {err}");
        assert!(err.contains(&format!("{ROGUE}, {PHONE}")), "{op}: {err}");
    }
    let out = baseline(&["accept", "example.com", "--device", PHONE, "--state", s]);
    assert!(out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// One rule for who holds a DHCP name, across restarts: the store says the
/// phone claimed `pixel-7a` first; after a restart another station sends
/// the name before the phone does, and still the phone is `pixel-7a` and
/// the other `pixel-7a (MAC)` (before, the device table gave the name to
/// whoever spoke first in this run, and the phone's own flows then recorded
/// it as `pixel-7a (MAC)`).
#[test]
fn baseline_a_remembered_name_stays_its_holders_after_a_restart() {
    let dir = scratch("restart-names");
    let store = dir.join("state.db");
    let s = store.to_str().unwrap();
    const ROGUE: &str = "02:00:00:00:66:66";
    let first = dir.join("first.pcap");
    capture(&first, &[flow(T0, "www.example.com", "203.0.113.10")]);
    let out = common::read_jsonl(&first, &["--quiet", "--state", s]);
    assert!(out.status.success());
    // The restart: the rogue speaks first, then the phone.
    let later = dir.join("later.pcap");
    capture(
        &later,
        &[
            format!(
                r#"{{"t": {}, "mac": "{ROGUE}", "ip": "10.42.0.66", "host": "api.example.com", "server": "203.0.113.10", "name": "pixel-7a"}}"#,
                T0 + 2 * HOUR
            ),
            flow(T0 + 3 * HOUR, "docs.example.net", "203.0.113.11"),
        ],
    );
    let out = common::read_jsonl(&later, &["--quiet", "--state", s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rogue_shown = format!("pixel-7a ({ROGUE})");
    let out = baseline(&["list", "--format", "json", "--state", s]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let shown: BTreeMap<String, String> = list
        .iter()
        .map(|e| {
            (
                e["mac"].as_str().unwrap().to_owned(),
                e["device"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(shown[PHONE], "pixel-7a", "{shown:?}");
    assert_eq!(shown[ROGUE], rogue_shown, "{shown:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `baseline list --clients --format json` of `store`.
fn clients(store: &Path) -> Vec<serde_json::Value> {
    let out = baseline(&[
        "list",
        "--clients",
        "--format",
        "json",
        "--state",
        store.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn baseline_clients_are_listed_and_triaged_from_the_cli() {
    let dir = scratch("clients");
    let store = dir.join("state.db");
    let cap = common::fixture("seed-domains.pcap");
    // No learning: every TLS client of the capture is new software.
    let out = common::read_jsonl(
        &cap,
        &[
            "--quiet",
            "--state",
            store.to_str().unwrap(),
            "--learn-for",
            "0",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = clients(&store);
    assert!(!listed.is_empty(), "the fixture's TLS flows have clients");
    assert!(listed.iter().all(|c| c["state"] == "new"), "{listed:#?}");
    let fingerprint = listed[0]["client"].as_str().unwrap().to_owned();
    let mac = listed[0]["mac"].as_str().unwrap().to_owned();
    assert!(!listed[0]["destinations"].as_array().unwrap().is_empty());
    let state_of = |store: &Path| {
        clients(store)
            .into_iter()
            .find(|c| c["client"] == fingerprint.as_str())
            .map(|c| c["state"].as_str().unwrap().to_owned())
    };
    let s = store.to_str().unwrap();

    // Accepted on every device that used it, then flagged on one.
    let out = baseline(&["accept", "--client", &fingerprint, "--state", s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("accepted client"));
    assert_eq!(state_of(&store).as_deref(), Some("accepted"));
    let out = baseline(&[
        "flag",
        "--client",
        &fingerprint,
        "--device",
        &mac,
        "--state",
        s,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state_of(&store).as_deref(), Some("flagged"));
    // The table for people.
    let out = baseline(&["list", "--clients", "--format", "table", "--state", s]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&fingerprint));

    // An unknown client, or a destination without a device, is refused.
    let out = baseline(&[
        "accept",
        "--client",
        "t13d0000h2_000000000000_000000000000",
        "--state",
        s,
    ]);
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = baseline(&["accept", "example.com", "--state", s]);
    assert!(!out.status.success());
    let out = baseline(&["forget", "--client", &fingerprint, "--state", s]);
    assert!(out.status.success());
    assert_eq!(state_of(&store), None);
    let _ = std::fs::remove_dir_all(&dir);
}
