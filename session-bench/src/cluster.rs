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

/// Our store, on one server or on the cluster.
#[derive(Clone)]
enum Store {
    One(RedisStore),
    Cluster(ClusterStore),
}

impl Store {
    async fn connect(servers: &Servers, key_prefix: &str) -> Store {
        if servers.seeds.is_empty() {
            let config = our_config(servers.primaries[0].port, key_prefix);
            Store::One(
                RedisStore::connect(config)
                    .await
                    .expect("connect our store"),
            )
        } else {
            let nodes = servers
                .seeds
                .iter()
                .map(|&port| ("127.0.0.1".to_owned(), port))
                .collect();
            let config = ClusterConfig {
                redis: our_config(0, key_prefix),
                ..ClusterConfig::new(nodes)
            };
            Store::Cluster(
                ClusterStore::connect(config)
                    .await
                    .expect("connect the cluster store"),
            )
        }
    }

    fn session_store(&self) -> Arc<dyn SessionStore> {
        match self {
            Store::One(s) => Arc::new(s.clone()),
            Store::Cluster(s) => Arc::new(s.clone()),
        }
    }

    /// Sessions `from..to` through the bulk import path (see [`fill`]).
    async fn fill(&self, from: usize, to: usize) -> Vec<SessionId> {
        match self {
            Store::One(s) => fill(s, from, to).await,
            Store::Cluster(s) => fill(s.redis(), from, to).await,
        }
    }

    /// Every expiry index key, by slot (one key on one server).
    fn expiry_indexes(&self) -> Vec<String> {
        match self {
            Store::One(s) => s.keys().expiry_indexes().to_vec(),
            Store::Cluster(s) => s.redis().keys().expiry_indexes().to_vec(),
        }
    }
}

/// Sessions the delete windows delete: taken one per operation, refilled between windows.
#[derive(Debug, Default)]
struct Pool {
    ids: Mutex<Vec<SessionId>>,
    /// The size it is refilled to.
    target: AtomicUsize,
    /// Deletes that found the pool empty (they deleted a missing id instead).
    dry: AtomicU64,
}

/// Operations and servers' CPU seconds since the last [`Meter::take`].
#[derive(Debug, Default)]
struct Meter {
    ops: AtomicU64,
    before: Mutex<(Vec<f64>, Vec<f64>)>,
    cpu: Mutex<Cpu>,
}

impl Meter {
    fn take(&self) -> (u64, Cpu) {
        let ops = self.ops.swap(0, Ordering::Relaxed);
        let cpu = std::mem::take(&mut *self.cpu.lock().expect("not poisoned"));
        (ops, cpu)
    }
}

/// One side of the comparison: a store on its servers, with its sessions.
struct Side {
    name: &'static str,
    /// Load, save, refresh.
    store: Arc<dyn SessionStore>,
    /// Its sessions, by [`seed::slot`].
    ids: Vec<SessionId>,
    /// The same sessions as last loaded or saved (each slot is one task's only).
    loaded: Vec<Mutex<Session>>,
    create: Arc<dyn SessionStore>,
    delete: Arc<dyn SessionStore>,
    delete_store: Store,
    pool: Pool,
    /// Session data per task (each task is one user).
    data: Vec<SessionData>,
    nodes: Connections,
    meter: Meter,
}

impl Side {
    async fn connect(name: &'static str, servers: &Servers) -> Side {
        let store = Store::connect(servers, prefix::OPS).await.session_store();
        let create = Store::connect(servers, prefix::CREATE)
            .await
            .session_store();
        let delete_store = Store::connect(servers, prefix::DELETE).await;
        let data: Vec<SessionData> = (0..MAX_TASKS)
            .map(|t| seed::data(&format!("user{t}")))
            .collect();
        let mut ids = Vec::new();
        let mut loaded = Vec::new();
        for k in 0..MAX_TASKS * PER_TASK {
            // `seed::slot(task, ..)` is `task` modulo MAX_TASKS: each task is one user.
            let session = store
                .create(data[k % MAX_TASKS].clone())
                .await
                .expect("create");
            ids.push(session.id().clone());
            loaded.push(Mutex::new(session));
        }
        let side = Side {
            name,
            store,
            ids,
            loaded,
            create,
            delete: delete_store.session_store(),
            delete_store,
            pool: Pool::default(),
            data,
            nodes: servers.connect().await,
            meter: Meter::default(),
        };
        let pool = side.delete_store.fill(0, POOL_START).await;
        *side.pool.ids.lock().expect("not poisoned") = pool;
        side.pool.target.store(POOL_START, Ordering::Relaxed);
        side
    }
}

/// Tops the delete pool up to its target, after raising the target to three times what the
/// last window took (the pool was at its target before it).
async fn refill(side: &Side) {
    let have = side.pool.ids.lock().expect("not poisoned").len();
    let target = side.pool.target.load(Ordering::Relaxed);
    let target = target.max(3 * target.saturating_sub(have));
    side.pool.target.store(target, Ordering::Relaxed);
    if have < target {
        let fresh = side.delete_store.fill(0, target - have).await;
        side.pool.ids.lock().expect("not poisoned").extend(fresh);
    }
}

/// A contender running `op` on `side`, counting its operations and its servers' CPU time
/// (hooks outside the windows), then `after` (outside the CPU reading).
fn contender<F, Fut>(side: &Arc<Side>, op: F, after: Option<AfterWindow>) -> Contender
where
    F: Fn(Arc<Side>, usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (s, before, after_side) = (side.clone(), side.clone(), side.clone());
    Contender::new(side.name, move |t, i| {
        let s = s.clone();
        let done = op(s.clone(), t, i);
        async move {
            done.await;
            s.meter.ops.fetch_add(1, Ordering::Relaxed);
        }
    })
    .before_window(move || {
        let s = before.clone();
        Box::pin(async move {
            let now = s.nodes.cpu().await;
            *s.meter.before.lock().expect("not poisoned") = now;
        })
    })
    .after_window(move || {
        let s = after_side.clone();
        Box::pin(async move {
            let (primaries, replicas) = s.nodes.cpu().await;
            {
                let before = s.meter.before.lock().expect("not poisoned");
                let delta = |now: &[f64], then: &[f64]| -> f64 {
                    now.iter().zip(then).map(|(n, t)| n - t).sum()
                };
                let mut cpu = s.meter.cpu.lock().expect("not poisoned");
                cpu.0 += delta(&primaries, &before.0);
                cpu.1 += delta(&replicas, &before.1);
            }
            if let Some(after) = after {
                after(s).await;
            }
        })
    })
}

fn load(s: &Arc<Side>) -> Contender {
    contender(
        s,
        |s, t, i| async move {
            let id = &s.ids[slot(t, i, PER_TASK)];
            assert!(s.store.load(id).await.unwrap().is_some());
        },
        None,
    )
}

fn save(s: &Arc<Side>) -> Contender {
    contender(
        s,
        |s, t, i| async move {
            let k = slot(t, i, PER_TASK);
            let session = s.loaded[k].lock().expect("not poisoned").clone();
            let saved = s.store.save(session).await.unwrap();
            *s.loaded[k].lock().expect("not poisoned") = saved;
        },
        None,
    )
}

fn refresh(s: &Arc<Side>) -> Contender {
    contender(
        s,
        |s, t, i| async move {
            let id = &s.ids[slot(t, i, PER_TASK)];
            assert!(s.store.refresh(id).await.unwrap());
        },
        None,
    )
}

fn create(s: &Arc<Side>) -> Contender {
    contender(
        s,
        |s, t, _| async move {
            s.create.create(s.data[t].clone()).await.unwrap();
        },
        Some(|s| {
            Box::pin(async move { s.nodes.unlink_all(&format!("{}*", prefix::CREATE)).await })
        }),
    )
}

fn delete(s: &Arc<Side>) -> Contender {
    contender(
        s,
        |s, _, _| async move {
            let id = s.pool.ids.lock().expect("not poisoned").pop();
            match id {
                Some(id) => assert!(s.delete.delete(&id).await.unwrap()),
                None => {
                    s.pool.dry.fetch_add(1, Ordering::Relaxed);
                    s.delete.delete(&SessionId::generate()).await.unwrap();
                }
            }
        },
        Some(|s| Box::pin(async move { refill(&s).await })),
    )
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

/// `count()` at each size against a `SCAN` count of every primary, and the spread.
async fn counts(
    servers: &Servers,
    sizes: &[usize],
    count_calls: usize,
    scan_calls: usize,
) -> Vec<CountRow> {
    let store = Store::connect(servers, prefix::COUNT).await;
    let counter = store.session_store();
    let indexes = store.expiry_indexes();
    let nodes = servers.connect().await;
    let mut rows = Vec::new();
    let mut have = 0;
    for &size in sizes {
        let (fill_time, _) = timed(store.fill(have, size)).await;
        have = size;
        // Warm up once (connections, the script cache), then count the servers' own time.
        counter.count().await.expect("count");
        for con in &nodes.primaries {
            let () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query_async(&mut con.clone())
                .await
                .expect("CONFIG RESETSTAT");
        }
        let mut count_times = Vec::new();
        let mut counted = 0;
        for _ in 0..count_calls {
            let (t, n) = timed(counter.count()).await;
            counted = n.expect("count");
            count_times.push(t);
        }
        let mut scan_times = Vec::new();
        let mut per_primary = Vec::new();
        for _ in 0..scan_calls {
            let scans = nodes.primaries.iter().map(|con| {
                let mut con = con.clone();
                async move { scan_count(&mut con, prefix::COUNT).await }
            });
            let started = Instant::now();
            per_primary = futures::future::join_all(scans).await;
            scan_times.push(started.elapsed());
        }
        let evalsha_server_us = usec_per_call(&nodes.primaries, "evalsha").await;
        let scan_server_us = usec_per_call(&nodes.primaries, "scan").await;
        let mut spread = Vec::new();
        for ((primary, con), keys) in servers
            .primaries
            .iter()
            .zip(&nodes.primaries)
            .zip(&per_primary)
        {
            let slots: Vec<usize> = primary
                .slots
                .iter()
                .flat_map(|r| usize::from(*r.start())..=usize::from(*r.end()))
                .collect();
            let mut pipe = redis::pipe();
            for &s in &slots {
                pipe.cmd("ZCARD").arg(&indexes[s]);
            }
            let sizes: Vec<u64> = pipe
                .query_async(&mut con.clone())
                .await
                .expect("ZCARD of every slot index");
            spread.push(Share {
                port: primary.port,
                slots: slots.len(),
                keys: *keys,
                entries: sizes.iter().sum(),
            });
        }
        let row = CountRow {
            sessions: size as u64,
            counted,
            scanned: per_primary.iter().sum(),
            count_median: median_duration(&count_times),
            count_min: count_times.iter().min().copied().unwrap_or_default(),
            count_calls,
            scan_median: median_duration(&scan_times),
            scan_calls,
            evalsha_server_us,
            scan_server_us,
            fill: fill_time,
            spread,
        };
        eprintln!(
            "cluster count: {size} sessions (filled in {:.1} s): count() {:?} = {counted}, \
             SCAN of every primary {:?} = {}; keys per primary {:?}, index entries {:?}",
            fill_time.as_secs_f64(),
            row.count_median,
            row.scan_median,
            row.scanned,
            row.spread.iter().map(|s| s.keys).collect::<Vec<_>>(),
            row.spread.iter().map(|s| s.entries).collect::<Vec<_>>(),
        );
        rows.push(row);
    }
    rows
}

/// Whether `part` of `total` is within ±10 % of a third (relative: 30.0 % to 36.7 %).
pub fn near_a_third(part: u64, total: u64) -> bool {
    // |3·part − total| ≤ total / 10, in integers (no rounding at the edges).
    10 * (3 * part).abs_diff(total) <= total
}

#[cfg(test)]
mod tests {
    use super::near_a_third;

    #[test]
    fn a_third_within_ten_percent() {
        assert!(near_a_third(333, 1000));
        assert!(near_a_third(300, 1000));
        assert!(near_a_third(366, 1000));
        assert!(!near_a_third(299, 1000));
        assert!(!near_a_third(367, 1000));
    }
}
