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
const SIM_ID: &str = "demo";

struct Demo {
    scripts: PathBuf,
    state: PathBuf,
    monitor: Option<Child>,
}

impl Demo {
    fn harness(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new("bash")
            .arg(self.scripts.join("hotspot-sim.sh"))
            .args(args)
            .env("TS_SIM_ID", SIM_ID)
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

fn laptop(cmd: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &format!("ts{SIM_ID}-laptop")])
        .args(cmd);
    c
}

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    if !crate::run::running_as_root() {
        return Err(UsageError(
            "demo needs root to build network namespaces: run `sudo tetherscope demo`".into(),
        )
        .into());
    }
    let base = std::env::temp_dir().join(format!("tetherscope-demo-{}", std::process::id()));
    let mut demo = Demo {
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
    let mut run = laptop(&[
        exe.to_str().unwrap_or("tetherscope"),
        "run",
        "--interface",
        "ap0",
    ]);
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
        let ok = laptop(&["curl", "-sf", "-m", "2", "http://127.0.0.1:9433/healthz"])
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
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc_flag(stop);
    }
    eprintln!(
        "demo: tetherscope is watching ap0 in namespace ts{SIM_ID}-laptop. Look at it with\n  \
         sudo ip netns exec ts{SIM_ID}-laptop curl -s 127.0.0.1:9433/metrics\n  \
         sudo ip netns exec ts{SIM_ID}-laptop curl -s 127.0.0.1:9433/api/flows\n\
         demo: the phone makes a round of traffic every {}s for {} rounds; Ctrl-C ends it and removes everything.",
        args.interval, args.rounds
    );
    for round in 1..=args.rounds {
        if stop.load(Relaxed) {
            break;
        }
        let _ = demo.harness(&["traffic", "1"]);
        std::thread::sleep(Duration::from_millis(1500));
        print_table(round);
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
fn print_table(round: u32) {
    let Ok(out) = laptop(&["curl", "-sf", "-m", "5", "http://127.0.0.1:9433/api/flows"]).output()
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
