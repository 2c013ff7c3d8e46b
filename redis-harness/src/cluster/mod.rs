//! Redis Cluster topologies: primaries and their replicas, each a real
//! `redis-server --cluster-enabled yes` process in its own directory on a free loopback port,
//! joined with `redis-cli --cluster create`.
//!
//! Nodes are named by their port, as in the [Sentinel topology](crate::sentinel). Roles are
//! read live from the nodes (`ROLE`, `CLUSTER SLOTS`), since failovers and restarts change
//! them. Everything waits by condition with a deadline; a check queries every live node, so
//! checks run every 25 ms rather than back to back, to leave the CPU to the servers.
//!
//! Test-only settings: `cluster-node-timeout` is 1000 ms by default
//! ([`ClusterSpec::node_timeout`]), so a killed primary's replica takes over in about two
//! seconds; `repl-diskless-sync-delay 0`, so a (re)joining replica syncs at once. No
//! persistence, as everywhere in the harness: a restarted node comes back empty, with only its
//! `nodes.conf` (its identity and its view of the cluster).
//!
//! Needs `redis-cli` (Debian package `redis-tools`) besides `redis-server`; a missing one
//! panics with [`CLI_INSTALL_HINT`] or [`INSTALL_HINT`](crate::INSTALL_HINT).
//!
//! ```no_run
//! use redis_harness::cluster::ClusterTopology;
//!
//! let mut cluster = ClusterTopology::start(); // 3 primaries, 1 replica each
//! let victim = cluster.primary_of_key("session:abc");
//! cluster.kill(victim);
//! let failover = cluster.wait_failover(victim);
//! assert_eq!(cluster.primary_of_key("session:abc"), failover.promoted);
//! println!("failover took {:?}", failover.took);
//! ```

mod cli;
mod view;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::port::free_port;
use crate::process::{Process, ServerSpec};
use crate::wait::wait_until;
use view::Role;

pub use cli::CLI_INSTALL_HINT;
pub use view::{SlotRange, SLOT_COUNT};

/// How long a fresh cluster may take to be ready, and the base of every other wait here
/// (failover and stabilisation waits add four node timeouts to it).
pub const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one `redis-cli --cluster reshard` may run.
const RESHARD_TIMEOUT: Duration = Duration::from_secs(120);

/// How often a cluster-wide check runs while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// What to start: by default 3 primaries with 1 replica each, `cluster-node-timeout 1000`.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    primaries: usize,
    replicas_per_primary: usize,
    node_timeout: Duration,
    lines: Vec<String>,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            primaries: 3,
            replicas_per_primary: 1,
            node_timeout: Duration::from_millis(1000),
            lines: Vec::new(),
        }
    }
}

impl ClusterSpec {
    /// The default spec (see the type docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// How many primaries share the slots.
    ///
    /// # Panics
    /// Below 3, which `redis-cli --cluster create` refuses.
    pub fn primaries(mut self, n: usize) -> Self {
        assert!(
            n >= 3,
            "redis-cli --cluster create needs at least 3 primaries"
        );
        self.primaries = n;
        self
    }

    /// How many replicas each primary gets (0 for none: then nothing fails over).
    pub fn replicas_per_primary(mut self, n: usize) -> Self {
        self.replicas_per_primary = n;
        self
    }

    /// `cluster-node-timeout`: how long a node may be unreachable before it counts as
    /// failing. A failover takes a little over twice this.
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// Adds a config line for every node. A `cluster-node-timeout` line sets
    /// [`node_timeout`](Self::node_timeout), so the harness's waits know it.
    ///
    /// # Panics
    /// On a `cluster-node-timeout` line without a number of milliseconds.
    pub fn config(mut self, line: impl Into<String>) -> Self {
        let line = line.into();
        if let Some(ms) = line.trim().strip_prefix("cluster-node-timeout") {
            let ms = ms
                .trim()
                .parse()
                .expect("cluster-node-timeout <milliseconds>");
            return self.node_timeout(Duration::from_millis(ms));
        }
        self.lines.push(line);
        self
    }

    /// Starts every node, joins them with `redis-cli --cluster create`, and waits until the
    /// cluster is ready: every node says `cluster_state:ok` and knows every other node, every
    /// node's `CLUSTER SLOTS` is the same map covering all 16384 slots, and every replica is
    /// synced with its primary.
    ///
    /// # Panics
    /// If `redis-server` or `redis-cli` is missing, or the cluster is not ready within
    /// [`CLUSTER_READY_TIMEOUT`] (the message carries the nodes' logs).
    pub fn start(self) -> ClusterTopology {
        cli::require();
        let tool_dir = tempfile::Builder::new()
            .prefix("redis-cluster-")
            .tempdir()
            .expect("cannot create a temp dir for redis-cli logs");
        let count = self.primaries * (1 + self.replicas_per_primary);
        let nodes = (0..count)
            .map(|_| Process::start(self.node_spec(free_port())))
            .collect();
        let topology = ClusterTopology {
            spec: self,
            nodes,
            kills: HashMap::new(),
            tool_dir,
        };
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(topology.addrs());
        args.extend([
            "--cluster-replicas".into(),
            topology.spec.replicas_per_primary.to_string(),
            "--cluster-yes".into(),
        ]);
        if let Err(e) = cli::run(topology.tool_dir.path(), &args, CLUSTER_READY_TIMEOUT) {
            panic!("{e}\n{}", topology.logs());
        }
        let replicas = topology.spec.primaries * topology.spec.replicas_per_primary;
        topology.wait_ready(Some(replicas), CLUSTER_READY_TIMEOUT);
        topology
    }

    fn node_spec(&self, bus_port: u16) -> ServerSpec {
        let mut spec = ServerSpec::redis()
            .config("cluster-enabled yes")
            // Relative: redis resolves it in `dir`, the first line of the config, so a
            // restart in the same dir finds the node's identity again.
            .config("cluster-config-file nodes.conf")
            // Explicit: the default, port + 10000, may be taken or above 65535.
            .config(format!("cluster-port {bus_port}"))
            .config(format!(
                "cluster-node-timeout {}",
                self.node_timeout.as_millis()
            ))
            // A new or rejoining replica syncs at once, not after waiting 5 s for company.
            .config("repl-diskless-sync-delay 0");
        for line in &self.lines {
            spec = spec.config(line.clone());
        }
        spec
    }
}

/// A completed failover, as [`ClusterTopology::wait_failover`] saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failover {
    /// The port of the killed primary.
    pub killed: u16,
    /// The port of its replica that took over its slots.
    pub promoted: u16,
    /// From the kill until the replica was primary and every live node said
    /// `cluster_state:ok` (first seen; checks run every 25 ms).
    pub took: Duration,
}

/// What [`ClusterTopology::kill`] noted about a node.
#[derive(Debug)]
struct Kill {
    at: Instant,
    /// Its replicas at the time, if it was a primary.
    replicas: Option<Vec<u16>>,
}

/// A running Redis Cluster owned by one test. Dropping it kills every node and removes their
/// directories (also when the test panics).
#[derive(Debug)]
pub struct ClusterTopology {
    spec: ClusterSpec,
    nodes: Vec<Process>,
    kills: HashMap<u16, Kill>,
    // redis-cli's output, kept for failure messages.
    tool_dir: TempDir,
}

impl ClusterTopology {
    /// A default cluster: 3 primaries with 1 replica each (see [`ClusterSpec::start`]).
    pub fn start() -> Self {
        ClusterSpec::default().start()
    }

    /// The spec it was started with.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// Every node's port, in start order (killed ones included).
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(Process::port).collect()
    }

    /// Every node as `127.0.0.1:port`, in start order.
    pub fn addrs(&self) -> Vec<String> {
        self.ports()
            .into_iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// Every node as `redis://127.0.0.1:port`, e.g. for `redis::cluster::ClusterClient`.
    pub fn urls(&self) -> Vec<String> {
        self.ports()
            .into_iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The seed list `127.0.0.1:p1,127.0.0.1:p2,...`: the `REDIS_CLUSTER_NODES` value.
    pub fn seeds(&self) -> String {
        self.addrs().join(",")
    }

    /// The node on `port`, for fault tests beyond [`kill`](Self::kill) and
    /// [`restart`](Self::restart) (which also keep the harness's notes: prefer them).
    ///
    /// # Panics
    /// If no node has that port.
    pub fn node(&mut self, port: u16) -> &mut Process {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .unwrap_or_else(|| panic!("no cluster node on port {port}"))
    }

    /// The node's cluster id (`CLUSTER MYID`, 40 hex digits).
    ///
    /// # Panics
    /// If the node does not answer.
    pub fn node_id(&self, port: u16) -> String {
        view::query(port, redis::cmd("CLUSTER").arg("MYID"))
            .unwrap_or_else(|e| panic!("CLUSTER MYID: {e}"))
    }

    /// The live nodes that are primaries now (by their own `ROLE`), in start order.
    pub fn primaries(&self) -> Vec<u16> {
        self.live()
            .into_iter()
            .filter(|p| view::role(*p) == Ok(Role::Primary))
            .collect()
    }

    /// The live nodes that are replicas now (by their own `ROLE`), in start order.
    pub fn replicas(&self) -> Vec<u16> {
        self.live()
            .into_iter()
            .filter(|p| matches!(view::role(*p), Ok(Role::Replica { .. })))
            .collect()
    }

    /// The live nodes that replicate `primary` now (by their own `ROLE`).
    pub fn replicas_of(&self, primary: u16) -> Vec<u16> {
        self.live()
            .into_iter()
            .filter(|p| matches!(view::role(*p), Ok(Role::Replica { of, .. }) if of == primary))
            .collect()
    }

    /// A blocking connection to one node (not cluster-aware: a key of another node's slot
    /// gets `MOVED`; a replica serves reads only after `READONLY`).
    ///
    /// # Panics
    /// If the node does not accept it within 5 seconds.
    pub fn connection(&self, port: u16) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .expect("the harness URL is valid")
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("cannot connect to cluster node {port}: {e}"))
    }

    /// The slot map every live node agrees on (waits until they do), sorted by slot.
    ///
    /// # Panics
    /// If the live nodes do not agree in time.
    pub fn slot_map(&self) -> Vec<SlotRange> {
        let agreed = poll(self.wait_timeout(), || {
            let mut maps = self.live().into_iter().map(view::slot_map);
            let first = maps.next().ok_or("no live node")??;
            for map in maps {
                if map? != first {
                    return Err("the live nodes disagree on the slot map".to_string());
                }
            }
            Ok(first)
        });
        agreed.unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// The primary serving `slot` in the agreed [slot map](Self::slot_map). Right after a
    /// kill that is still the dead node, until [`wait_failover`](Self::wait_failover).
    ///
    /// # Panics
    /// If no node serves the slot.
    pub fn primary_of_slot(&self, slot: u16) -> u16 {
        self.slot_map()
            .iter()
            .find(|r| r.contains(slot))
            .map(|r| r.primary)
            .unwrap_or_else(|| panic!("no node serves slot {slot}"))
    }

    /// The slots `primary` serves in the agreed [slot map](Self::slot_map), ascending.
    pub fn slots_of(&self, primary: u16) -> Vec<u16> {
        self.slot_map()
            .iter()
            .filter(|r| r.primary == primary)
            .flat_map(|r| r.start..=r.end)
            .collect()
    }

    /// The hash slot of `key`, as the cluster computes it (`CLUSTER KEYSLOT`).
    ///
    /// # Panics
    /// If no live node answers.
    pub fn slot_of_key(&self, key: &str) -> u16 {
        let keyslot = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).clone();
        self.live()
            .into_iter()
            .find_map(|p| view::query(p, &keyslot).ok())
            .expect("no live cluster node answers CLUSTER KEYSLOT")
    }

    /// The primary serving `key`'s slot (see [`primary_of_slot`](Self::primary_of_slot)).
    pub fn primary_of_key(&self, key: &str) -> u16 {
        self.primary_of_slot(self.slot_of_key(key))
    }

    /// SIGKILLs the node on `port`; it stays dead until [`restart`](Self::restart). Notes the
    /// time and, if it was a primary, its replicas, for [`wait_failover`](Self::wait_failover).
    pub fn kill(&mut self, port: u16) {
        let replicas = match view::role(port) {
            Ok(Role::Primary) => Some(self.replicas_of(port)),
            _ => None,
        };
        self.node(port).kill();
        let at = Instant::now();
        self.kills.insert(port, Kill { at, replicas });
    }

    /// Starts the node on `port` again (after [`kill`](Self::kill); kills it first if it
    /// runs), on the same port and in the same directory: it rejoins with its `nodes.conf`,
    /// empty (no persistence). A primary that was failed over comes back as a replica of its
    /// successor. Waits until the cluster is [stable](Self::wait_stable).
    ///
    /// # Panics
    /// If the node does not come back or the cluster does not settle in time.
    pub fn restart(&mut self, port: u16) {
        self.node(port).restart();
        self.kills.remove(&port);
        self.wait_stable();
    }

    /// After [`kill`](Self::kill)ing a primary: waits until one of its replicas (at the time
    /// of the kill) is primary and the cluster is [stable](Self::wait_stable) again, which
    /// includes every live node saying `cluster_state:ok` and agreeing that the promoted
    /// node serves the killed one's slots.
    ///
    /// # Panics
    /// If `killed` was not killed with [`kill`](Self::kill), was no primary or had no
    /// replica then, or no failover completes in time (with the nodes' logs).
    pub fn wait_failover(&self, killed: u16) -> Failover {
        let kill = self
            .kills
            .get(&killed)
            .unwrap_or_else(|| panic!("node {killed} was not killed with ClusterTopology::kill"));
        let replicas = kill
            .replicas
            .as_ref()
            .unwrap_or_else(|| panic!("node {killed} was not a primary when killed"));
        assert!(!replicas.is_empty(), "primary {killed} had no replica");
        let promoted = poll(self.wait_timeout(), || {
            let promoted = replicas
                .iter()
                .copied()
                .find(|r| view::role(*r) == Ok(Role::Primary))
                .ok_or_else(|| format!("no replica of {killed} ({replicas:?}) promoted yet"))?;
            self.check(None)?;
            Ok(promoted)
        })
        .unwrap_or_else(|e| panic!("no failover of {killed}: {e}\n{}", self.logs()));
        Failover {
            killed,
            promoted,
            took: kill.at.elapsed(),
        }
    }

    /// Moves `slots` of `from`'s slots, with their keys, to `to`, live, with
    /// `redis-cli --cluster reshard` (it takes `from`'s lowest slots first, and moves keys in
    /// batches of 10 with `MIGRATE`: clients meanwhile get `ASK` redirections). Waits until
    /// the cluster is [stable](Self::wait_stable) before and after. Returns the moved slots.
    ///
    /// Takes `&self`, so a test can run a workload on other threads meanwhile.
    ///
    /// # Panics
    /// If `slots` is 0 or more than `from` serves, or the reshard fails or does not settle.
    pub fn reshard(&self, from: u16, to: u16, slots: usize) -> Vec<u16> {
        assert!(slots > 0, "reshard at least one slot");
        self.wait_stable();
        let before = self.slots_of(from);
        assert!(
            slots <= before.len(),
            "{from} serves {} slots, cannot move {slots}",
            before.len()
        );
        let args = [
            "--cluster".to_string(),
            "reshard".into(),
            format!("127.0.0.1:{to}"),
            "--cluster-from".into(),
            self.node_id(from),
            "--cluster-to".into(),
            self.node_id(to),
            "--cluster-slots".into(),
            slots.to_string(),
            "--cluster-yes".into(),
        ];
        if let Err(e) = cli::run(self.tool_dir.path(), &args, RESHARD_TIMEOUT) {
            panic!("{e}\n{}", self.logs());
        }
        self.wait_stable();
        let map = self.slot_map();
        let moved: Vec<u16> = before
            .into_iter()
            .filter(|s| map.iter().any(|r| r.contains(*s) && r.primary == to))
            .collect();
        assert_eq!(
            moved.len(),
            slots,
            "redis-cli moved another number of slots"
        );
        moved
    }

    /// Waits until the cluster is steady: every live node says `cluster_state:ok`, knows
    /// every node, and has the same `CLUSTER SLOTS` map covering all 16384 slots with no slot
    /// open (migrating or importing); every slot is served by a live primary; every live node
    /// without slots is a replica of a live node and synced with it; no live node thinks
    /// another live node is failing.
    ///
    /// # Panics
    /// On timeout, with what was last missing and the nodes' logs.
    pub fn wait_stable(&self) {
        self.wait_ready(None, self.wait_timeout());
    }

    /// The tail of every node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            out.push_str(&format!("--- cluster node {} ---\n", node.port()));
            out.push_str(&cli::tail(&node.log()));
            out.push('\n');
        }
        out
    }

    fn wait_ready(&self, want_replicas: Option<usize>, timeout: Duration) {
        if let Err(missing) = poll(timeout, || self.check(want_replicas)) {
            panic!(
                "cluster not stable within {timeout:?}: {missing}\n{}",
                self.logs()
            );
        }
    }

    fn check(&self, want_replicas: Option<usize>) -> Result<Vec<SlotRange>, String> {
        view::check(&self.live(), self.nodes.len(), want_replicas)
    }

    fn live(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.pid().is_some())
            .map(Process::port)
            .collect()
    }

    fn wait_timeout(&self) -> Duration {
        CLUSTER_READY_TIMEOUT + 4 * self.spec.node_timeout
    }
}

/// Runs `check` every [`POLL_INTERVAL`] until it succeeds or `timeout` passes; returns its
/// last result.
fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let mut last = Err("not checked yet".to_string());
    let mut next = Instant::now();
    wait_until(timeout, || {
        if Instant::now() < next {
            return false;
        }
        next = Instant::now() + POLL_INTERVAL;
        last = check();
        last.is_ok()
    });
    last
}
