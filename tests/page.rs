//! The page and the report in a real browser: Debian's Chromium driven by
//! playwright-core (`tests/browser/drive.mjs`, installed by
//! `scripts/setup.sh --test`). The script only acts and reports what the
//! page shows; the assertions are here.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::common;
use crate::common::sim::{skip_without_root, wait_for, Sim};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where screenshots are kept after the run (test artifacts).
fn artifacts() -> PathBuf {
    let dir = root().join("target/page-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A scratch directory unique to this test process and test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tetherscope-page-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `node drive.mjs ARGS`, inside namespace `netns` if given, bounded in time.
fn drive(netns: Option<&str>, args: &[&OsStr]) -> Output {
    let script = root().join("tests/browser/drive.mjs");
    assert!(
        root()
            .join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is missing: run scripts/setup.sh --test"
    );
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]);
            c.arg("timeout");
            c
        }
        None => Command::new("timeout"),
    };
    let out = cmd
        .arg("120")
        .arg("node")
        .arg(&script)
        .args(args)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "browser driver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Loads `url` and returns what the page showed.
fn dom(netns: Option<&str>, url: &str, out: &Path, extra: &[&str]) -> Value {
    let mut args: Vec<&OsStr> = vec![OsStr::new("dom"), OsStr::new(url), out.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    drive(netns, &args);
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

fn report(capture: &str, out: &Path) {
    let status = Command::new(common::bin())
        .args(["report", "--quiet", "-o"])
        .arg(out)
        .arg(common::fixture(capture))
        .status()
        .unwrap();
    assert!(status.success());
}

/// The text of the destination row of `destination` in section `section`.
fn row(page: &Value, section: &str, destination: &str) -> String {
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["section"] == section && r["destination"] == destination)
        .and_then(|r| r["text"].as_str())
        .unwrap_or_else(|| panic!("no row for {destination} in {section}"))
        .to_owned()
}

/// The XTRA destination with purpose, cleartext path and CNAME chain, and
/// the unlisted tracker marked unexpected.
fn assert_xtra_and_tracker(page: &Value) {
    // The XTRA destination: purpose, cleartext with its path, CNAME chain.
    let xtra = row(page, "devices", "izatcloud.net");
    for expected in [
        "gnss-assistance",
        "Qualcomm",
        "cleartext",
        "GET xtrapath3.izatcloud.net/xtra3grc.bin",
        "CNAME → xtrapath3.qcomgeo2.com → xp3.gpsonextra.net → d3nj9ptoklgw8o.cloudfront.net",
    ] {
        assert!(
            xtra.contains(expected),
            "{expected:?} not in the XTRA row: {xtra:?}"
        );
    }
    // The unlisted tracker is there, unexpected.
    let tracker = row(page, "devices", "example.com");
    assert!(
        tracker.contains("beacon.tracker.example.com") && tracker.contains("unexpected"),
        "tracker row: {tracker:?}"
    );
}

fn text_of(page: &Value) -> &str {
    page["text"].as_str().unwrap_or_default()
}

/// The injected markup of `hostile-names.pcap` is on the page as text, and
/// none of it ran.
fn assert_hostile_shown_as_text(page: &Value) {
    let text = text_of(page);
    for literal in [
        "<b>phone</b><script>window.__pwned=1</script>\"'",
        "\"><img src=x onerror=window.__pwned=2>",
        "<script>window.__pwned=3</script>'",
        "<svg onload=window.__pwned=5>",
        "/\"'><script>window.__pwned=4</script>",
    ] {
        assert!(text.contains(literal), "{literal:?} not shown as text");
    }
    assert!(
        page["pwned"].is_null(),
        "injected script ran: {}",
        page["pwned"]
    );
    assert_eq!(page["csp"], serde_json::json!([]), "CSP violations");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "control characters reached the page"
    );
}

#[test]
fn report_prints_to_pdf_with_its_destinations() {
    let dir = scratch("pdf");
    let html = dir.join("seed.html");
    report("seed-domains.pcap", &html);
    let doc = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing is fetched, nothing runs.
    assert!(!doc.contains("<script"), "report has a script");
    assert!(!doc.contains("src=\"http") && !doc.contains("href=\"http"));
    assert!(doc.contains("Content-Security-Policy"));

    let page = dom(
        None,
        &format!("file://{}", html.display()),
        &dir.join("seed.json"),
        &[],
    );
    assert_eq!(page["scripts"], 0);
    let pdf = dir.join("seed.pdf");
    drive(
        None,
        &[
            OsStr::new("pdf"),
            OsStr::new(&format!("file://{}", html.display())),
            pdf.as_os_str(),
        ],
    );
    let out = Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext (scripts/setup.sh --test installs poppler-utils)");
    assert!(out.status.success());
    // Narrow columns break long names across lines: compare without spaces.
    let squeezed: String = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect();
    for expected in [
        "seed-domains.pcap",
        "izatcloud.net",
        "gnss-assistance",
        "xtrapath3.qcomgeo2.com",
        "/xtra3grc.bin",
        "calyxinstitute.org",
        "gstatic.com",
        "google.com",
        "example.com",
        "203.0.113.50",
        "DNS questions and answers",
        "Blind spots",
        "What could not be parsed",
    ] {
        let expected: String = expected.split_whitespace().collect();
        assert!(
            squeezed.contains(&expected),
            "{expected:?} missing from the PDF:\n{squeezed}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_defaults_to_the_capture_name_and_refuses_non_captures() {
    let dir = scratch("default-name");
    let capture = dir.join("phone.pcap");
    std::fs::copy(common::fixture("seed-domains.pcap"), &capture).unwrap();
    let out = Command::new(common::bin())
        .arg("report")
        .arg(&capture)
        .output()
        .unwrap();
    assert!(out.status.success());
    let written = dir.join("phone.html");
    assert!(written.exists(), "no {}", written.display());
    assert!(String::from_utf8_lossy(&out.stderr).contains("phone.html"));
    // Nothing half-written is left behind.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    let bogus = dir.join("notes.txt");
    std::fs::write(&bogus, "not a capture").unwrap();
    let out = Command::new(common::bin())
        .args(["report", "-o"])
        .arg(dir.join("notes.html"))
        .arg(&bogus)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a capture file") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!dir.join("notes.html").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_shows_hostile_names_as_text() {
    let dir = scratch("hostile-report");
    let html = dir.join("hostile.html");
    report("hostile-names.pcap", &html);
    let page = dom(
        None,
        &format!("file://{}", html.display()),
        &dir.join("hostile.json"),
        &[
            "--phone",
            artifacts()
                .join("report-hostile-phone.png")
                .to_str()
                .unwrap(),
        ],
    );
    assert_hostile_shown_as_text(&page);
    assert_eq!(page["scripts"], 0);
    assert_eq!(
        page["phoneOverflow"], false,
        "the report scrolls sideways on a phone"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `run` on the simulated hotspot: the page shows what the phone did, live,
/// escapes hostile names, refuses a foreign Host, and stays scrapeable.
#[test]
fn live_page_on_simulated_hotspot() {
    if skip_without_root("live_page_on_simulated_hotspot") {
        return;
    }
    let id = format!("pg{}", std::process::id() % 100_000);
    let mut sim = Sim::up(&id);
    sim.start_monitor(&[]);
    let laptop = sim.ns("laptop");
    let dir = scratch("live");
    let url = "http://127.0.0.1:9433/";

    let out = sim.script(&["traffic", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let named = wait_for(Duration::from_secs(20), || {
        sim.get("/api/view").filter(|v| v.contains("izatcloud.net"))
    });
    assert!(named.is_some(), "the view never named the XTRA flows");

    let shot = artifacts().join("page.png");
    let phone = artifacts().join("page-phone.png");
    let page = dom(
        Some(&laptop),
        url,
        &dir.join("page.json"),
        &[
            "--wait",
            "izatcloud.net",
            "--screenshot",
            shot.to_str().unwrap(),
            "--phone",
            phone.to_str().unwrap(),
        ],
    );
    let text = text_of(&page);
    assert_eq!(page["status"], 200);
    // The script ran (CSP allows it) and redrew from /api/view.
    assert!(
        !page["updated"].is_null(),
        "the page's script never redrew it"
    );
    assert_eq!(
        page["scriptSources"],
        serde_json::json!(["/assets/page.js"])
    );
    // Until this build has a baseline store, the page's request for it is
    // answered 404 (the only error allowed).
    let baseline = sim.get("/api/baseline").is_some();
    let errors: Vec<&Value> = page["consoleErrors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| baseline || !e.as_str().unwrap_or("").contains("status of 404"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let headers = &page["headers"];
    assert!(headers["content-security-policy"]
        .as_str()
        .is_some_and(|c| c.contains("frame-ancestors 'none'") && c.contains("script-src 'self'")));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_xtra_and_tracker(&page);
    for expected in [
        "randomised",
        "Bytes by purpose over time",
        "Blind spots",
        "Active now",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} not on the page:\n{text}"
        );
    }
    assert_eq!(
        page["phoneOverflow"], false,
        "the page scrolls sideways on a phone"
    );
    assert_eq!(
        page["firstTab"], "Skip to devices",
        "keyboard: first Tab stop"
    );

    // Hostile names, as if the phone sent them: shown as text, never run.
    let injected = Command::new("ip")
        .args([
            "netns",
            "exec",
            &sim.ns("phone"),
            "timeout",
            "20",
            "python3",
        ])
        .arg(common::support("inject.py"))
        .arg("wlan0")
        .arg(common::fixture("hostile-names.pcap"))
        .output()
        .unwrap();
    assert!(
        injected.status.success(),
        "{}",
        String::from_utf8_lossy(&injected.stderr)
    );
    let seen = wait_for(Duration::from_secs(20), || {
        sim.get("/api/view").filter(|v| v.contains("evil.example"))
    });
    assert!(seen.is_some(), "the view never showed the injected flows");
    let hostile = dom(
        Some(&laptop),
        url,
        &dir.join("hostile.json"),
        &[
            "--wait",
            "evil.example",
            "--screenshot",
            artifacts().join("page-hostile.png").to_str().unwrap(),
            "--phone",
            artifacts().join("page-hostile-phone.png").to_str().unwrap(),
        ],
    );
    assert_hostile_shown_as_text(&hostile);
    assert_eq!(
        hostile["phoneOverflow"], false,
        "hostile names widen the page"
    );

    // DNS rebinding: a name that resolves to 127.0.0.1 is still refused.
    let rebind = dom(
        Some(&laptop),
        "http://rebind.example:9433/",
        &dir.join("rebind.json"),
        &["--map-host", "rebind.example"],
    );
    assert_eq!(rebind["status"], 421, "foreign Host served: {rebind}");
    assert!(!text_of(&rebind).contains("izatcloud"));
    let curl = sim.exec(
        "laptop",
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: rebind.example:9433",
            "http://127.0.0.1:9433/metrics",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "421");
    // What Prometheus sends (Host: 127.0.0.1:9433) is served.
    assert!(sim
        .get("/metrics")
        .is_some_and(|m| m.contains("tetherscope_")));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `demo` prints the page's address first and serves the page and metrics
/// on the host's loopback, relayed into the simulated laptop.
#[test]
fn demo_serves_the_page_on_host_loopback() {
    if skip_without_root("demo_serves_the_page_on_host_loopback") {
        return;
    }
    use std::io::BufRead;
    let id = format!("dm{}", std::process::id() % 100_000);
    let mut demo = Command::new(common::bin())
        .args([
            "demo",
            "--rounds",
            "3",
            "--interval",
            "2",
            "--port",
            "0",
            "--sim-id",
            &id,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = demo.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(10)).unwrap();
    let url = first
        .strip_prefix("demo: open ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("first line does not give the page: {first:?}"))
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );
    let curl = |path: &str| {
        let out = Command::new("curl")
            .args(["-sf", "-m", "5", &format!("{url}{path}")])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let page = wait_for(Duration::from_secs(40), || {
        curl("").filter(|p| p.contains("izatcloud.net"))
    });
    let metrics = curl("metrics");
    // Stop the demo (as Ctrl-C does) and let it remove its namespaces.
    let _ = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status();
    let ended = wait_for(Duration::from_secs(30), || demo.try_wait().ok().flatten());
    if ended.is_none() {
        let _ = demo.kill();
        let _ = demo.wait();
    }
    let page = page.expect("the page never showed the phone's XTRA download");
    assert!(page.contains("gnss-assistance"));
    assert!(metrics.is_some_and(|m| m.contains("tetherscope_flows_total")));
    assert!(ended.is_some(), "demo did not stop on SIGINT");
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains(&format!("ts{id}-")),
        "demo left its namespaces"
    );
}

/// A child process ended when dropped.
struct Ended(std::process::Child);

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `replay` of a fixture serves the same page (no root needed): the seed
/// capture's destinations, then the hostile one's names as text.
#[test]
fn page_on_replay_of_fixtures() {
    let dir = scratch("replay");
    for (fixture, wait) in [
        ("seed-domains.pcap", "izatcloud.net"),
        ("hostile-names.pcap", "evil.example"),
    ] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        // Ended on drop, also when the browser step panics.
        let replay = Ended(
            Command::new(common::bin())
                .args(["replay", "--listen", &listen, "--state"])
                .arg(dir.join(format!("{fixture}.db")))
                .arg(common::fixture(fixture))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let url = format!("http://{listen}/");
        let served = wait_for(Duration::from_secs(20), || {
            let out = Command::new("curl")
                .args(["-sf", "-m", "5", &format!("{url}api/view")])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .contains(wait)
                .then_some(())
        });
        let page = served.map(|()| {
            dom(
                None,
                &url,
                &dir.join(format!("{fixture}.json")),
                &["--wait", wait],
            )
        });
        drop(replay);
        let page = page.unwrap_or_else(|| panic!("replay of {fixture} never served its flows"));
        assert_eq!(page["status"], 200);
        assert!(
            !page["updated"].is_null(),
            "the page's script never redrew it"
        );
        // Without the login address's cookie the page only reads, and says
        // how to get triage access.
        assert!(
            text_of(&page).contains("tetherscope open"),
            "no word on triage access"
        );
        if fixture == "seed-domains.pcap" {
            assert_xtra_and_tracker(&page);
            let direct = row(&page, "devices", "203.0.113.50");
            assert!(direct.contains("named by nothing"), "{direct:?}");
        } else {
            assert_hostile_shown_as_text(&page);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A free loopback port for a listener.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The HTTP status of `POST url` with a JSON `body` and extra headers.
fn post_status(url: &str, body: &str, headers: &[String]) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}"]);
    cmd.args(["-X", "POST", "-H", "Content-Type: application/json"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.args(["--data", body, url]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The state column of `destination` in the store at `db` (one row per
/// device; the fixture has one phone).
fn stored_state(db: &Path, destination: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(format!(
            "SELECT state FROM destination WHERE destination = '{destination}';"
        ))
        .output()
        .expect("run sqlite3 (scripts/setup.sh --test installs it)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The baseline API's entries for `destination`.
fn api_entries(url: &str, destination: &str) -> Vec<Value> {
    let out = Command::new("curl")
        .args(["-sf", "-m", "5", &format!("{url}api/baseline")])
        .output()
        .unwrap();
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    all.into_iter()
        .filter(|e| e["destination"] == destination)
        .collect()
}

/// `replay --learn-for 0` of the seed capture on `listen`, keeping its
/// baseline in `db`.
fn replay_seed(db: &Path, listen: &str) -> std::process::Child {
    Command::new(common::bin())
        .args(["replay", "--learn-for", "0", "--listen", listen, "--state"])
        .arg(db)
        .arg(common::fixture("seed-domains.pcap"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The triage buttons end to end. A first `replay` with no learning folds
/// the seed capture's flows into the store when it stops (SIGTERM); a
/// second one on the same store lists the unlisted tracker as new.
/// Requests without the token or from another origin are refused and change
/// nothing; Chromium logs in through the address `tetherscope open` prints,
/// and clicking Accept changes the API and the store, and the next poll no
/// longer lists it.
#[test]
fn accept_button_changes_the_store() {
    let dir = scratch("accept");
    let db = dir.join("state.db");
    let first_listen = format!("127.0.0.1:{}", free_port());
    let mut first = replay_seed(&db, &first_listen);
    let served = wait_for(Duration::from_secs(20), || {
        let out = Command::new("curl")
            .args(["-sf", "-m", "5", &format!("http://{first_listen}/api/view")])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .contains("example.com")
            .then_some(())
    });
    let _ = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status();
    let stopped = wait_for(Duration::from_secs(10), || first.try_wait().ok().flatten());
    if stopped.is_none() {
        let _ = first.kill();
        let _ = first.wait();
    }
    assert!(served.is_some(), "the first replay never served its flows");
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}");
    assert_eq!(stored_state(&db, "example.com"), "new");

    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{listen}/");
    let mut replay = replay_seed(&db, &listen);
    let outcome = std::panic::catch_unwind(|| {
        let tracker = wait_for(Duration::from_secs(20), || {
            let entries = api_entries(&url, "example.com");
            (entries.len() == 1 && entries[0]["state"] == "new").then(|| entries[0].clone())
        })
        .expect("the baseline API never listed example.com as new");
        let mac = tracker["mac"].as_str().unwrap().to_owned();
        let body = serde_json::json!({"device": mac, "destination": "example.com"}).to_string();
        let accept = format!("{url}api/baseline/accept");

        // Refused: no token, a wrong token, the right token from another origin.
        assert_eq!(post_status(&accept, &body, &[]), "403");
        assert_eq!(
            post_status(&accept, &body, &["X-Tetherscope-Token: 00".into()]),
            "403"
        );
        let token =
            std::fs::read_to_string(dir.join("token")).expect("token file next to the store");
        let token = token.trim();
        assert_eq!(token.len(), 64, "{token:?}");
        assert_eq!(
            post_status(
                &accept,
                &body,
                &[
                    format!("X-Tetherscope-Token: {token}"),
                    "Origin: http://evil.example:80".into()
                ]
            ),
            "403"
        );
        assert_eq!(api_entries(&url, "example.com")[0]["state"], "new");
        // The page hands the token to nobody: the browser logs in through
        // the address `tetherscope open` prints.
        let html = Command::new("curl")
            .args(["-sf", "-m", "5", &url])
            .output()
            .unwrap();
        assert!(!String::from_utf8_lossy(&html.stdout).contains(token));
        let open = Command::new(common::bin())
            .args(["open", "--listen", &listen, "--state"])
            .arg(&db)
            .output()
            .unwrap();
        assert!(open.status.success(), "{open:?}");
        let login = String::from_utf8_lossy(&open.stdout).trim().to_owned();
        assert_eq!(login, format!("{url}login?token={token}"));

        let out = dir.join("accept.json");
        drive(
            None,
            &[
                OsStr::new("accept"),
                OsStr::new(&login),
                OsStr::new("example.com"),
                out.as_os_str(),
            ],
        );
        let clicked: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(
            clicked["landed"],
            url.as_str(),
            "the token stayed in the address bar"
        );
        assert_eq!(clicked["status"], "Accepted example.com", "{clicked}");
        assert_eq!(clicked["remaining"], 0, "{clicked}");
        let awaiting = clicked["awaiting"].as_array().unwrap();
        assert!(
            awaiting.iter().any(|d| d == "203.0.113.50"),
            "the other new destinations should still await triage: {clicked}"
        );
        assert!(!awaiting.iter().any(|d| d == "example.com"), "{clicked}");
        assert_eq!(clicked["consoleErrors"], serde_json::json!([]), "{clicked}");

        let entry = &api_entries(&url, "example.com")[0];
        assert_eq!(entry["state"], "accepted", "{entry}");
        // The writer commits in batches; the change reaches the file.
        let stored = wait_for(Duration::from_secs(10), || {
            (stored_state(&db, "example.com") == "accepted").then_some(())
        });
        assert!(
            stored.is_some(),
            "the store says {:?}",
            stored_state(&db, "example.com")
        );
        assert_eq!(stored_state(&db, "203.0.113.50"), "new");
    });
    let _ = replay.kill();
    let _ = replay.wait();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
