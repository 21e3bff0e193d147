//! A silent interface: `run` must never wait on traffic. Two network
//! namespaces joined by a veth pair, nothing on the wire but what the test
//! sends. With no packet ever, SIGTERM ends `run` within 2 s. After a
//! bounded burst, the capture counters reach exactly the packets sent while
//! the link stays quiet, the flow left open is finished by its idle timeout
//! with no further packet (and reaches the flow log), and SIGTERM exits 0
//! within 2 s with the still-active flow flushed to the log.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::sim::{parse_metrics, skip_without_root, value, wait_for};

/// Two namespaces and a veth pair, deleted on drop.
struct Link {
    sender: String,
    monitor: String,
    dir: PathBuf,
    running: Option<Child>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Link {
    fn up(id: &str) -> Link {
        let link = Link {
            sender: format!("ts{id}-snd"),
            monitor: format!("ts{id}-mon"),
            dir: std::env::temp_dir().join(format!("tetherscope-silent-{id}")),
            running: None,
        };
        std::fs::create_dir_all(&link.dir).unwrap();
        for ns in [&link.sender, &link.monitor] {
            ip(&["netns", "add", ns]);
            // No IPv6: no router solicitations or DAD on the quiet link.
            link.exec(
                ns,
                &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
            );
            link.exec(ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link",
            "add",
            "sv0",
            "netns",
            &link.sender,
            "type",
            "veth",
            "peer",
            "name",
            "mv0",
            "netns",
            &link.monitor,
        ]);
        ip(&[
            "-n",
            &link.sender,
            "addr",
            "add",
            "192.0.2.1/24",
            "dev",
            "sv0",
        ]);
        ip(&[
            "-n",
            &link.monitor,
            "addr",
            "add",
            "192.0.2.2/24",
            "dev",
            "mv0",
        ]);
        ip(&["-n", &link.sender, "link", "set", "sv0", "up"]);
        ip(&["-n", &link.monitor, "link", "set", "mv0", "up"]);
        link
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    /// `tetherscope run` on the monitor's side, counting only what the
    /// sender sends.
    fn start(&mut self, flow_log: &Path) -> u32 {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.monitor, common::bin(), "run"])
            .args(["--interface", "mv0", "--listen", "127.0.0.1:9433"])
            .args(["--filter", "udp and src host 192.0.2.1"])
            .arg("--state")
            .arg(self.dir.join("state.db"))
            .arg("--flow-log")
            .arg(flow_log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tetherscope");
        let pid = child.id();
        self.running = Some(child);
        let healthy = wait_for(Duration::from_secs(15), || {
            self.get("/healthz").filter(|h| h.contains("true"))
        });
        assert!(healthy.is_some(), "tetherscope never became healthy");
        pid
    }

    fn get(&self, path: &str) -> Option<String> {
        let url = format!("http://127.0.0.1:9433{path}");
        let out = self.exec(&self.monitor, &["curl", "-sf", "--max-time", "3", &url]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn metrics(&self) -> Option<std::collections::HashMap<String, f64>> {
        Some(parse_metrics(&self.get("/metrics")?))
    }

    /// `count` DNS questions from one socket of the sender.
    fn send_dns(&self, count: u32, port: u16) {
        let script = format!(
            "import socket\n\
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             s.bind(('192.0.2.1', {port}))\n\
             q = bytes.fromhex('abcd01000001000000000000') + b'\\x08xtrapath\\x09izatcloud\\x03net\\x00\\x00\\x01\\x00\\x01'\n\
             for _ in range({count}): s.sendto(q, ('192.0.2.2', 53))\n"
        );
        let out = self.exec(&self.sender, &["timeout", "10", "python3", "-c", &script]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGTERM; how long the monitor took to exit, and whether it said 0.
    fn terminate(&mut self, pid: u32) -> (Duration, bool) {
        let sent = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let mut child = self.running.take().expect("a running monitor");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (sent.elapsed(), status.success());
            }
            if sent.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                return (sent.elapsed(), false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(mut c) = self.running.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.sender, &self.monitor] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn log_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn a_silent_interface_never_blocks_shutdown_expiry_or_counters() {
    if skip_without_root("silent-interface") {
        return;
    }
    let mut link = Link::up(&format!("s{}", std::process::id() % 10_000));
    let log = link.dir.join("flows.jsonl");

    // Not one packet, ever: SIGTERM is still obeyed at once.
    let pid = link.start(&log);
    std::thread::sleep(Duration::from_secs(2));
    let (took, ok) = link.terminate(pid);
    assert!(ok, "no clean exit on a silent interface");
    assert!(took < Duration::from_secs(2), "exit took {took:?}");

    let pid = link.start(&log);
    const SENT: u32 = 40;
    link.send_dns(SENT, 40_053);
    // The link is quiet now: the counters still arrive, exactly.
    let counted = wait_for(Duration::from_secs(10), || {
        let m = link.metrics()?;
        let captured = value(
            &m,
            "tetherscope_capture_packets_total",
            &[("interface", "mv0")],
        );
        let ingested = value(&m, "tetherscope_pipeline_packets_total", &[]);
        (captured == f64::from(SENT) && ingested == f64::from(SENT)).then_some(())
    });
    assert!(
        counted.is_some(),
        "capture counters never reached {SENT}: {:?}",
        link.get("/metrics")
    );
    let active = link.get("/api/flows").unwrap_or_default();
    assert!(active.contains("xtrapath.izatcloud.net"), "{active}");
    assert!(log_lines(&log).is_empty(), "finished before its time");

    // No further packet: the DNS flow's idle timeout (30 s) finishes it, and
    // the buffered flow log receives it within a second or so.
    let expired = wait_for(Duration::from_secs(50), || {
        let lines = log_lines(&log);
        (lines.len() == 1).then_some(lines)
    })
    .expect("the idle flow never finished on the quiet link");
    assert_eq!(expired[0]["dns_query"], "xtrapath.izatcloud.net");
    assert_eq!(expired[0]["packets_up"], u64::from(SENT));
    let m = link.metrics().unwrap();
    assert!(
        value(
            &m,
            "tetherscope_flow_evictions_total",
            &[("reason", "idle_timeout")]
        ) >= 1.0
    );
    assert_eq!(value(&m, "tetherscope_active_flows", &[]), 0.0);

    // One more flow, then quiet, then SIGTERM: out within 2 s, flow logged.
    link.send_dns(1, 40_054);
    let seen = wait_for(Duration::from_secs(10), || {
        let m = link.metrics()?;
        (value(&m, "tetherscope_capture_packets_total", &[]) == f64::from(SENT + 1)).then_some(())
    });
    assert!(seen.is_some(), "the last packet was never counted");
    std::thread::sleep(Duration::from_secs(2));
    let (took, ok) = link.terminate(pid);
    assert!(ok, "exit status not 0");
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["client_port"], 40_054);
}
