//! The HTTP listener of the real binary, on the wire (`replay` of a fixture
//! on a loopback port; no root needed): what it answers to malformed
//! addressing, when it reads a body, how the login address works, and that
//! silent connections neither exhaust its descriptors nor keep `/healthz`
//! from answering.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

/// A `replay` of the seed capture serving on a free loopback port, with a
/// store (so triage is possible); ended and cleaned up when dropped.
struct Monitor {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Monitor {
    /// Starts it, under `prlimit ARGS` when given, and waits until it serves.
    fn start(test: &str, prlimit: &[&str]) -> Monitor {
        Self::start_on(test, prlimit, |_| {})
    }

    /// [`Monitor::start`], after `prepare` has had the store's directory.
    fn start_on(test: &str, prlimit: &[&str], prepare: impl FnOnce(&std::path::Path)) -> Monitor {
        let dir = std::env::temp_dir().join(format!(
            "tetherscope-listener-{}-{test}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        prepare(&dir);
        let port = common::free_port();
        let child = Self::spawn(&dir, port, prlimit);
        let monitor = Monitor { child, port, dir };
        monitor.wait_served();
        monitor
    }

    fn spawn(dir: &std::path::Path, port: u16, prlimit: &[&str]) -> Child {
        let mut cmd = if prlimit.is_empty() {
            Command::new(common::bin())
        } else {
            let mut c = Command::new("prlimit");
            c.args(prlimit).arg("--").arg(common::bin());
            c
        };
        cmd.args(["replay", "--learn-for", "0", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--state")
            .arg(dir.join("state.db"))
            .arg(common::fixture("seed-domains.pcap"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn wait_served(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.token().is_none() || !self.healthy(Duration::from_secs(2)) {
            assert!(Instant::now() < deadline, "the monitor never served");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops it (SIGTERM folds its flows into the store) and starts it
    /// again on the same store and port: the capture's destinations are
    /// then in the baseline, to be triaged.
    fn restart(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(Instant::now() < deadline, "the monitor did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Self::spawn(&self.dir, self.port, &[]);
        self.wait_served();
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn token(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("token"))
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| t.len() == 64)
    }

    /// Sends `request` as is and returns what comes back within `wait`
    /// (up to the server's close, or what arrived by then).
    fn exchange(&self, request: &[u8], wait: Duration) -> String {
        let mut s = TcpStream::connect(self.host()).unwrap();
        s.set_read_timeout(Some(wait)).unwrap();
        s.write_all(request).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let until = Instant::now() + wait;
        while Instant::now() < until {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if complete(&got) {
                break;
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// The status code of `request`'s answer ("" when none came in `wait`).
    fn status(&self, request: &str, wait: Duration) -> String {
        let answer = self.exchange(request.as_bytes(), wait);
        answer
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| answer.strip_prefix("HTTP/1.0 "))
            .map(|r| r.chars().take(3).collect())
            .unwrap_or_default()
    }

    fn healthy(&self, wait: Duration) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(&self.host().parse().unwrap(), wait) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(wait));
        let request = format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host()
        );
        if s.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        got.starts_with(b"HTTP/1.1 200")
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `got` holds a whole response (headers and a body of the
/// declared length).
fn complete(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    length.is_some_and(|n| body.len() >= n)
}

const QUICK: Duration = Duration::from_secs(3);

#[test]
fn host_rules_on_the_wire() {
    let m = Monitor::start("host", &[]);
    let host = m.host();
    let ok = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
    assert_eq!(m.status(&ok, QUICK), "200");
    // HTTP/1.1 requires Host.
    assert_eq!(m.status("GET /healthz HTTP/1.1\r\n\r\n", QUICK), "400");
    // HTTP/1.0 had none: such a client is no rebinding browser.
    assert_eq!(m.status("GET /healthz HTTP/1.0\r\n\r\n", QUICK), "200");
    let twice = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nHost: {host}\r\n\r\n");
    assert_eq!(m.status(&twice, QUICK), "400");
    let twice_foreign =
        format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\n\r\n");
    assert_eq!(m.status(&twice_foreign, QUICK), "400");
    // An absolute-form target names the host that counts.
    let absolute_foreign = format!(
        "GET http://evil.example:{}/healthz HTTP/1.1\r\nHost: {host}\r\n\r\n",
        m.port
    );
    assert_eq!(m.status(&absolute_foreign, QUICK), "421");
    let absolute_ours = format!("GET http://{host}/healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
    assert_eq!(m.status(&absolute_ours, QUICK), "200");
    let foreign = "GET /healthz HTTP/1.1\r\nHost: evil.example\r\n\r\n";
    assert_eq!(m.status(foreign, QUICK), "421");
}

#[test]
fn bodies_are_read_only_after_the_checks_and_bounded() {
    let m = Monitor::start("bodies", &[]);
    let host = m.host();
    let token = m.token().unwrap();
    let post = |extra: &str, length: usize| {
        format!(
            "POST /api/baseline/accept HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{extra}Content-Length: {length}\r\n\r\n"
        )
    };
    // 2 MB announced, nothing sent: refused at once, without waiting for it.
    for extra in [
        String::new(),
        format!("X-Tetherscope-Token: {}\r\n", "0".repeat(64)),
        format!("X-Tetherscope-Token: {token}\r\nOrigin: http://evil.example\r\n"),
    ] {
        let started = Instant::now();
        assert_eq!(m.status(&post(&extra, 2_000_000), QUICK), "403", "{extra}");
        assert!(started.elapsed() < QUICK);
    }
    // Authorised, but over the limit: 413, also without reading it.
    let authorised = format!("X-Tetherscope-Token: {token}\r\n");
    assert_eq!(m.status(&post(&authorised, 2_000_000), QUICK), "413");
    let mut big = post(&authorised, 5000).into_bytes();
    big.extend(std::iter::repeat_n(b' ', 5000));
    let answer = m.exchange(&big, QUICK);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // GET routes take no body: answered without waiting for one.
    let get = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2000000\r\n\r\n");
    assert_eq!(m.status(&get, QUICK), "200");
}

#[test]
fn login_address_sets_the_cookie_and_the_cookie_allows_triage() {
    let mut m = Monitor::start("login", &[]);
    m.restart();
    let host = m.host();
    let token = m.token().unwrap();
    let open = Command::new(common::bin())
        .args(["open", "--listen", &host, "--state"])
        .arg(m.dir.join("state.db"))
        .output()
        .unwrap();
    assert!(open.status.success(), "{open:?}");
    let login = String::from_utf8_lossy(&open.stdout).trim().to_owned();
    assert_eq!(login, format!("http://{host}/login?token={token}"));

    let wrong = m.exchange(
        format!(
            "GET /login?token={} HTTP/1.1\r\nHost: {host}\r\n\r\n",
            "0".repeat(64)
        )
        .as_bytes(),
        QUICK,
    );
    assert!(wrong.starts_with("HTTP/1.1 403"), "{wrong}");
    assert!(
        !wrong.to_ascii_lowercase().contains("set-cookie"),
        "{wrong}"
    );

    let right = m.exchange(
        format!("GET /login?token={token} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
        QUICK,
    );
    assert!(right.starts_with("HTTP/1.1 303"), "{right}");
    let cookie = right
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no cookie: {right}"));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    assert_eq!(pair, format!("tetherscope-{}={token}", m.port));

    // The page itself never holds the token.
    let page = m.exchange(
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nCookie: {pair}\r\n\r\n").as_bytes(),
        QUICK,
    );
    assert!(page.starts_with("HTTP/1.1 200") && !page.contains(&token));

    let mac = "02:00:5e:00:01:82";
    let body = format!(r#"{{"device": "{mac}", "destination": "example.com"}}"#);
    let post = |headers: &str| {
        format!(
            "POST /api/baseline/flag HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    assert_eq!(m.status(&post(""), QUICK), "403");
    assert_eq!(
        m.status(
            &post(&format!(
                "Cookie: {pair}\r\nOrigin: http://evil.example\r\n"
            )),
            QUICK
        ),
        "403"
    );
    let answer = m.exchange(
        post(&format!(
            "Cookie: {pair}\r\nOrigin: http://{host}\r\nSec-Fetch-Site: same-origin\r\n"
        ))
        .as_bytes(),
        QUICK,
    );
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains(r#""state":"flagged""#),
        "{answer}"
    );
}

/// Many silent connections against a monitor allowed 128 descriptors:
/// `/healthz` keeps answering at once, and the server closes the silent
/// ones after its header timeout.
#[test]
fn silent_connections_neither_exhaust_descriptors_nor_stay() {
    let m = Monitor::start("silent", &["--nofile=128:128"]);
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..300 {
        match TcpStream::connect_timeout(&m.host().parse().unwrap(), QUICK) {
            Ok(s) => silent.push(s),
            Err(_) => break,
        }
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    assert!(silent.len() > 200, "only {} connections", silent.len());
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        let asked = Instant::now();
        assert!(
            m.healthy(QUICK),
            "/healthz did not answer among silent connections"
        );
        assert!(asked.elapsed() < QUICK);
    }
    // Each silent one is closed by the server: at the cap to make room, or
    // after the header timeout (10 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut open = 0;
    for s in &mut silent {
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .unwrap();
        let mut byte = [0u8; 1];
        match s.read(&mut byte) {
            Ok(0) => {}
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(_) => open += 1,
        }
    }
    assert_eq!(open, 0, "silent connections still open after 20 s");
    assert!(m.healthy(QUICK));
    let metrics = common::get_local(m.port, "/metrics").unwrap();
    assert!(
        metrics.contains("tetherscope_http_connections_closed_total{reason=\"evicted\"}"),
        "{metrics}"
    );
}

/// Peak resident memory of process `pid`, KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// Imports one device with `n` destinations, each with 16 long names, so
/// that one page of `/api/baseline` is several megabytes.
fn import_large_baseline(dir: &std::path::Path, n: usize) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    let entries: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let destination = format!("d{i:05}.example.org");
            let names: Vec<String> = (0..16)
                .map(|k| format!("{}{k:02}.{destination}", "n".repeat(220)))
                .collect();
            serde_json::json!({
                "device": "da:a1:19:42:00:23",
                "mac": "da:a1:19:42:00:23",
                "destination": destination,
                "state": "baseline",
                "first_seen": now - 3600.0,
                "last_seen": now - 60.0,
                "flows": 1,
                "names": names,
            })
        })
        .collect();
    let file = dir.join("import.json");
    std::fs::write(&file, serde_json::to_vec(&entries).unwrap()).unwrap();
    let out = Command::new(common::bin())
        .args(["baseline", "import"])
        .arg(&file)
        .arg("--state")
        .arg(dir.join("state.db"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Clients that ask for large answers and never read them: the monitor's
/// memory stays bounded while they hang on (large answers waiting to be
/// sent are bounded over all connections), `/healthz` keeps answering, and
/// each such connection is closed and counted (no write progress for the
/// write timeout, or refused past the bound).
#[test]
fn slow_readers_neither_pin_memory_nor_stay() {
    const CONNECTIONS: usize = 60;
    // Each page is about 8 MB: unbounded, the stalled answers alone hold
    // about 480 MB; bounded, 64 MiB plus what is being built.
    const PEAK_BOUND_KIB: u64 = 200 * 1024;
    let m = Monitor::start_on("slow", &[], |dir| import_large_baseline(dir, 2000));
    let request = format!(
        "GET /api/baseline?limit=2000 HTTP/1.1\r\nHost: {}\r\n\r\n",
        m.host()
    );
    let mut stalled = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut s = TcpStream::connect_timeout(&m.host().parse().unwrap(), QUICK).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        stalled.push(s);
    }
    // Let every answer be built (or refused).
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..3 {
        let asked = Instant::now();
        assert!(
            m.healthy(QUICK),
            "/healthz did not answer among slow readers"
        );
        assert!(asked.elapsed() < QUICK);
    }
    let peak = peak_rss_kib(m.child.id());
    eprintln!("peak RSS with {CONNECTIONS} slow readers: {peak} KiB");
    assert!(
        peak <= PEAK_BOUND_KIB,
        "peak RSS {peak} KiB over {PEAK_BOUND_KIB} KiB with {CONNECTIONS} slow readers"
    );
    // Each is closed by the server: refused past the bound at once, or
    // after the write timeout (10 s), which reading would restart: so wait
    // it out first. Reading then drains what the kernel buffered, then
    // finds the end.
    std::thread::sleep(Duration::from_secs(12));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut open = 0;
    let mut buf = vec![0u8; 1 << 16];
    for s in &mut stalled {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            s.set_read_timeout(Some(left.max(Duration::from_millis(10))))
                .unwrap();
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(_) => {
                    open += 1;
                    break;
                }
            }
        }
    }
    assert_eq!(open, 0, "slow readers still connected after 25 s");
    assert!(m.healthy(QUICK));
    let metrics = common::get_local(m.port, "/metrics").unwrap();
    let count = |reason: &str| -> u64 {
        let key = format!("tetherscope_http_connections_closed_total{{reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(count("write_timeout") >= 1, "{metrics}");
    assert_eq!(
        count("write_timeout") + count("over_budget"),
        CONNECTIONS as u64,
        "{metrics}"
    );
}
