//! The simulated hotspot (scripts/hotspot-sim.sh) as a test fixture, and
//! helpers to read what tetherscope and Prometheus serve inside it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The harness script.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/hotspot-sim.sh")
}

/// Whether the tests run as root (namespaces need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Whether a test that needs the simulated hotspot must be skipped: it
/// needs root (network namespaces). Says so loudly, and fails under CI,
/// where a skipped end-to-end test would pass for the wrong reason.
pub fn skip_without_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    let msg = format!("{test} test NOT RUN: it needs root (network namespaces)");
    eprintln!("\n!!! {msg} !!!\n");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    true
}

/// The harness, torn down on drop (also when an assertion fails).
pub struct Sim {
    /// Suffix of the namespace names.
    pub id: String,
    /// Scratch directory (leases, logs, configs).
    pub dir: PathBuf,
    /// `tetherscope run`, killed on drop.
    pub monitor: Option<Child>,
    /// Other processes (Prometheus, Alertmanager, ...), killed on drop.
    pub others: Vec<Child>,
    /// Extra environment of every hotspot-sim.sh call (`TS_SIM_*`).
    pub env: Vec<(String, String)>,
}

impl Sim {
    /// Brings the namespaces, NetworkManager's hotspot and the servers up.
    pub fn up(id: &str) -> Sim {
        Sim::up_with(id, &[])
    }

    /// [`Sim::up`] with extra `TS_SIM_*` settings for the harness.
    pub fn up_with(id: &str, env: &[(&str, &str)]) -> Sim {
        let dir = std::env::temp_dir().join(format!("tetherscope-sim-{id}"));
        let sim = Sim {
            id: id.to_owned(),
            dir,
            monitor: None,
            others: Vec::new(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let out = sim.script(&["up"]);
        assert!(
            out.status.success(),
            "harness up failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        sim.require_networkmanager();
        sim
    }

    /// Whether the hotspot came from the real NetworkManager. Without it the
    /// harness falls back to a hand-started dnsmasq; the test says so
    /// loudly, and under CI that is a failure.
    pub fn networkmanager(&self) -> bool {
        std::fs::read_to_string(self.dir.join("hotspot-mode"))
            .is_ok_and(|m| m.trim() == "networkmanager")
    }

    /// Whether the harness will try the real NetworkManager: installed, and
    /// not turned off with `TS_SIM_HOTSPOT=dnsmasq`. Says so loudly when not,
    /// and under CI that is a failure.
    pub fn networkmanager_expected(test: &str) -> bool {
        let installed = std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|d| d.join("NetworkManager").is_file())
        }) || std::path::Path::new("/usr/sbin/NetworkManager").is_file();
        let forced_off = std::env::var("TS_SIM_HOTSPOT").as_deref() == Ok("dnsmasq");
        if installed && !forced_off {
            return true;
        }
        let msg = format!(
            "{test} test NOT RUN: NetworkManager {} (scripts/setup.sh --test installs it)",
            if forced_off {
                "turned off by TS_SIM_HOTSPOT=dnsmasq"
            } else {
                "is not installed"
            }
        );
        eprintln!("\n!!! {msg} !!!\n");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        false
    }

    fn require_networkmanager(&self) {
        if self.networkmanager() {
            return;
        }
        let msg = "the simulated hotspot runs WITHOUT NetworkManager (not installed: \
                   scripts/setup.sh --test installs it); a hand-started dnsmasq stands in";
        eprintln!("\n!!! {msg} !!!\n");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    }

    /// hotspot-sim.sh with this harness's id and directory, to run or spawn.
    pub fn script_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("bash");
        c.arg(script())
            .args(args)
            .env("TS_SIM_ID", &self.id)
            .env("TS_SIM_DIR", &self.dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs hotspot-sim.sh with this harness's id and directory.
    pub fn script(&self, args: &[&str]) -> std::process::Output {
        self.script_command(args)
            .output()
            .expect("run hotspot-sim.sh")
    }

    /// The full name of a namespace (`phone`, `laptop`, `inet`).
    pub fn ns(&self, which: &str) -> String {
        format!("ts{}-{which}", self.id)
    }

    /// Runs a command in a namespace with a time bound.
    pub fn exec(&self, which: &str, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(which), "timeout", "10"])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    /// Starts `tetherscope run` on `ap0` in the laptop namespace (naming
    /// devices from the harness's lease file) and waits until it is healthy.
    pub fn start_monitor(&mut self, extra: &[&std::ffi::OsStr]) {
        let leases = self.dir.join("dnsmasq-ap0.leases");
        let monitor = Command::new("ip")
            .args(["netns", "exec", &self.ns("laptop"), super::bin(), "run"])
            .args(["--interface", "ap0"])
            .arg("--leases")
            .arg(&leases)
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start tetherscope run");
        self.monitor = Some(monitor);
        let health = wait_for(Duration::from_secs(20), || {
            self.get("/healthz")
                .filter(|h| h.contains("\"capture_attached\":true"))
        });
        assert!(health.is_some(), "exporter never became healthy");
    }

    /// A command run in the laptop's namespaces: with NetworkManager also
    /// its private mounts (D-Bus bus, /var/lib/NetworkManager), so `nmcli`
    /// and the lease file are NetworkManager's own.
    pub fn laptop_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c;
        if self.networkmanager() {
            let holder = std::fs::read_to_string(self.dir.join("nm-holder.pid"))
                .expect("NetworkManager holder pid");
            c = Command::new("nsenter");
            c.args(["-t", holder.trim(), "-m", "-u", "-n"]);
        } else {
            c = Command::new("ip");
            c.args(["netns", "exec", &self.ns("laptop")]);
        }
        c.arg(program);
        c
    }

    /// `nmcli ARGS` against the laptop's NetworkManager, bounded in time.
    pub fn nmcli(&self, args: &[&str]) -> std::process::Output {
        self.laptop_command("timeout")
            .args(["30", "nmcli"])
            .args(args)
            .output()
            .expect("run nmcli")
    }

    /// Starts a long-running helper inside the laptop namespace, bounded by
    /// `timeout`, stopped on drop.
    pub fn spawn_in_laptop(&mut self, args: &[&std::ffi::OsStr]) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns("laptop"), "timeout", "600"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.join(format!("helper-{}.log", self.others.len())))
                    .expect("helper log"),
            )
            .spawn()
            .expect("start helper");
        self.others.push(child);
    }

    /// GET from tetherscope's exporter, from inside the laptop namespace.
    pub fn get(&self, path: &str) -> Option<String> {
        let out = self.exec(
            "laptop",
            &[
                "curl",
                "-sf",
                "-m",
                "5",
                &format!("http://127.0.0.1:9433{path}"),
            ],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        for mut child in self.monitor.take().into_iter().chain(self.others.drain(..)) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.script(&["down"]);
    }
}

/// Waits for `cond`, polling, at most `limit`.
pub fn wait_for<T>(limit: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = cond() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// Series → value from the Prometheus text format.
pub fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Sum of the series of `name` whose labels include `labels`.
pub fn value(m: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    m.iter()
        .filter(|(series, _)| {
            (series.as_str() == name || series.starts_with(&format!("{name}{{")))
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| *v)
        .sum()
}
