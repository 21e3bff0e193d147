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
fn thread_caps(pid: u32) -> Vec<(String, u64)> {
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
