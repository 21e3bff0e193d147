//! `tetherscope demo`: the live monitor on a simulated hotspot, for machines
//! without a phone. The harness (scripts/hotspot-sim.sh) is embedded, so an
//! installed binary can run it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::DemoArgs;
use crate::UsageError;

const HARNESS: &str = include_str!("../scripts/hotspot-sim.sh");
const SERVERS: &str = include_str!("../scripts/sim/servers.py");
const DHCP_SCRIPT: &str = include_str!("../scripts/sim/phone-dhcp.sh");
const NM_LAPTOP: &str = include_str!("../scripts/sim/nm-laptop.sh");
/// Namespace id of the demo's simulated hotspot (`tsdemo-laptop`, ...).
const SIM_ID: &str = "demo";

struct Demo {
    id: String,
    scripts: PathBuf,
    state: PathBuf,
    monitor: Option<Child>,
}

impl Demo {
    fn harness(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new("bash")
            .arg(self.scripts.join("hotspot-sim.sh"))
            .args(args)
            .env("TS_SIM_ID", &self.id)
            .env("TS_SIM_DIR", &self.state)
            .output()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut m) = self.monitor.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &m.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(m.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = m.kill();
            let _ = m.wait();
        }
        let _ = self.harness(&["down"]);
        let _ = std::fs::remove_dir_all(&self.scripts);
    }
}

fn write_scripts(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir.join("sim"))?;
    for (name, text) in [
        ("hotspot-sim.sh", HARNESS),
        ("sim/servers.py", SERVERS),
        ("sim/phone-dhcp.sh", DHCP_SCRIPT),
        ("sim/nm-laptop.sh", NM_LAPTOP),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn laptop(id: &str, cmd: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &format!("ts{id}-laptop")])
        .args(cmd);
    c
}

/// The host's loopback port for the page: the one asked for, or any free
/// one when it is taken (said on stderr).
fn bind_page_port(port: u16) -> anyhow::Result<std::net::TcpListener> {
    let at = |p| std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, p));
    match at(port) {
        Ok(l) => Ok(l),
        Err(e) if port != 0 => {
            eprintln!("demo: 127.0.0.1:{port} is taken ({e}); using a free port instead");
            Ok(at(0)?)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    if !crate::run::running_as_root() {
        return Err(UsageError(
            "demo needs root to build network namespaces: run `sudo tetherscope demo`".into(),
        )
        .into());
    }
    let id = args.sim_id.clone().unwrap_or_else(|| SIM_ID.to_owned());
    if id.is_empty() || id.len() > 8 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(UsageError("--sim-id: 1 to 8 letters or digits".into()).into());
    }
    // The page's address comes first: it is what a newcomer opens.
    let listener = bind_page_port(args.port)?;
    let port = listener.local_addr()?.port();
    let page = format!("http://127.0.0.1:{port}/");
    eprintln!("demo: open {page} in a browser (metrics: {page}metrics)");
    let base = std::env::temp_dir().join(format!("tetherscope-demo-{}", std::process::id()));
    let mut demo = Demo {
        id: id.clone(),
        scripts: base.join("scripts"),
        state: base.join("state"),
        monitor: None,
    };
    write_scripts(&demo.scripts)?;
    eprintln!("demo: building the simulated hotspot (phone, laptop, internet namespaces)...");
    let up = demo.harness(&["up"])?;
    if !up.status.success() {
        anyhow::bail!(
            "simulated hotspot failed: {}",
            String::from_utf8_lossy(&up.stderr).trim()
        );
    }
    let exe = std::env::current_exe()?;
    let leases = demo.state.join("dnsmasq-ap0.leases");
    // The monitor listens on the same port inside the namespace, so the
    // Host header a browser on the host sends is the monitor's own.
    let listen = format!("127.0.0.1:{port}");
    let mut run = laptop(
        &id,
        &[
            exe.to_str().unwrap_or("tetherscope"),
            "run",
            "--interface",
            "ap0",
            "--listen",
            &listen,
        ],
    );
    run.arg("--leases")
        .arg(&leases)
        .arg("--state")
        .arg(demo.state.join("state.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    demo.monitor = Some(run.spawn()?);

    // Traffic only once the capture is attached, so nothing is missed.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ok = laptop(&id, &["curl", "-sf", "-m", "2", &format!("{page}healthz")])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            break;
        }
        if Instant::now() > deadline {
            anyhow::bail!("the monitor did not attach to ap0 within 15 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _relay = crate::relay::Relay::start(
        listener,
        &format!("/run/netns/ts{id}-laptop"),
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    )
    .map_err(|e| anyhow::anyhow!("cannot reach the simulated laptop's namespace: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc_flag(stop);
    }
    eprintln!(
        "demo: tetherscope is watching ap0 in namespace ts{id}-laptop.\n\
         demo: the page: {page}   metrics: {page}metrics   flows: {page}api/flows\n\
         demo: the phone makes a round of traffic every {}s for {} rounds; Ctrl-C ends it and removes everything.",
        args.interval, args.rounds
    );
    for round in 1..=args.rounds {
        if stop.load(Relaxed) {
            break;
        }
        let _ = demo.harness(&["traffic", "1"]);
        std::thread::sleep(Duration::from_millis(1500));
        print_table(&page, round);
        let until = Instant::now() + Duration::from_secs(args.interval);
        while Instant::now() < until && !stop.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    eprintln!("demo: tearing down");
    drop(demo);
    Ok(ExitCode::SUCCESS)
}

fn ctrlc_flag(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(rt) = rt {
            rt.block_on(async {
                let _ = tokio::signal::ctrl_c().await;
            });
            stop.store(true, Relaxed);
        }
    });
}

/// A live table: flows per site, purpose and verdict, from the flows API.
fn print_table(page: &str, round: u32) {
    // Through the relay, like a browser on the host.
    let Ok(out) = Command::new("curl")
        .args(["-sf", "-m", "5", &format!("{page}api/flows")])
        .output()
    else {
        return;
    };
    let Ok(flows) = serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout) else {
        return;
    };
    let mut rows: std::collections::BTreeMap<(String, String, String), (u64, u64)> =
        Default::default();
    for f in &flows {
        let key = (
            f["site"].as_str().unwrap_or("-").to_owned(),
            f["purpose"].as_str().unwrap_or("-").to_owned(),
            f["verdict"].as_str().unwrap_or("-").to_owned(),
        );
        let e = rows.entry(key).or_default();
        e.0 += 1;
        e.1 += f["bytes_up"].as_u64().unwrap_or(0) + f["bytes_down"].as_u64().unwrap_or(0);
    }
    println!("\nround {round}: {} flows seen", flows.len());
    println!(
        "{:<30} {:<20} {:<11} {:>6} {:>10}",
        "SITE", "PURPOSE", "VERDICT", "FLOWS", "BYTES"
    );
    for ((site, purpose, verdict), (n, bytes)) in rows {
        println!("{site:<30} {purpose:<20} {verdict:<11} {n:>6} {bytes:>10}");
    }
}
