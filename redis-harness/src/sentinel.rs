//! Redis Sentinel topologies: one master, its replicas and a group of Sentinels, each a real
//! process with its own config file and directory, on free loopback ports.
//!
//! Everything waits by condition with a deadline ([`wait_until`]): replicas connected,
//! `SENTINEL CKQUORUM` OK, every Sentinel knowing the master, its replicas and the other
//! Sentinels. Dropping the topology kills every process (see [`Process`]).
//!
//! Test-only speed-ups: right after start every Sentinel gets
//! `SENTINEL DEBUG ping-period 400 ask-period 100 info-period 1000 publish-period 500
//! tilt-period 5000`, so failure detection and hello discovery take well under a second more
//! than `down-after-milliseconds`, and a CPU hiccup on a small CI box only tilts for 5 s.
//! Not lower than 400 for `ping-period`: Sentinel only promotes a replica whose INFO is
//! younger than 5 × ping-period, and it polls replicas' INFO once a second during a failover,
//! so `ping-period 100` makes every replica "stale" and the failover aborts with
//! `-failover-abort-no-good-slave` (then waits 2 × failover-timeout to retry).
//!
//! With [`TopologySpec::tls`] every process also serves TLS (`tls-replication yes`:
//! replication, Sentinel-to-node and Sentinel-to-Sentinel links use it too), and the ports
//! this API takes and returns are the TLS ones, as the Sentinels report them; the harness
//! itself still speaks plain text on each process's plain port ([`SentinelTopology::admin_port`]).
//!
//! ```no_run
//! use redis_harness::sentinel::TopologySpec;
//!
//! let mut topology = TopologySpec::full().start(); // 1 master, 2 replicas, 3 Sentinels, quorum 2
//! let old = topology.master_port();
//! topology.kill_node(old);
//! let new = topology.wait_new_master(old, std::time::Duration::from_secs(30));
//! assert_ne!(old, new);
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use crate::process::{Process, ServerSpec};
use crate::tls::TlsFiles;
use crate::wait::wait_until;

/// How long a fresh topology may take to be ready (hello discovery, first sync).
pub const TOPOLOGY_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `SENTINEL DEBUG` settings applied to every Sentinel (test knobs, see the module docs).
pub const SENTINEL_DEBUG_KNOBS: [(&str, u64); 5] = [
    ("ping-period", 400),
    ("ask-period", 100),
    ("info-period", 1000),
    ("publish-period", 500),
    ("tilt-period", 5000),
];

/// What to start.
#[derive(Debug, Clone)]
pub struct TopologySpec {
    master_name: String,
    replicas: usize,
    sentinels: usize,
    quorum: usize,
    down_after_ms: u64,
    failover_timeout_ms: u64,
    data_lines: Vec<String>,
    tls: Option<Arc<TlsFiles>>,
}

impl TopologySpec {
    /// 1 master, 2 replicas, 3 Sentinels with quorum 2, `down-after-milliseconds 1000`,
    /// `failover-timeout 5000`, master name `mymaster`.
    pub fn full() -> Self {
        TopologySpec {
            master_name: "mymaster".into(),
            replicas: 2,
            sentinels: 3,
            quorum: 2,
            down_after_ms: 1000,
            failover_timeout_ms: 5000,
            data_lines: Vec::new(),
            tls: None,
        }
    }

    /// 1 master, 1 replica, 1 Sentinel with quorum 1: cheap, for tests that need discovery
    /// and replication but no failover.
    pub fn light() -> Self {
        TopologySpec {
            replicas: 1,
            sentinels: 1,
            quorum: 1,
            ..Self::full()
        }
    }

    /// The master name the Sentinels monitor.
    pub fn master_name(mut self, name: impl Into<String>) -> Self {
        self.master_name = name.into();
        self
    }

    /// An extra config line for every data node (e.g. `min-replicas-to-write 1`).
    pub fn data_config(mut self, line: impl Into<String>) -> Self {
        self.data_lines.push(line.into());
        self
    }

    /// Every process also serves TLS with `files`' server certificate, and replicates and
    /// monitors over TLS (`tls-replication yes`): Sentinels report the TLS ports, so clients
    /// must connect with TLS and trust `files.ca_cert()`. See the [module docs](self).
    pub fn tls(mut self, files: Arc<TlsFiles>) -> Self {
        self.tls = Some(files);
        self
    }

    /// Starts every process and waits until the topology is ready.
    ///
    /// # Panics
    /// If `redis-server` is missing, or the topology is not ready within
    /// [`TOPOLOGY_READY_TIMEOUT`] (the message carries the Sentinels' logs).
    pub fn start(self) -> SentinelTopology {
        let master = Process::start(self.data_spec(None));
        let master_port = client_port(&master);
        let mut nodes = vec![master];
        for _ in 0..self.replicas {
            nodes.push(Process::start(self.data_spec(Some(master_port))));
        }
        let sentinels = (0..self.sentinels)
            .map(|_| Process::start(self.sentinel_spec(master_port)))
            .collect();
        let topology = SentinelTopology {
            spec: self,
            nodes,
            sentinels,
        };
        for sentinel in &topology.sentinels {
            let mut debug = redis::cmd("SENTINEL");
            debug.arg("DEBUG");
            for (knob, ms) in SENTINEL_DEBUG_KNOBS {
                debug.arg(knob).arg(ms);
            }
            let _: () = query(sentinel.port(), &debug).expect("SENTINEL DEBUG");
        }
        topology.wait_ready(TOPOLOGY_READY_TIMEOUT);
        topology
    }

    fn data_spec(&self, replica_of: Option<u16>) -> ServerSpec {
        let mut spec = ServerSpec::redis()
            // Any node may become master: no 5 s delay before a full sync.
            .config("repl-diskless-sync-delay 0")
            .config("enable-debug-command local");
        for line in &self.data_lines {
            spec = spec.config(line.clone());
        }
        if let Some(port) = replica_of {
            spec = spec.config(format!("replicaof 127.0.0.1 {port}"));
        }
        self.with_tls(spec)
    }

    fn with_tls(&self, spec: ServerSpec) -> ServerSpec {
        match &self.tls {
            Some(files) => spec.tls(files.clone()).config("tls-replication yes"),
            None => spec,
        }
    }

    fn sentinel_spec(&self, master_port: u16) -> ServerSpec {
        let name = &self.master_name;
        let spec = ServerSpec::redis()
            .config(format!(
                "sentinel monitor {name} 127.0.0.1 {master_port} {}",
                self.quorum
            ))
            .config(format!(
                "sentinel down-after-milliseconds {name} {}",
                self.down_after_ms
            ))
            .config(format!(
                "sentinel failover-timeout {name} {}",
                self.failover_timeout_ms
            ))
            .config(format!("sentinel parallel-syncs {name} 1"))
            .arg("--sentinel");
        self.with_tls(spec)
    }
}

/// A running Sentinel topology owned by one test. Dropping it kills every process.
#[derive(Debug)]
pub struct SentinelTopology {
    spec: TopologySpec,
    nodes: Vec<Process>,
    sentinels: Vec<Process>,
}

impl SentinelTopology {
    /// The master name the Sentinels monitor.
    pub fn master_name(&self) -> &str {
        &self.spec.master_name
    }

    /// Every Sentinel's port, in start order (killed ones included); the TLS ports in a
    /// [TLS topology](TopologySpec::tls).
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(client_port).collect()
    }

    /// Whether every process serves TLS ([`TopologySpec::tls`]).
    pub fn is_tls(&self) -> bool {
        self.spec.tls.is_some()
    }

    /// The plain-text port of the process whose client port (the TLS port in a
    /// [TLS topology](TopologySpec::tls)) is `port`: where [`query`] reaches it. Any other
    /// port is returned as it is.
    pub fn admin_port(&self, port: u16) -> u16 {
        self.nodes
            .iter()
            .chain(&self.sentinels)
            .find(|p| client_port(p) == port)
            .map_or(port, Process::port)
    }

    /// Every Sentinel as `127.0.0.1:port`, in start order: the `REDIS_SENTINELS` value.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinel_ports()
            .into_iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// Every data node's port (killed ones included); the TLS ports in a
    /// [TLS topology](TopologySpec::tls).
    pub fn node_ports(&self) -> Vec<u16> {
        self.nodes.iter().map(client_port).collect()
    }

    /// The data node on `port` (its client port, or its plain port).
    ///
    /// # Panics
    /// If no data node has that port.
    pub fn node(&mut self, port: u16) -> &mut Process {
        self.nodes
            .iter_mut()
            .find(|n| client_port(n) == port || n.port() == port)
            .unwrap_or_else(|| panic!("no data node on port {port}"))
    }

    /// The `i`-th Sentinel.
    pub fn sentinel(&mut self, i: usize) -> &mut Process {
        &mut self.sentinels[i]
    }

    /// The master's port as the first answering Sentinel reports it.
    ///
    /// # Panics
    /// If no Sentinel answers with an address.
    pub fn master_port(&self) -> u16 {
        self.sentinels
            .iter()
            .find_map(|s| master_addr(s.port(), self.master_name()))
            .expect("no Sentinel reports a master")
    }

    /// SIGKILLs the data node on `port`.
    pub fn kill_node(&mut self, port: u16) {
        self.node(port).kill();
    }

    /// SIGKILLs the `i`-th Sentinel.
    pub fn kill_sentinel(&mut self, i: usize) {
        self.sentinels[i].kill();
    }

    /// Restarts the killed node on `port` (empty: no persistence) as a replica of the current
    /// master, as an operator would, then waits until the topology is ready again.
    pub fn restart_as_replica(&mut self, port: u16) {
        let master = self.master_port();
        self.node(port).restart();
        let _: () = query(
            self.admin_port(port),
            redis::cmd("REPLICAOF").arg("127.0.0.1").arg(master),
        )
        .expect("REPLICAOF");
        self.wait_ready(TOPOLOGY_READY_TIMEOUT);
    }

    /// Forces a failover with `SENTINEL FAILOVER` on the first live Sentinel, retrying on
    /// `INPROG` / `NOGOODSLAVE` (a Sentinel whose replica info is not fresh yet) until
    /// `timeout`. Returns when a Sentinel accepted it.
    pub fn failover(&self, timeout: Duration) {
        let mut last = String::new();
        let accepted = wait_until(timeout, || {
            self.live_sentinels().into_iter().any(|s| {
                match query::<()>(
                    self.admin_port(s),
                    redis::cmd("SENTINEL")
                        .arg("FAILOVER")
                        .arg(self.master_name()),
                ) {
                    Ok(()) => true,
                    Err(e) => {
                        last = e.to_string();
                        false
                    }
                }
            })
        });
        assert!(accepted, "SENTINEL FAILOVER was refused: {last}");
    }

    /// Waits until every live Sentinel names a master other than `old` and that node's `ROLE`
    /// is master; returns its port.
    ///
    /// # Panics
    /// On timeout, with the Sentinels' logs.
    pub fn wait_new_master(&self, old: u16, timeout: Duration) -> u16 {
        let mut found = 0;
        let ok = wait_until(timeout, || {
            let ports: Vec<Option<u16>> = self
                .live_sentinels()
                .into_iter()
                .map(|s| master_addr(self.admin_port(s), self.master_name()))
                .collect();
            match ports.first() {
                Some(Some(p)) if *p != old && ports.iter().all(|q| *q == Some(*p)) => {
                    found = *p;
                    role(self.admin_port(*p)).as_deref() == Some("master")
                }
                _ => false,
            }
        });
        assert!(ok, "no new master within {timeout:?}\n{}", self.logs());
        found
    }

    /// Waits until the topology is steady: the master (as the Sentinels name it) has `ROLE`
    /// master and every other live data node is its replica with the link up; every live
    /// Sentinel agrees on the master, sees exactly the live replicas as healthy, knows every
    /// other live Sentinel, and `SENTINEL CKQUORUM` is OK.
    ///
    /// # Panics
    /// On timeout, with what was last missing and the Sentinels' logs.
    pub fn wait_ready(&self, timeout: Duration) {
        let mut missing = String::new();
        let ok = wait_until(timeout, || match self.readiness() {
            Ok(()) => true,
            Err(why) => {
                missing = why;
                false
            }
        });
        assert!(
            ok,
            "sentinel topology not ready within {timeout:?}: {missing}\n{}",
            self.logs()
        );
    }

    fn readiness(&self) -> Result<(), String> {
        let name = self.master_name();
        let sentinels = self.live_sentinels();
        let admin = |port: u16| self.admin_port(port);
        let master = sentinels
            .first()
            .and_then(|s| master_addr(admin(*s), name))
            .ok_or("no sentinel names a master")?;
        if role(admin(master)).as_deref() != Some("master") {
            return Err(format!("{master} is not master yet"));
        }
        let replicas: Vec<u16> = self
            .live_nodes()
            .into_iter()
            .filter(|p| *p != master)
            .collect();
        for r in &replicas {
            let info: String = query(admin(*r), redis::cmd("INFO").arg("replication"))
                .map_err(|e| format!("INFO on {r}: {e}"))?;
            let want = format!("master_port:{master}");
            if !info.contains(&want) || !info.contains("master_link_status:up") {
                return Err(format!("replica {r} not linked to {master}"));
            }
        }
        // A linked replica may not be streamed to yet: after a diskless sync the master waits
        // for the replica's first ACK (up to a second). Probe with a write that touches no key
        // (PUBLISH is replicated) and `WAIT` for every replica to confirm it.
        let mut probe = redis::pipe();
        probe
            .cmd("PUBLISH")
            .arg("__harness__:probe")
            .arg("ready?")
            .cmd("WAIT")
            .arg(replicas.len())
            .arg(100);
        let (_, acked): (i64, usize) = query_pipe(admin(master), &probe)?;
        if acked < replicas.len() {
            return Err(format!(
                "{acked} of {} replicas confirm writes",
                replicas.len()
            ));
        }
        for s in &sentinels {
            if master_addr(admin(*s), name) != Some(master) {
                return Err(format!("sentinel {s} names another master"));
            }
            let described = fields(query(
                admin(*s),
                redis::cmd("SENTINEL").arg("MASTER").arg(name),
            )?);
            let flags = described.get("flags").map(String::as_str).unwrap_or("");
            if flags != "master" {
                return Err(format!("sentinel {s}: master flags {flags}"));
            }
            let others = described
                .get("num-other-sentinels")
                .cloned()
                .unwrap_or_default();
            if others != (sentinels.len() - 1).to_string() {
                return Err(format!("sentinel {s} knows {others} other sentinels"));
            }
            let listed: Value = query(admin(*s), redis::cmd("SENTINEL").arg("REPLICAS").arg(name))?;
            let Value::Array(listed) = listed else {
                return Err("SENTINEL REPLICAS: not an array".into());
            };
            let mut healthy: Vec<u16> = listed
                .into_iter()
                .map(fields)
                .filter(|f| {
                    f.get("flags").is_some_and(|fl| fl == "slave")
                        && f.get("master-link-status").is_some_and(|l| l == "ok")
                        && f.get("master-port")
                            .is_some_and(|p| *p == master.to_string())
                })
                .filter_map(|f| f.get("port").and_then(|p| p.parse().ok()))
                .collect();
            healthy.sort_unstable();
            let mut want = replicas.clone();
            want.sort_unstable();
            if !want.iter().all(|r| healthy.contains(r)) {
                return Err(format!(
                    "sentinel {s} sees healthy replicas {healthy:?}, want {want:?}"
                ));
            }
            let quorum: String =
                query(admin(*s), redis::cmd("SENTINEL").arg("CKQUORUM").arg(name))?;
            if !quorum.starts_with("OK") {
                return Err(format!("sentinel {s}: CKQUORUM {quorum}"));
            }
        }
        Ok(())
    }

    fn live_sentinels(&self) -> Vec<u16> {
        live(&self.sentinels)
    }

    fn live_nodes(&self) -> Vec<u16> {
        live(&self.nodes)
    }

    /// The tail of every Sentinel's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for s in &self.sentinels {
            let log = s.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            out.push_str(&format!("--- sentinel {} ---\n", s.port()));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// A Sentinel that names a node which is not a master, for testing a client's `ROLE` check:
/// a standalone master, a replica of it, and a Sentinel with quorum 1 that monitors
/// `master_name` at the *replica's* address. None of them touches another topology.
#[derive(Debug)]
pub struct StaleSentinel {
    // Kept for their drop: the replica's master must outlive it.
    _master: Process,
    replica: Process,
    sentinel: Process,
}

impl StaleSentinel {
    /// Starts the three processes and waits until the Sentinel answers with the replica.
    pub fn start(master_name: &str) -> Self {
        let master = Process::start(ServerSpec::redis());
        let replica = Process::start(
            ServerSpec::redis().config(format!("replicaof 127.0.0.1 {}", master.port())),
        );
        let sentinel = Process::start(
            ServerSpec::redis()
                .config(format!(
                    "sentinel monitor {master_name} 127.0.0.1 {} 1",
                    replica.port()
                ))
                .arg("--sentinel"),
        );
        let (s, r) = (sentinel.port(), replica.port());
        let ok = wait_until(Duration::from_secs(10), || {
            master_addr(s, master_name) == Some(r) && role(r).as_deref() == Some("slave")
        });
        assert!(ok, "stale sentinel not ready:\n{}", sentinel.log());
        StaleSentinel {
            _master: master,
            replica,
            sentinel,
        }
    }

    /// The stale Sentinel as `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.sentinel.port())
    }

    /// The port of the replica it names as master.
    pub fn named_port(&self) -> u16 {
        self.replica.port()
    }
}

fn live(processes: &[Process]) -> Vec<u16> {
    processes
        .iter()
        .filter(|p| p.pid().is_some())
        .map(client_port)
        .collect()
}

/// The port clients use: the TLS one when the process serves TLS.
fn client_port(process: &Process) -> u16 {
    process.tls_port().unwrap_or_else(|| process.port())
}

/// One command on a fresh blocking connection to `127.0.0.1:port`, with short timeouts.
pub fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Result<T, String> {
    let client =
        redis::Client::open(format!("redis://127.0.0.1:{port}/")).map_err(|e| e.to_string())?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .map_err(|e| format!("connect {port}: {e}"))?;
    con.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    cmd.query(&mut con).map_err(|e| format!("{port}: {e}"))
}

fn query_pipe<T: redis::FromRedisValue>(port: u16, pipe: &redis::Pipeline) -> Result<T, String> {
    let client =
        redis::Client::open(format!("redis://127.0.0.1:{port}/")).map_err(|e| e.to_string())?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .map_err(|e| format!("connect {port}: {e}"))?;
    con.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    pipe.query(&mut con).map_err(|e| format!("{port}: {e}"))
}

/// `SENTINEL GET-MASTER-ADDR-BY-NAME` on the Sentinel at `port`: the master's port, if it
/// answers with one.
pub fn master_addr(sentinel_port: u16, name: &str) -> Option<u16> {
    let reply: Option<(String, u16)> = query(
        sentinel_port,
        redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(name),
    )
    .ok()?;
    reply.map(|(_, port)| port)
}

/// The first element of `ROLE` on the node at `port` (`master`, `slave`, `sentinel`).
pub fn role(port: u16) -> Option<String> {
    let reply: Vec<Value> = query(port, &redis::cmd("ROLE")).ok()?;
    match reply.first()? {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// A Sentinel reply describing one instance (a flat key/value array, or a map) as a map.
fn fields(value: Value) -> HashMap<String, String> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    };
    match value {
        Value::Array(items) => items
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (text(&c[0]), text(&c[1])))
            .collect(),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), text(v))).collect(),
        _ => HashMap::new(),
    }
}
