//! What the figures were taken on: cores, CPU, memory, load, toolchain, Redis version.

use std::process::Command;

/// The machine, as the report prints it.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// `available_parallelism` (what `nproc` says).
    pub cores: usize,
    /// The CPU model from `/proc/cpuinfo`.
    pub cpu: String,
    /// Total memory from `/proc/meminfo`.
    pub memory: String,
    /// Kernel release.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
    /// The 1-minute load average when the run started (other work on the machine).
    pub load_at_start: String,
    /// `redis_version` from `INFO server`.
    pub redis: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The 1-minute load average now.
pub fn load_average() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .next()
        .unwrap_or("unknown")
        .to_owned()
}

impl Machine {
    /// Reads everything but the Redis version.
    pub fn detect() -> Machine {
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu: field(&read("/proc/cpuinfo"), "model name"),
            memory: field(&read("/proc/meminfo"), "MemTotal"),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            rustc: Command::new(rustc)
                .arg("--version")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_else(|| "unknown".into()),
            load_at_start: load_average(),
            // `redis-server --version` prints `Redis server v=7.0.15 sha=…`.
            redis: Command::new("redis-server")
                .arg("--version")
                .output()
                .ok()
                .and_then(|o| {
                    let text = String::from_utf8_lossy(&o.stdout).into_owned();
                    let v = text.split_whitespace().find_map(|w| w.strip_prefix("v="))?;
                    Some(v.to_owned())
                })
                .unwrap_or_else(|| "unknown".into()),
        }
    }

    /// Notes the version of the server on `con`.
    pub fn redis_from(&mut self, con: &mut redis::Connection) {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query(con)
            .unwrap_or_default();
        self.redis = field(&info, "redis_version");
    }

    /// One markdown line.
    pub fn line(&self) -> String {
        format!(
            "{} cores ({}), {} RAM, Linux {}, {}, Redis {}; 1-min load average {} at the start",
            self.cores,
            self.cpu,
            self.memory,
            self.kernel,
            self.rustc,
            self.redis,
            self.load_at_start
        )
    }
}
