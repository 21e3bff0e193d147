//! The sink against a real ClickHouse server (Debian 12's 18.16, installed
//! by `scripts/setup.sh --test`), started by each test on a loopback port
//! with its config and data under the test's own directory, and stopped by
//! its PID.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tetherscope_history::clickhouse::{Client, Target};
use tetherscope_history::{Config, Sink};

const SERVER: &str = "/usr/sbin/clickhouse-server";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ts-history-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A clickhouse-server of the test's own.
struct Server {
    child: Option<Child>,
    dir: PathBuf,
    http: u16,
}

impl Server {
    fn start(dir: &Path) -> Server {
        assert!(
            Path::new(SERVER).exists(),
            "{SERVER} missing: run scripts/setup.sh --test"
        );
        std::fs::create_dir_all(dir).unwrap();
        let (http, tcp) = (free_port(), free_port());
        let d = dir.display();
        std::fs::write(
            dir.join("config.xml"),
            format!(
                r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog></logger>
  <http_port>{http}</http_port><tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path><tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
  <mlock_executable>false</mlock_executable>
</yandex>
"#
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("users.xml"),
            r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
    <sensor><password>right</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></sensor>
  </users>
  <quotas><default></default></quotas>
</yandex>
"#,
        )
        .unwrap();
        let mut s = Server {
            child: None,
            dir: dir.to_owned(),
            http,
        };
        s.resume();
        s
    }

    /// Starts the server (again) on the same ports and data.
    fn resume(&mut self) {
        assert!(self.child.is_none());
        let started = Instant::now();
        let child = Command::new(SERVER)
            .arg(format!("--config-file={}/config.xml", self.dir.display()))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start clickhouse-server");
        self.child = Some(child);
        while TcpStream::connect(("127.0.0.1", self.http)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "clickhouse-server did not listen within 60 s: {}",
                std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("clickhouse-server listening after {:?}", started.elapsed());
    }

    /// Stops the server by its PID and waits for it.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on the PID of our own child.
            unsafe { libc_kill(c.id() as i32, 15) };
            let until = Instant::now() + Duration::from_secs(30);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    fn admin(&self) -> Client {
        Client::new(target(&self.url(), "", ""))
    }

    /// Creates the schema shipped in deploy/clickhouse, statement by statement.
    fn create_schema(&self) {
        let ddl = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/clickhouse/flows.sql"
        ))
        .unwrap();
        let base = format!("{}/?allow_experimental_low_cardinality_type=1", self.url());
        for stmt in statements(&ddl) {
            if stmt.starts_with("SET ") {
                continue;
            }
            let out = Command::new("curl")
                .args(["-sS", "--fail-with-body", "--data-binary", &stmt, &base])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{stmt}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }

    fn query(&self, sql: &str) -> String {
        self.admin()
            .query(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// The statements of an SQL file: split at ";" ending a line, comments out.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let line = line.split("--").next().unwrap_or("").trim_end();
        if line.trim().is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if line.ends_with(';') {
            out.push(cur.trim().trim_end_matches(';').to_owned());
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

fn target(url: &str, user: &str, password: &str) -> Target {
    Target {
        url: url.into(),
        table: "tetherscope.flows".into(),
        user: user.into(),
        password: password.into(),
    }
}

fn config(url: &str, spool: &Path, password: &str) -> Config {
    Config {
        target: target(url, "sensor", password),
        sensor: "laptop-1".into(),
        spool_dir: spool.to_owned(),
        spool_max_bytes: 64 << 20,
        batch_rows: 20,
        batch_delay: Duration::from_millis(200),
        finish_grace: Duration::from_secs(5),
    }
}

/// Flow record `i` as the flow log writes it (docs/reading.md).
fn record(i: u32) -> Vec<u8> {
    // Days change every 25 records; batches still hold one day each.
    let first = format!(
        "2026-03-0{}T10:00:{:02}.{:06}Z",
        1 + (i / 25) % 3,
        i % 60,
        i
    );
    serde_json::to_vec(&serde_json::json!({
        "transport": "tcp", "client_ip": "10.42.0.50", "client_port": 40_000 + i,
        "server_ip": "192.0.2.7", "server_port": 443, "client_mac": "02:00:00:00:00:01",
        "first_seen": first, "last_seen": first, "packets_up": 3, "packets_down": 2,
        "bytes_up": 300, "bytes_down": 200, "tcp_state": "closed", "app_protocol": "tls",
        "domain": format!("host{}.example.com", i % 7), "name_source": "sni", "sni": null,
        "alpn": ["h2"], "ech": null, "quic_version": null, "http_host": null,
        "http_method": null, "http_path": null, "dns_query": null, "cname_chain": [],
        "cleartext": false, "truncated_packets": 0, "novelty": "new", "purpose": "ads",
        "owner": "Example", "rule": "example", "verdict": "unexpected", "site": "example.com",
        "cleartext_known": null
    }))
    .unwrap()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(server: &Server) -> u64 {
    server
        .query("SELECT count() FROM tetherscope.flows")
        .trim()
        .parse()
        .unwrap()
}

/// A loopback TCP proxy that, for the next `lose` INSERT requests, lets the
/// server carry out the insert but closes the client's connection instead of
/// relaying the answer: an acknowledgement lost on the way.
struct LossyProxy {
    port: u16,
    lose: Arc<AtomicU32>,
    lost: Arc<AtomicU32>,
}

impl LossyProxy {
    fn start(upstream: u16, lose: u32) -> LossyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lose = Arc::new(AtomicU32::new(lose));
        let lost = Arc::new(AtomicU32::new(0));
        let (l, n) = (lose.clone(), lost.clone());
        std::thread::spawn(move || {
            // Bounded: the test's connections only, then the thread ends
            // with the test process.
            for conn in listener.incoming().take(10_000) {
                let Ok(client) = conn else { continue };
                let (l, n) = (l.clone(), n.clone());
                std::thread::spawn(move || relay(client, upstream, &l, &n));
            }
        });
        LossyProxy { port, lose, lost }
    }
}

/// Relays one connection (which may carry several requests: the client
/// keeps connections open). An INSERT to be lost is carried out by the
/// server; its answer is read and the client's connection closed instead.
fn relay(client: TcpStream, upstream: u16, lose: &Arc<AtomicU32>, lost: &Arc<AtomicU32>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let drop_next = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (flag, lose) = (drop_next.clone(), lose.clone());
    let up = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(n) = c_in.read(&mut buf) {
            if n == 0 {
                break;
            }
            let insert = String::from_utf8_lossy(&buf[..n]).contains("query=INSERT");
            if insert
                && lose
                    .fetch_update(Relaxed, Relaxed, |v| v.checked_sub(1))
                    .is_ok()
            {
                flag.store(true, Relaxed);
            }
            if s_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_out.shutdown(Shutdown::Write);
    });
    let (mut s_in, mut c_out) = (server, client);
    let mut buf = vec![0u8; 64 << 10];
    while let Ok(n) = s_in.read(&mut buf) {
        if n == 0 {
            break;
        }
        if drop_next.load(Relaxed) {
            // The server has answered the insert: it is stored.
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
            lost.fetch_add(1, Relaxed);
            break;
        }
        if c_out.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = c_out.shutdown(Shutdown::Both);
    let _ = s_in.shutdown(Shutdown::Both);
    let _ = up.join();
}

#[test]
fn a_lost_acknowledgement_is_not_sent_twice() {
    let dir = scratch("lost-ack");
    let server = Server::start(&dir.join("server"));
    server.create_schema();
    let proxy = LossyProxy::start(server.http, 2);
    let sink = Sink::start(config(
        &format!("http://127.0.0.1:{}", proxy.port),
        &dir.join("spool"),
        "right",
    ))
    .unwrap();
    let stats = sink.stats();
    for i in 0..100 {
        sink.send(&record(i));
    }
    wait_for("100 rows acknowledged", Duration::from_secs(60), || {
        stats.rows_sent.load(Relaxed) == 100
    });
    sink.finish();
    assert_eq!(
        proxy.lost.load(Relaxed),
        2,
        "two acknowledgements were lost"
    );
    assert_eq!(proxy.lose.load(Relaxed), 0);
    // Stored once: the two batches whose answer was lost were found by
    // their id and not sent again.
    assert_eq!(count(&server), 100);
    assert_eq!(
        server
            .query("SELECT uniqExact(first_seen_us) FROM tetherscope.flows")
            .trim(),
        "100"
    );
    assert_eq!(stats.rows_retried.load(Relaxed), 0);
    assert_eq!(
        server
            .query("SELECT groupUniqArray(sensor), groupUniqArray(device) FROM tetherscope.flows")
            .trim(),
        "['laptop-1']\t['02:00:00:00:00:01']"
    );
    // Batches never straddle a day: each batch id has one day.
    assert_eq!(
        server
            .query("SELECT max(d) FROM (SELECT uniqExact(toDate(first_seen)) AS d FROM tetherscope.flows GROUP BY batch_id)")
            .trim(),
        "1"
    );
    assert_eq!(std::fs::read_dir(dir.join("spool")).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_outage_spools_and_a_restart_resends_once() {
    let dir = scratch("outage");
    let mut server = Server::start(&dir.join("server"));
    server.create_schema();
    server.stop();
    let spool = dir.join("spool");
    let sink = Sink::start(config(&server.url(), &spool, "right")).unwrap();
    let stats = sink.stats();
    for i in 0..60 {
        sink.send(&record(i));
    }
    wait_for("60 rows spooled", Duration::from_secs(20), || {
        stats.spool_rows.load(Relaxed) == 60
    });
    assert!(!stats.up.load(Relaxed));
    assert!(stats.spool_bytes.load(Relaxed) > 0);
    sink.finish();
    // The process is gone; the spool is on disk.
    let files = std::fs::read_dir(&spool).unwrap().count();
    assert!(
        files >= 3,
        "60 rows in batches of at most 20: {files} files"
    );
    server.resume();
    let sink = Sink::start(config(&server.url(), &spool, "right")).unwrap();
    let stats = sink.stats();
    wait_for("the spool drained", Duration::from_secs(60), || {
        stats.rows_sent.load(Relaxed) == 60
    });
    assert!(stats.up.load(Relaxed));
    assert_eq!(stats.spool_bytes.load(Relaxed), 0);
    assert_eq!(count(&server), 60);
    // A crash after an insert and before its removal: the batch is back in
    // the spool at the next start, found by its id, and not sent again.
    for i in 60..80 {
        sink.send(&record(i));
    }
    let copy = dir.join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    let mut saved = Vec::new();
    wait_for("a batch spooled", Duration::from_secs(20), || {
        for e in std::fs::read_dir(&spool).unwrap().flatten() {
            if !e.file_name().to_string_lossy().ends_with(".tmp")
                && std::fs::copy(e.path(), copy.join(e.file_name())).is_ok()
            {
                saved.push(e.file_name());
            }
        }
        !saved.is_empty()
    });
    wait_for("80 rows", Duration::from_secs(30), || {
        stats.rows_sent.load(Relaxed) == 80
    });
    sink.finish();
    assert_eq!(count(&server), 80);
    for name in &saved {
        std::fs::rename(copy.join(name), spool.join(name)).unwrap();
    }
    let sink = Sink::start(config(&server.url(), &spool, "right")).unwrap();
    let stats = sink.stats();
    wait_for(
        "the restored batch looked up",
        Duration::from_secs(30),
        || stats.rows_sent.load(Relaxed) > 0,
    );
    sink.finish();
    assert_eq!(count(&server), 80, "a stored batch was sent again");
    assert_eq!(stats.rows_retried.load(Relaxed), 0);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_refused_batch_stays_spooled_until_the_server_accepts_it() {
    let dir = scratch("refused");
    let server = Server::start(&dir.join("server"));
    server.create_schema();
    let spool = dir.join("spool");
    let sink = Sink::start(config(&server.url(), &spool, "wrong")).unwrap();
    let stats = sink.stats();
    for i in 0..30 {
        sink.send(&record(i));
    }
    wait_for("30 rows spooled", Duration::from_secs(20), || {
        stats.spool_rows.load(Relaxed) == 30
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(!stats.up.load(Relaxed));
    assert_eq!(stats.rows_sent.load(Relaxed), 0);
    assert_eq!(count(&server), 0);
    sink.finish();
    let sink = Sink::start(config(&server.url(), &spool, "right")).unwrap();
    let stats = sink.stats();
    wait_for("30 rows", Duration::from_secs(30), || {
        stats.rows_sent.load(Relaxed) == 30
    });
    sink.finish();
    assert_eq!(count(&server), 30);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_spool_drops_the_oldest_and_counts_them() {
    let dir = scratch("full");
    let spool = dir.join("spool");
    // Nothing listens there: every batch stays spooled.
    let url = format!("http://127.0.0.1:{}", free_port());
    let mut cfg = config(&url, &spool, "x");
    cfg.spool_max_bytes = 4096;
    cfg.batch_rows = 10;
    // Batches close by count only (however slowly the records come), the
    // two last ones of 5 rows at the stop.
    cfg.batch_delay = Duration::from_secs(60);
    let sink = Sink::start(cfg).unwrap();
    let stats = sink.stats();
    for i in 0..400 {
        sink.send(&record(i));
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    wait_for(
        "390 rows spooled or dropped",
        Duration::from_secs(20),
        || stats.spool_rows.load(Relaxed) + stats.dropped_spool_full.load(Relaxed) == 390,
    );
    sink.finish();
    assert_eq!(
        stats.spool_rows.load(Relaxed) + stats.dropped_spool_full.load(Relaxed),
        400
    );
    let dropped = stats.dropped_spool_full.load(Relaxed);
    assert!(
        dropped > 0 && dropped.is_multiple_of(10),
        "dropped {dropped}"
    );
    let on_disk: u64 = std::fs::read_dir(&spool)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 4096, "{on_disk} bytes spooled");
    assert_eq!(stats.spool_bytes.load(Relaxed), on_disk);
    let _ = std::fs::remove_dir_all(&dir);
}

/// RFC 3339 (the flow record's form) of a Unix time in microseconds.
fn rfc3339(us: u64) -> String {
    let secs = us / 1_000_000;
    let days = secs / 86_400;
    // Civil from days (H. Hinnant's algorithm), the inverse of the sink's.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        us % 1_000_000
    )
}

const PHONE: &str = "02:42:0a:2a:00:32";

/// A flow record `ago_s` seconds old with `fields` over a TLS default.
fn flow(now_us: u64, ago_s: u64, port: u32, fields: serde_json::Value) -> Vec<u8> {
    let t = rfc3339(now_us - ago_s * 1_000_000);
    let mut r = serde_json::from_slice::<serde_json::Value>(&record(port)).unwrap();
    r["first_seen"] = t.clone().into();
    r["last_seen"] = t.into();
    r["client_mac"] = PHONE.into();
    r["novelty"] = "known".into();
    r["verdict"] = "expected".into();
    r["purpose"] = "os".into();
    for (k, v) in fields.as_object().unwrap() {
        r[k.as_str()] = v.clone();
    }
    serde_json::to_vec(&r).unwrap()
}

fn rows(server: &Server, sql: &str) -> Vec<Vec<String>> {
    server
        .query(&format!("{sql} FORMAT TSV"))
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

#[test]
fn the_ten_documented_queries_return_the_right_rows() {
    let dir = scratch("queries");
    let server = Server::start(&dir.join("server"));
    server.create_schema();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Every recent flow is at most 300 s old: keep them on today's date.
    if now_s % 86_400 < 400 {
        std::thread::sleep(Duration::from_secs(400 - now_s % 86_400));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let http = |path: &str| {
        serde_json::json!({"transport": "tcp", "server_port": 80, "app_protocol": "http",
            "domain": "xtrapath3.izatcloud.net", "http_host": "xtrapath3.izatcloud.net",
            "http_method": "GET", "http_path": path, "cleartext": true, "purpose": "location",
            "bytes_up": 100, "bytes_down": 16_384})
    };
    let tracker = |novelty: &str| {
        serde_json::json!({"domain": "beacon.tracker.example.com", "purpose": "tracking",
            "verdict": "unexpected", "novelty": novelty, "bytes_up": 50, "bytes_down": 60})
    };
    let sensors: [(&str, Vec<Vec<u8>>); 2] = [
        (
            "sensor-1",
            vec![
                flow(now, 120, 1, http("/xtra3grc.bin")),
                flow(now, 200, 2, tracker("new")),
                flow(
                    now,
                    150,
                    3,
                    serde_json::json!({"domain": null, "server_ip": "203.0.113.50",
                    "bytes_up": 10, "bytes_down": 10}),
                ),
                flow(
                    now,
                    100,
                    4,
                    serde_json::json!({"client_mac": "02:00:00:00:00:0b",
                    "transport": "udp", "server_port": 53, "app_protocol": "dns",
                    "domain": "example.org", "dns_query": "example.org", "cleartext": true,
                    "bytes_up": 70, "bytes_down": 90}),
                ),
            ],
        ),
        (
            "sensor-2",
            vec![
                flow(now, 60, 5, http("/xtra3grc.bin")),
                flow(now, 40 * 86_400, 6, tracker("new")),
                flow(
                    now,
                    40 * 86_400,
                    7,
                    serde_json::json!({"client_mac": "02:00:00:00:00:0c",
                    "domain": "xtrapath1.izatcloud.net"}),
                ),
            ],
        ),
    ];
    for (sensor, records) in &sensors {
        let mut cfg = config(&server.url(), &dir.join(format!("spool-{sensor}")), "right");
        cfg.sensor = (*sensor).into();
        let sink = Sink::start(cfg).unwrap();
        let stats = sink.stats();
        for r in records {
            sink.send(r);
        }
        wait_for("rows stored", Duration::from_secs(30), || {
            stats.rows_sent.load(Relaxed) == records.len() as u64
        });
        sink.finish();
    }
    assert_eq!(count(&server), 7);

    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/flow-history.md"
    ))
    .unwrap();
    let mut queries = Vec::new();
    let mut rest = doc.as_str();
    while let Some(i) = rest.find("\n### Q") {
        rest = &rest[i + 1..];
        let body = rest.split_once("```sql\n").unwrap().1;
        let sql = body.split_once("```").unwrap().0;
        let sql: Vec<&str> = sql.lines().map(|l| l.split("--").next().unwrap()).collect();
        queries.push(sql.join("\n"));
    }
    assert_eq!(queries.len(), 10, "docs/flow-history.md holds ten queries");
    let q = |n: usize| rows(&server, &queries[n - 1]);
    let col =
        |r: &[Vec<String>], i: usize| -> Vec<String> { r.iter().map(|x| x[i].clone()).collect() };

    // Q1: the phones that contacted izatcloud.net in 30 days; not the one
    // that did 40 days ago.
    let r = q(1);
    assert_eq!(col(&r, 0), ["sensor-1", "sensor-2"]);
    assert_eq!(col(&r, 1), [PHONE, PHONE]);
    assert_eq!(col(&r, 2), ["1", "1"]);
    // Q2: what the phone sent in the clear today, on both sensors.
    let r = q(2);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(
        r.iter().all(|x| x[5] == "/xtra3grc.bin" && x[3] == "GET"),
        "{r:?}"
    );
    // Q3: the tracker first appeared 40 days ago on sensor-2, on two phones since.
    let r = q(3);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0][0], "beacon.tracker.example.com");
    assert_eq!(
        (r[0][2].as_str(), r[0][3].as_str(), r[0][4].as_str()),
        ("sensor-2", PHONE, "2")
    );
    // Q4: each sensor's XTRA download.
    let r = q(4);
    assert_eq!(col(&r, 0), ["sensor-1", "sensor-2"]);
    assert!(r
        .iter()
        .all(|x| x[1] == PHONE && x[4] == "/xtra3grc.bin" && x[5] == "16384"));
    // Q5: per sensor, the largest destination first; unnamed ones by address.
    let r = q(5);
    assert_eq!(r[0][..2], ["sensor-1", "xtrapath3.izatcloud.net"]);
    assert!(
        r.iter().any(|x| x[..2] == ["sensor-1", "203.0.113.50"]),
        "{r:?}"
    );
    assert_eq!(r.iter().filter(|x| x[0] == "sensor-2").count(), 1, "{r:?}");
    // Q6: new in 7 days: the tracker on sensor-1 only.
    let r = q(6);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0][..3], ["sensor-1", PHONE, "beacon.tracker.example.com"]);
    // Q7: unexpected flows on two days, one per sensor.
    let r = q(7);
    assert_eq!(col(&r, 1), ["sensor-2", "sensor-1"]);
    assert_eq!(col(&r, 2), ["tracking", "tracking"]);
    // Q8: cleartext bytes today: the XTRA downloads and the DNS lookup.
    let r = q(8);
    let got: Vec<(String, String, String)> = r
        .iter()
        .map(|x| (x[1].clone(), x[2].clone(), x[4].clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("sensor-1".into(), "02:00:00:00:00:0b".into(), "90".into()),
            ("sensor-1".into(), PHONE.into(), "16384".into()),
            ("sensor-2".into(), PHONE.into(), "16384".into()),
        ]
    );
    // Q9: the one flow without a name.
    assert_eq!(q(9), [["sensor-1", "203.0.113.50", "443", "tcp", "1", "1"]]);
    // Q10: sensor-1's phone, by hour: its three recent flows.
    let r = q(10);
    let flows: u64 = r.iter().map(|x| x[1].parse::<u64>().unwrap()).sum();
    assert_eq!(flows, 3, "{r:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A loopback listener that accepts every connection and never answers:
/// a server that hangs. Counts the connections; ends with the test process
/// (at most a few connections are made).
fn silent_server() -> (u16, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicU32::new(0));
    let n = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().take(100).flatten() {
            n.fetch_add(1, Relaxed);
            held.push(c);
        }
    });
    (port, accepted)
}

#[test]
fn a_server_that_never_answers_holds_up_the_stop_a_few_seconds_and_loses_nothing() {
    let dir = scratch("hang");
    let spool = dir.join("spool");
    let (port, accepted) = silent_server();
    let hanging = format!("http://127.0.0.1:{port}");
    let mut cfg = config(&hanging, &spool, "right");
    cfg.finish_grace = Duration::from_secs(10);

    // The stop comes first: its one try waits the stopping limit, not the
    // usual half minute.
    cfg.batch_delay = Duration::from_secs(3600);
    cfg.batch_rows = 1000;
    let sink = Sink::start(cfg.clone()).unwrap();
    let stats = sink.stats();
    for i in 0..30 {
        sink.send(&record(i));
    }
    let stop = Instant::now();
    sink.finish();
    let took = stop.elapsed();
    assert!(
        accepted.load(Relaxed) >= 1,
        "the last try reached the server"
    );
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(8),
        "stopped in {took:?}"
    );
    assert_eq!(stats.spool_rows.load(Relaxed), 30);
    assert_eq!(stats.rows_sent.load(Relaxed), 0);

    // The server hangs already when the stop comes, on a request waiting
    // for the usual half minute: the stop still returns within its grace.
    cfg.batch_delay = Duration::from_millis(100);
    cfg.batch_rows = 20;
    cfg.finish_grace = Duration::from_secs(2);
    let before = accepted.load(Relaxed);
    let sink = Sink::start(cfg.clone()).unwrap();
    for i in 30..60 {
        sink.send(&record(i));
    }
    wait_for("an insert in flight", Duration::from_secs(20), || {
        accepted.load(Relaxed) > before
    });
    let stop = Instant::now();
    sink.finish();
    let took = stop.elapsed();
    assert!(took < Duration::from_secs(4), "stopped in {took:?}");

    // Nothing was lost: the next start, with a server that answers, sends
    // every row once.
    let server = Server::start(&dir.join("server"));
    server.create_schema();
    let sink = Sink::start(config(&server.url(), &spool, "right")).unwrap();
    let stats = sink.stats();
    wait_for("the spool drained", Duration::from_secs(60), || {
        stats.rows_sent.load(Relaxed) == 60
    });
    sink.finish();
    assert_eq!(count(&server), 60);
    assert_eq!(
        server
            .query("SELECT uniqExact(client_port) FROM tetherscope.flows")
            .trim(),
        "60"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
