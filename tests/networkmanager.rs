//! The real NetworkManager (contained in the simulated laptop's namespaces)
//! with a shared connection on a subnet other than 10.42.0.0/24, which only
//! NetworkManager discovery can find: `tetherscope run` with no
//! `--interface` finds it, names the phone from NetworkManager's lease file,
//! follows `nmcli connection down/up` (capture_up 0 then 1, counters
//! continuing), and the shipped dispatcher script starts and stops the
//! service (systemctl is recorded, not PID 1's). The shipped
//! `tetherscope-hotspot` helper creates its connection in the same
//! NetworkManager.

use std::process::Stdio;
use std::time::Duration;

use crate::common;
use crate::common::sim::{parse_metrics, skip_without_root, value, wait_for, Sim};

fn metrics(sim: &Sim) -> std::collections::HashMap<String, f64> {
    parse_metrics(&sim.get("/metrics").unwrap_or_default())
}

fn systemctl_calls(sim: &Sim) -> Vec<String> {
    std::fs::read_to_string(sim.dir.join("nm/systemctl.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn flows(sim: &Sim) -> f64 {
    value(&metrics(sim), "tetherscope_flows_total", &[])
}

#[test]
fn networkmanager_shared_connection_discovery_and_dispatcher() {
    if skip_without_root("networkmanager") {
        return;
    }
    if !Sim::networkmanager_expected("networkmanager") {
        return;
    }
    let id = format!("n{}", std::process::id() % 10_000);
    let mut sim = Sim::up_with(&id, &[("TS_SIM_HOTSPOT_ADDR", "192.168.44.1/24")]);
    if !sim.networkmanager() {
        return; // said loudly by Sim::up_with, and a failure under CI
    }

    // The phone's lease comes from NetworkManager's dnsmasq.
    let leases = std::fs::read_to_string(sim.dir.join("nm/lib/dnsmasq-ap0.leases")).unwrap();
    assert!(
        leases.contains("02:42:0a:2a:00:32 192.168.44.") && leases.contains(" pixel-7a "),
        "{leases}"
    );
    let active = sim.nmcli(&["-t", "-f", "NAME,DEVICE", "connection", "show", "--active"]);
    assert!(
        String::from_utf8_lossy(&active.stdout).contains("Hotspot:ap0"),
        "{active:?}"
    );
    // The dispatcher script saw the shared connection come up.
    assert_eq!(systemctl_calls(&sim), ["start tetherscope.service"]);

    // Nothing holds 10.42.0.1: without NetworkManager's answer there is no
    // hotspot to find (checked only where the host runs no NetworkManager
    // of its own that could answer instead).
    let host_nm = std::process::Command::new("nmcli")
        .args(["-t", "general", "status"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !host_nm {
        let blind = std::process::Command::new("ip")
            .args(["netns", "exec", &sim.ns("laptop"), "timeout", "20"])
            .args([common::bin(), "run", "--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert_eq!(blind.status.code(), Some(64), "{blind:?}");
        assert!(String::from_utf8_lossy(&blind.stderr).contains("no hotspot found"));
    }

    // No --interface, no --leases: NetworkManager says where the hotspot is.
    let log = sim.dir.join("run.log");
    let monitor = sim
        .laptop_command(common::bin())
        .arg("run")
        .arg("--state")
        .arg(sim.dir.join("state.db"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start tetherscope run");
    sim.monitor = Some(monitor);
    let healthy = wait_for(Duration::from_secs(20), || {
        sim.get("/healthz")
            .filter(|h| h.contains("\"capture_attached\":true"))
    });
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(healthy.is_some(), "never healthy: {}", stderr());
    assert!(
        stderr().contains("NetworkManager shares connection \"Hotspot\" on ap0 (192.168.44.1/24)"),
        "{}",
        stderr()
    );
    assert!(sim.script(&["traffic", "1"]).status.success());
    let named = wait_for(Duration::from_secs(15), || {
        let m = metrics(&sim);
        (value(&m, "tetherscope_flows_total", &[("device", "pixel-7a")]) >= 5.0).then_some(m)
    });
    assert!(named.is_some(), "no flows of pixel-7a: {}", stderr());

    // The hotspot goes down: capture counts as detached, the dispatcher
    // stops the service.
    let before = flows(&sim);
    let down = sim.nmcli(&["connection", "down", "Hotspot"]);
    assert!(down.status.success(), "{down:?}");
    let detached = wait_for(Duration::from_secs(10), || {
        (value(
            &metrics(&sim),
            "tetherscope_capture_up",
            &[("interface", "ap0")],
        ) == 0.0)
            .then_some(())
    });
    assert!(detached.is_some(), "capture_up stayed 1: {}", stderr());
    assert!(
        sim.get("/healthz").is_none(),
        "healthz 200 with the hotspot down"
    );
    assert!(wait_for(Duration::from_secs(10), || {
        (systemctl_calls(&sim).last().map(String::as_str) == Some("stop tetherscope.service"))
            .then_some(())
    })
    .is_some());

    // ...and up again: attached, started, counting on from where it was.
    let up = sim.nmcli(&["--wait", "30", "connection", "up", "Hotspot"]);
    assert!(up.status.success(), "{up:?}");
    let attached = wait_for(Duration::from_secs(10), || {
        (value(
            &metrics(&sim),
            "tetherscope_capture_up",
            &[("interface", "ap0")],
        ) == 1.0)
            .then_some(())
    });
    assert!(attached.is_some(), "capture_up stayed 0: {}", stderr());
    assert!(
        wait_for(Duration::from_secs(10), || {
            (systemctl_calls(&sim)
                == [
                    "start tetherscope.service",
                    "stop tetherscope.service",
                    "start tetherscope.service",
                ])
            .then_some(())
        })
        .is_some(),
        "{:?}",
        systemctl_calls(&sim)
    );
    assert!(sim.script(&["traffic", "1"]).status.success());
    let more = wait_for(Duration::from_secs(15), || {
        let now = flows(&sim);
        (now >= before + 5.0).then_some(now)
    });
    assert!(more.is_some(), "counters did not continue: before {before}");

    // The shipped helper, in the same NetworkManager: no radio here, so it
    // says so; named an interface, it creates a WPA2 access-point connection
    // in shared mode with a generated password (bringing it up needs a Wi-Fi
    // device, which namespaces do not have).
    let helper = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/networkmanager/tetherscope-hotspot");
    let no_radio = sim.laptop_command("sh").arg(&helper).output().unwrap();
    assert_eq!(no_radio.status.code(), Some(69), "{no_radio:?}");
    assert!(String::from_utf8_lossy(&no_radio.stderr).contains("no Wi-Fi device found"));
    let made = sim
        .laptop_command("timeout")
        .args(["30", "sh"])
        .arg(&helper)
        .args(["--ifname", "ap0", "--ssid", "ts-test"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&made.stdout).contains("generated Wi-Fi password"),
        "{made:?}"
    );
    let settings = sim.nmcli(&[
        "-g",
        "ipv4.method,802-11-wireless.mode,802-11-wireless.ssid,802-11-wireless-security.key-mgmt",
        "connection",
        "show",
        "tetherscope-hotspot",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&settings.stdout)
            .lines()
            .collect::<Vec<_>>(),
        ["shared", "ap", "ts-test", "wpa-psk"],
        "{settings:?}"
    );
    assert!(
        sim.monitor.as_mut().unwrap().try_wait().unwrap().is_none(),
        "tetherscope exited: {}",
        stderr()
    );
}
