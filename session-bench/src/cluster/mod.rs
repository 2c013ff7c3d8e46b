//! Our Redis Cluster backend (`session_cluster::ClusterStore`) against our `RedisStore` on one
//! Redis server, both started by this run (redis-harness): 3 primaries with a replica each on
//! loopback, and one `redis-server`.
//!
//! - **Operations**: load, save (`SessionStoreExt::save` of a loaded session: a
//!   `PutMode::IfVersion` write), refresh, create and delete at the Redis table's task counts,
//!   the two stores in the same cells (standalone the baseline), the same fixture session,
//!   each task one user. The servers' CPU time per operation comes from `INFO cpu` read before
//!   and after every window (the cluster's primaries summed, its replicas apart).
//! - **count**: `count()` against a `SCAN` count of every primary (all three at once), after
//!   filling through the bulk import path as the count table does.
//! - **Spread**: per primary, its session keys (`SCAN`) and the entries of the slot expiry
//!   indexes it serves (`ZCARD` of each), as shares of the total.
//!
//! Every node shares the machine's cores with the client, so the cluster's figures are what
//! going through a cluster costs, not what it scales to.

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis_harness::cluster::ClusterTopology;
use redis_harness::RedisServer;
use session_cluster::{ClusterConfig, ClusterStore};
use session_core::{Session, SessionData, SessionId, SessionStore, SessionStoreExt as _};
use session_redis::RedisStore;

use crate::count::{fill, median_duration, scan_count, timed};
use crate::driver::{cell, BoxFuture, Contender, Plan};
use crate::redis::{our_config, PER_TASK, TASKS};
use crate::report::CellRow;
use crate::seed::{self, slot, MAX_TASKS};

mod count;
mod ops;

use count::counts;
pub use count::near_a_third;
use ops::*;

/// The standalone store's name in the tables (the baseline of every cell).
pub const STANDALONE: &str = "RedisStore, one server";
/// The cluster store's name in the tables.
pub const CLUSTER: &str = "ClusterStore, 3 primaries";

/// Key prefixes, the same on both sides.
mod prefix {
    /// Load, save, refresh.
    pub const OPS: &str = "cl:";
    /// Create (everything under it deleted after each window).
    pub const CREATE: &str = "cl-c:";
    /// Delete (its pool refilled after each window).
    pub const DELETE: &str = "cl-d:";
    /// The count and spread sessions.
    pub const COUNT: &str = "cl-n:";
}

/// Sessions in the delete pool at the start; after each window it is refilled to at least
/// three times what the window took (a warm-up window is about 0.4 of a measured one).
const POOL_START: usize = 20_000;

/// Builds one side's contender for an operation.
type MakeContender = fn(&Arc<Side>) -> Contender;

/// What a contender does after each window, outside the CPU reading.
type AfterWindow = fn(Arc<Side>) -> BoxFuture<()>;

/// CPU seconds of the cluster's primaries and of its replicas (standalone: the one server's
/// and none).
type Cpu = (f64, f64);

/// A server, by port, with the slots it serves (all of them standalone).
#[derive(Debug, Clone)]
pub struct Primary {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its slot ranges.
    pub slots: Vec<RangeInclusive<u16>>,
}

/// Where the two stores' servers are.
#[derive(Debug, Clone)]
struct Servers {
    /// The cluster's seed list (empty: one server).
    seeds: Vec<u16>,
    primaries: Vec<Primary>,
    replicas: Vec<u16>,
}

impl Servers {
    fn one(port: u16) -> Servers {
        Servers {
            seeds: Vec::new(),
            primaries: vec![Primary {
                port,
                slots: vec![0..=session_redis::keys::SLOTS - 1],
            }],
            replicas: Vec::new(),
        }
    }

    fn of(cluster: &ClusterTopology) -> Servers {
        let map = cluster.slot_map();
        let primaries = cluster
            .primaries()
            .into_iter()
            .map(|port| Primary {
                port,
                slots: map
                    .iter()
                    .filter(|r| r.primary == port)
                    .map(|r| r.start..=r.end)
                    .collect(),
            })
            .collect();
        Servers {
            seeds: cluster.ports(),
            primaries,
            replicas: cluster.replicas(),
        }
    }

    async fn connect(&self) -> Connections {
        let mut primaries = Vec::new();
        for p in &self.primaries {
            primaries.push(node(p.port).await);
        }
        let mut replicas = Vec::new();
        for &port in &self.replicas {
            replicas.push(node(port).await);
        }
        Connections {
            primaries,
            replicas,
        }
    }
}

/// A plain connection to the node on `port` (no cluster routing).
async fn node(port: u16) -> MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .expect("a loopback URL")
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the node on {port}: {e}"))
}

/// One plain connection per node, in [`Servers`] order.
#[derive(Clone)]
struct Connections {
    primaries: Vec<MultiplexedConnection>,
    replicas: Vec<MultiplexedConnection>,
}

/// `used_cpu_sys + used_cpu_user` of one server, in seconds.
async fn cpu_seconds(mut con: MultiplexedConnection) -> f64 {
    crate::redis::cpu_seconds(&mut con).await
}

impl Connections {
    /// Every node's CPU seconds so far.
    async fn cpu(&self) -> (Vec<f64>, Vec<f64>) {
        let primaries = futures::future::join_all(self.primaries.iter().cloned().map(cpu_seconds));
        let replicas = futures::future::join_all(self.replicas.iter().cloned().map(cpu_seconds));
        futures::join!(primaries, replicas)
    }

    /// Deletes every key matching `pattern` on every primary, one key per `UNLINK` (on a
    /// cluster node a multi-key command must stay in one slot).
    async fn unlink_all(&self, pattern: &str) {
        for con in &self.primaries {
            let mut con = con.clone();
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut con)
                    .await
                    .expect("SCAN");
                if !keys.is_empty() {
                    let mut pipe = redis::pipe();
                    for key in &keys {
                        pipe.cmd("UNLINK").arg(key).ignore();
                    }
                    let () = pipe.query_async(&mut con).await.expect("UNLINK");
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
    }
}

/// One cell's figures and the servers' CPU time per operation (µs).
#[derive(Debug, Clone)]
pub struct OpsRow {
    /// Throughput and latency, standalone first.
    pub cell: CellRow,
    /// The standalone server's CPU µs per operation.
    pub standalone_cpu_us: f64,
    /// The cluster's primaries' CPU µs per operation, summed.
    pub primaries_cpu_us: f64,
    /// The cluster's replicas' CPU µs per operation, summed.
    pub replicas_cpu_us: f64,
}

/// One primary's share of the sessions.
#[derive(Debug, Clone)]
pub struct Share {
    /// Its port.
    pub port: u16,
    /// Slots it serves.
    pub slots: usize,
    /// Session keys on it (`SCAN`).
    pub keys: u64,
    /// Entries of the expiry indexes of its slots (`ZCARD` of each).
    pub entries: u64,
}

/// `count()` on the cluster at one size.
#[derive(Debug, Clone)]
pub struct CountRow {
    /// Live sessions.
    pub sessions: u64,
    /// What `count()` answered.
    pub counted: u64,
    /// What the `SCAN` count found.
    pub scanned: u64,
    /// Median `count()` time.
    pub count_median: Duration,
    /// Fastest `count()` call.
    pub count_min: Duration,
    /// `count()` calls timed.
    pub count_calls: usize,
    /// Median `SCAN` count time (every primary at once).
    pub scan_median: Duration,
    /// `SCAN` counts timed.
    pub scan_calls: usize,
    /// Server time per `EVALSHA` on a primary (each `count()` sends one to each), µs.
    pub evalsha_server_us: f64,
    /// Server time per `SCAN` page, µs.
    pub scan_server_us: f64,
    /// Filling up to this size (from the previous one).
    pub fill: Duration,
    /// Per primary.
    pub spread: Vec<Share>,
}

/// Everything the cluster table shows.
#[derive(Debug, Clone)]
pub struct ClusterReport {
    /// Per operation and task count.
    pub ops: Vec<OpsRow>,
    /// Per size.
    pub counts: Vec<CountRow>,
    /// Deletes that found their pool empty, per side (0 when the pools sufficed).
    pub dry: (u64, u64),
    /// Cores, for the caption.
    pub cores: usize,
    /// 1-minute load average when the table started and when it ended.
    pub load: (String, String),
}

/// Starts the servers here, on the calling thread (their parent-death signal is tied to it:
/// call it from the main thread), and runs the table on a worker of `rt`.
pub fn run(
    rt: &tokio::runtime::Runtime,
    plan: Plan,
    sizes: &'static [usize],
    count_calls: usize,
    scan_calls: usize,
) -> ClusterReport {
    let load_at_start = crate::machine::load_average();
    let server = RedisServer::start();
    let cluster = ClusterTopology::start();
    let (one, many) = (Servers::one(server.port()), Servers::of(&cluster));
    assert_eq!(many.primaries.len(), 3, "the harness starts 3 primaries");
    let mut report = rt
        .block_on(rt.spawn(async move {
            let ops = measure(&one, &many, plan).await;
            let counts = counts(&many, sizes, count_calls, scan_calls).await;
            (ops, counts)
        }))
        .map(|((ops, dry), counts)| ClusterReport {
            ops,
            counts,
            dry,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load: (String::new(), String::new()),
        })
        .expect("the cluster table");
    report.load = (load_at_start, crate::machine::load_average());
    drop(cluster);
    drop(server);
    report
}

async fn measure(one: &Servers, many: &Servers, plan: Plan) -> (Vec<OpsRow>, (u64, u64)) {
    let a = Arc::new(Side::connect(STANDALONE, one).await);
    let b = Arc::new(Side::connect(CLUSTER, many).await);
    let ops: [(&'static str, MakeContender); 5] = [
        ("load", load),
        ("save", save),
        ("refresh", refresh),
        ("create", create),
        ("delete", delete),
    ];
    let mut rows = Vec::new();
    for (op, make) in ops {
        let contenders = [make(&a), make(&b)];
        for tasks in TASKS {
            a.meter.take();
            b.meter.take();
            let figures = cell(&contenders, tasks, plan).await;
            let per_op = |side: &Side| {
                let (ops, cpu) = side.meter.take();
                let n = ops.max(1) as f64;
                (cpu.0 * 1e6 / n, cpu.1 * 1e6 / n)
            };
            let (standalone, _) = per_op(&a);
            let (primaries, replicas) = per_op(&b);
            let row = OpsRow {
                cell: CellRow { op, tasks, figures },
                standalone_cpu_us: standalone,
                primaries_cpu_us: primaries,
                replicas_cpu_us: replicas,
            };
            eprintln!(
                "cluster {} (server CPU per op: {standalone:.1} µs one server, {primaries:.1} µs \
                 cluster primaries, {replicas:.1} µs replicas)",
                row.cell.progress_line()
            );
            rows.push(row);
        }
    }
    let dry = (
        a.pool.dry.load(Ordering::Relaxed),
        b.pool.dry.load(Ordering::Relaxed),
    );
    // The count part's `SCAN` then walks only its own keys, as on the count table's server.
    for side in [&a, &b] {
        for prefix in [prefix::OPS, prefix::CREATE, prefix::DELETE] {
            side.nodes.unlink_all(&format!("{prefix}*")).await;
        }
    }
    (rows, dry)
}

/// `usec_per_call` and `calls` of `name` since the last `CONFIG RESETSTAT`.
async fn command_stat(con: &mut MultiplexedConnection, name: &str) -> (f64, f64) {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(con)
        .await
        .expect("INFO commandstats");
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:")));
    let field = |f: &str| {
        line.and_then(|l| {
            l.split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{f}=")))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0)
    };
    (field("usec_per_call"), field("calls"))
}

/// Server µs per call of `name` over every connection, weighted by calls.
async fn usec_per_call(cons: &[MultiplexedConnection], name: &str) -> f64 {
    let (mut usec, mut calls) = (0.0, 0.0);
    for con in cons {
        let (per_call, n) = command_stat(&mut con.clone(), name).await;
        usec += per_call * n;
        calls += n;
    }
    if calls > 0.0 {
        usec / calls
    } else {
        f64::NAN
    }
}
