//! Store vs raw `redis` crate on the same server, same kind of connection, same run.
//!
//! `cargo bench -p session-redis --bench redis` (full) or with `BENCH_QUICK=1` / `-- --quick`
//! (< 1 min). For each store operation, at 1 and 50 concurrent tasks (each task on its own
//! sessions: no contention), prints ops/s beside the raw commands doing the nearest thing to
//! the same ~900-byte payload, the ratio store/raw, and the Redis server's CPU time per
//! operation (`INFO cpu` delta over the measured interval / ops done in it) on both sides.
//! Raw and store intervals alternate. Then Redis memory per session and `INFO commandstats`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis_harness::RedisServer;
use serde_json::{json, Map, Value};
use session_core::{
    PutMode, SessionConfig, SessionId, SessionStore, SessionStoreExt, SystemClock, Version,
    WriteOptions,
};
use session_redis::{RedisConfig, RedisStore};

// The same ~900-byte, existing-service-shaped session the integration tests use.
#[path = "../tests/common/mod.rs"]
mod common;
use common::seed_data as seed;

#[path = "support/mod.rs"]
mod support;
use support::{measure, op, Op, Probe, Row, Sample};

const TTL_MS: u64 = 7_200_000;
const IDS_PER_TASK: usize = 16;
const TASKS: [usize; 2] = [1, 50];

/// Fresh raw keys for `SET … NX`, never reused within a run.
static RAW_FRESH: AtomicU64 = AtomicU64::new(0);

/// `SET key payload PX ttl` (and `NX` when asked) on the raw connection.
async fn raw_set(con: &mut ConnectionManager, key: &str, payload: &[u8], nx: bool) -> bool {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(payload).arg("PX").arg(TTL_MS);
    if nx {
        cmd.arg("NX");
    }
    let reply: Option<String> = cmd.query_async(con).await.unwrap();
    reply.is_some()
}

async fn raw_get(con: &mut ConnectionManager, key: &str) -> Vec<u8> {
    let v: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(con).await.unwrap();
    v.expect("raw key present")
}

/// The measured rows so far, and how to measure.
struct Bench {
    probe: Probe,
    duration: Duration,
    rounds: usize,
    rows: Vec<Row>,
}

impl Bench {
    /// Runs one store operation against its raw counterparts at each task count, raw and
    /// store alternately, `rounds` times; prints and keeps a row per (task count, raw).
    async fn cell(
        &mut self,
        name: &'static str,
        store: Op,
        raws: &[(&'static str, Op)],
        budget: Option<u64>,
    ) {
        for tasks in TASKS {
            let mut s = Sample::default();
            let mut r = vec![Sample::default(); raws.len()];
            // Alternate so drift (CPU frequency, allocator warm-up) hits both sides alike.
            for _ in 0..self.rounds {
                for (acc, (_, raw)) in r.iter_mut().zip(raws) {
                    acc.add(measure(&self.probe, tasks, self.duration, budget, raw).await);
                }
                s.add(measure(&self.probe, tasks, self.duration, budget, &store).await);
            }
            for (raw, (raw_is, _)) in r.into_iter().zip(raws) {
                let row = Row {
                    op: name,
                    tasks,
                    store: s,
                    raw,
                    raw_is,
                };
                support::print_row(&row);
                self.rows.push(row);
            }
        }
    }
}

/// A raw update's new value: the stored JSON decoded, one member changed, encoded again (what
/// the existing service does with `json.loads` and `json.dumps`).
fn changed(stored: &[u8], i: u64) -> Vec<u8> {
    let mut data: Map<String, Value> = serde_json::from_slice(stored).unwrap();
    data.insert("csrf_token".into(), json!(i));
    serde_json::to_vec(&data).unwrap()
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v != "0")
        || std::env::args().any(|a| a == "--quick");
    // create stops early at `create_budget` operations per interval: every one adds a key.
    let (duration, rounds, sessions_for_memory, create_budget) = if quick {
        (Duration::from_millis(1000), 1, 2_000, 20_000)
    } else {
        (Duration::from_secs(3), 2, 20_000, 50_000)
    };

    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = RedisConfig {
            port: server.port(),
            session: SessionConfig {
                key_prefix: "bench:".into(),
                ..SessionConfig::default()
            },
            ..RedisConfig::default()
        };
        let store = Arc::new(
            RedisStore::connect(config)
                .await
                .unwrap()
                .with_clock(Arc::new(SystemClock)),
        );
        let raw = ConnectionManager::new(server.client()).await.unwrap();
        let probe = Probe::new(server.client()).await;
        let data = Arc::new(seed("aaron"));
        let payload: Arc<Vec<u8>> = Arc::new(serde_json::to_vec(&*data).unwrap());

        let server_info = probe.info("server").await;
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!(
            "redis_version {}, server 127.0.0.1:{}, {} run, {cores} cores",
            support::field::<String>(&server_info, "redis_version"),
            server.port(),
            if quick { "quick" } else { "full" },
        );
        println!(
            "payload: {} bytes of JSON; {} ms per interval, {rounds} round(s), raw and store \
             alternating",
            payload.len(),
            duration.as_millis()
        );
        println!(
            "note: redis-server and this client (2 tokio workers) share the {cores} cores, so \
             ops/s\n      is bounded by client CPU too; server CPU µs/op (INFO cpu \
             used_cpu_sys + used_cpu_user,\n      delta over each interval / ops in it) is the \
             figure that decides how far one Redis\n      thread carries us."
        );

        // Per task: its own sessions (contention-free) and raw keys with the same payload,
        // named like store keys (prefix + 43 characters).
        let mut ids = Vec::new();
        for task in 0..50 {
            let mut mine = Vec::new();
            for _ in 0..IDS_PER_TASK {
                let session = store.create(seed(&format!("user{task}"))).await.unwrap();
                mine.push(session.id().clone());
            }
            ids.push(mine);
        }
        let ids: Arc<Vec<Vec<SessionId>>> = Arc::new(ids);
        let raw_keys: Arc<Vec<Vec<String>>> = Arc::new(
            (0..50)
                .map(|t| {
                    (0..IDS_PER_TASK)
                        .map(|i| format!("bench:{:x>43}", format!("raw{t}-{i}")))
                        .collect()
                })
                .collect(),
        );
        for key in raw_keys.iter().flatten() {
            raw_set(&mut raw.clone(), key, &payload, false).await;
        }
        let pick = |i: u64| (i as usize) % IDS_PER_TASK;

        // Memory first, while the keyspace is small: once create has added a few hundred
        // thousand keys, a main-dict resize inside the window would swamp the per-key figure.
        let memory =
            memory_report(&server, &store, &payload, &ids[0][0], sessions_for_memory).await;

        let idle_before = probe.cpu_secs().await;
        let idle = Duration::from_millis(500);
        tokio::time::sleep(idle).await;
        let idle_us_per_s = (probe.cpu_secs().await - idle_before) * 1e6 / idle.as_secs_f64();
        println!(
            "idle server CPU (cron, INFO probes): {idle_us_per_s:.0} µs/s, counted in every \
             interval below"
        );
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut raw.clone())
            .await
            .unwrap();

        // Raw operations.
        let get: Op = {
            let (con, keys) = (raw.clone(), raw_keys.clone());
            op(move |t, i| {
                let (mut con, keys) = (con.clone(), keys.clone());
                async move {
                    raw_get(&mut con, &keys[t][pick(i)]).await;
                }
            })
        };
        let get_parse: Op = {
            let (con, keys) = (raw.clone(), raw_keys.clone());
            op(move |t, i| {
                let (mut con, keys) = (con.clone(), keys.clone());
                async move {
                    let v = raw_get(&mut con, &keys[t][pick(i)]).await;
                    let data: Map<String, Value> = serde_json::from_slice(&v).unwrap();
                    assert!(!data.is_empty());
                }
            })
        };
        let set_px: Op = {
            let (con, keys, payload) = (raw.clone(), raw_keys.clone(), payload.clone());
            op(move |t, i| {
                let (mut con, keys, payload) = (con.clone(), keys.clone(), payload.clone());
                async move {
                    raw_set(&mut con, &keys[t][pick(i)], &payload, false).await;
                }
            })
        };
        let pexpire: Op = {
            let (con, keys) = (raw.clone(), raw_keys.clone());
            op(move |t, i| {
                let (mut con, keys) = (con.clone(), keys.clone());
                async move {
                    let set: i64 = redis::cmd("PEXPIRE")
                        .arg(&keys[t][pick(i)])
                        .arg(TTL_MS)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    assert_eq!(set, 1);
                }
            })
        };
        // A refresh's work as plain commands in one transaction, what a script-free refresh
        // would send: read the metadata head, move the TTL and the expiry index entry.
        let multi_refresh: Op = {
            let (con, keys) = (raw.clone(), raw_keys.clone());
            op(move |t, i| {
                let (mut con, keys) = (con.clone(), keys.clone());
                async move {
                    let key = &keys[t][pick(i)];
                    let (head, set): (Vec<u8>, i64) = redis::pipe()
                        .atomic()
                        .cmd("GETRANGE")
                        .arg(key)
                        .arg(0)
                        .arg(511)
                        .cmd("PEXPIRE")
                        .arg(key)
                        .arg(TTL_MS)
                        .cmd("ZADD")
                        .arg("bench:~exp")
                        .arg(TTL_MS)
                        .arg(key)
                        .ignore()
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    assert!(!head.is_empty() && set == 1);
                }
            })
        };
        // A create's work as plain commands, what the store's native create sends (expiry
        // index and a user index of its own, as each bench session names its own user).
        let multi_create: Op = {
            let (con, payload) = (raw.clone(), payload.clone());
            op(move |_, _| {
                let (mut con, payload) = (con.clone(), payload.clone());
                async move {
                    let n = RAW_FRESH.fetch_add(1, Ordering::Relaxed);
                    let key = format!("bench:{:x>43}", format!("fresh{n}"));
                    let user = format!("bench:~user:{n:024x}");
                    let (_, set): (Option<String>, Option<String>) = redis::pipe()
                        .atomic()
                        .cmd("ZSCORE")
                        .arg("bench:~exp")
                        .arg(&key)
                        .cmd("SET")
                        .arg(&key)
                        .arg(&payload[..])
                        .arg("PX")
                        .arg(TTL_MS)
                        .arg("NX")
                        .cmd("ZADD")
                        .arg("bench:~exp")
                        .arg("NX")
                        .arg(TTL_MS)
                        .arg(&key)
                        .ignore()
                        .cmd("ZADD")
                        .arg(&user)
                        .arg(TTL_MS)
                        .arg(&key)
                        .ignore()
                        .cmd("PERSIST")
                        .arg(&user)
                        .ignore()
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    assert!(set.is_some());
                }
            })
        };
        let set_nx_fresh: Op = {
            let (con, payload) = (raw.clone(), payload.clone());
            op(move |_, _| {
                let (mut con, payload) = (con.clone(), payload.clone());
                async move {
                    let n = RAW_FRESH.fetch_add(1, Ordering::Relaxed);
                    let key = format!("bench:{:x>43}", format!("fresh{n}"));
                    assert!(raw_set(&mut con, &key, &payload, true).await);
                }
            })
        };
        let get_parse_set: Op = {
            let (con, keys) = (raw.clone(), raw_keys.clone());
            op(move |t, i| {
                let (mut con, keys) = (con.clone(), keys.clone());
                async move {
                    // The existing service: json.loads(GET), change one key, SET json.dumps.
                    let key = &keys[t][pick(i)];
                    let v = raw_get(&mut con, key).await;
                    raw_set(&mut con, key, &changed(&v, i), false).await;
                }
            })
        };

        // The same update as an exact compare-and-set without a script: `WATCH` with the
        // read, then the write and its expiry index entry as one `MULTI … EXEC` (nil if the key
        // changed since). `WATCH` belongs to a connection, so each task has one of its own, as
        // a pool of connections would give each request.
        let own: Arc<Vec<ConnectionManager>> = {
            let mut own = Vec::new();
            for _ in 0..50 {
                own.push(ConnectionManager::new(server.client()).await.unwrap());
            }
            Arc::new(own)
        };
        let watch_update: Op = {
            let (own, keys) = (own.clone(), raw_keys.clone());
            op(move |t, i| {
                let (mut con, keys) = (own[t].clone(), keys.clone());
                async move {
                    let key = &keys[t][pick(i)];
                    let (v,): (Vec<u8>,) = redis::pipe()
                        .cmd("WATCH")
                        .arg(key)
                        .ignore()
                        .cmd("GET")
                        .arg(key)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    let body = changed(&v, i);
                    let done: Option<(String,)> = redis::pipe()
                        .atomic()
                        .cmd("SET")
                        .arg(key)
                        .arg(&body)
                        .arg("PX")
                        .arg(TTL_MS)
                        .cmd("ZADD")
                        .arg("bench:~exp")
                        .arg(TTL_MS)
                        .arg(key)
                        .ignore()
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    assert!(done.is_some(), "nobody else writes this key");
                }
            })
        };

        // Store operations, each on the task's own sessions.
        let load: Op = {
            let (store, ids) = (store.clone(), ids.clone());
            op(move |t, i| {
                let (store, ids) = (store.clone(), ids.clone());
                async move { assert!(store.load(&ids[t][pick(i)]).await.unwrap().is_some()) }
            })
        };
        let refresh: Op = {
            let (store, ids) = (store.clone(), ids.clone());
            op(move |t, i| {
                let (store, ids) = (store.clone(), ids.clone());
                async move { assert!(store.refresh(&ids[t][pick(i)]).await.unwrap()) }
            })
        };
        let create: Op = {
            let (store, data) = (store.clone(), data.clone());
            op(move |_, _| {
                let (store, data) = (store.clone(), data.clone());
                async move {
                    let id = SessionId::generate();
                    store
                        .put(&id, data, PutMode::Create, WriteOptions::new())
                        .await
                        .expect("create");
                }
            })
        };
        let put_mode = |mode: PutMode| -> Op {
            let (store, ids, data) = (store.clone(), ids.clone(), data.clone());
            op(move |t, i| {
                let (store, ids, data) = (store.clone(), ids.clone(), data.clone());
                async move {
                    let id = &ids[t][pick(i)];
                    store
                        .put(id, data, mode, WriteOptions::new())
                        .await
                        .unwrap_or_else(|e| panic!("put {mode:?}: {e}"));
                }
            })
        };
        // if_version: the version each put returned, per session, seeded by a load below.
        let versions: Arc<Vec<Vec<Mutex<Version>>>> = Arc::new(
            (0..50)
                .map(|_| (0..IDS_PER_TASK).map(|_| Mutex::new(Version(0))).collect())
                .collect(),
        );
        let if_version: Op = {
            let (store, ids, data) = (store.clone(), ids.clone(), data.clone());
            let versions = versions.clone();
            op(move |t, i| {
                let (store, ids, data) = (store.clone(), ids.clone(), data.clone());
                let versions = versions.clone();
                async move {
                    let k = pick(i);
                    let version = *versions[t][k].lock().unwrap();
                    let mode = PutMode::IfVersion(version);
                    let session = store
                        .put(&ids[t][k], data, mode, WriteOptions::new())
                        .await
                        .unwrap_or_else(|e| panic!("put {mode:?}: {e}"));
                    *versions[t][k].lock().unwrap() = session.version();
                }
            })
        };
        let update: Op = {
            let (store, ids) = (store.clone(), ids.clone());
            op(move |t, i| {
                let (store, ids) = (store.clone(), ids.clone());
                async move {
                    let updated = store
                        .update(&ids[t][pick(i)], |d| {
                            d.insert("csrf_token".into(), json!(i));
                        })
                        .await
                        .unwrap();
                    assert!(updated.is_some());
                }
            })
        };

        println!();
        println!("ratio = store ops/s / raw ops/s; store µs / raw µs = Redis server CPU per op");
        support::print_header();
        let mut bench = Bench {
            probe: probe.clone(),
            duration,
            rounds,
            rows: Vec::new(),
        };
        let get_parse_is = "GET + from_slice to Map";
        bench
            .cell(
                "load",
                load,
                &[("GET", get), (get_parse_is, get_parse)],
                None,
            )
            .await;
        let raws = [
            ("SET … PX", set_px.clone()),
            ("PEXPIRE", pexpire),
            ("MULTI GETRANGE PEXPIRE ZADD", multi_refresh),
        ];
        bench.cell("refresh", refresh, &raws, None).await;
        let raws = [
            ("SET … PX … NX, fresh key", set_nx_fresh),
            ("MULTI ZSCORE SET NX ZADD×2 PERSIST", multi_create),
        ];
        bench
            .cell("create", create, &raws, Some(create_budget))
            .await;
        let raws = [("SET … PX", set_px)];
        bench
            .cell("set", put_mode(PutMode::Upsert), &raws, None)
            .await;
        bench
            .cell("if_live", put_mode(PutMode::IfLive), &raws, None)
            .await;
        for (t, mine) in ids.iter().enumerate() {
            for (k, id) in mine.iter().enumerate() {
                let session = store.load(id).await.unwrap().expect("bench session");
                *versions[t][k].lock().unwrap() = session.version();
            }
        }
        bench.cell("if_version", if_version, &raws, None).await;
        let raws = [
            ("GET + parse + SET … PX", get_parse_set),
            ("WATCH GET, parse, MULTI SET ZADD", watch_update),
        ];
        bench.cell("update", update, &raws, None).await;
        for tasks in TASKS {
            support::print_ceilings(&bench.rows, tasks);
        }

        println!();
        print!("{memory}");
        println!("  store count(): {}", store.count().await.unwrap());
        let stats = probe.info("commandstats").await;
        println!();
        println!("server time per command over the measured intervals, raw and store together");
        println!("(INFO commandstats; commands a script runs count under their own name):");
        let shown = [
            "evalsha", "get", "set", "pexpire", "zadd", "zscore", "pttl", "getrange", "exists",
        ];
        for name in shown {
            if let Some(line) = stats
                .lines()
                .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
            {
                println!("  {line}");
            }
        }
    });
}

/// N more sessions through the store (each with its own user, so every index entry is paid
/// for) against N bare payloads stored with `SET … PX`: `INFO used_memory` delta per session.
async fn memory_report(
    server: &RedisServer,
    store: &RedisStore,
    payload: &[u8],
    sample: &SessionId,
    n: usize,
) -> String {
    let used_memory = |con: &mut redis::Connection| -> i64 {
        let info: String = redis::cmd("INFO").arg("memory").query(con).unwrap();
        support::field(&info, "used_memory")
    };
    let mut con = server.connection();
    let before = used_memory(&mut con);
    for i in 0..n {
        store.create(seed(&format!("mem{i}"))).await.unwrap();
    }
    let after_store = used_memory(&mut con);
    for i in 0..n {
        let _: () = redis::cmd("SET")
            .arg(format!("session:mem-raw-{i:08}-padding-to-43-chars-xxxxx"))
            .arg(payload)
            .arg("PX")
            .arg(TTL_MS)
            .query(&mut con)
            .unwrap();
    }
    let after_raw = used_memory(&mut con);
    let per_store = (after_store - before) as f64 / n as f64;
    let per_raw = (after_raw - after_store) as f64 / n as f64;
    let mut usage = |key: String| -> i64 {
        redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .query(&mut con)
            .unwrap_or(0)
    };
    let store_key = usage(format!("bench:{}", sample.expose_token()));
    let raw_key = usage("session:mem-raw-00000000-padding-to-43-chars-xxxxx".into());
    format!(
        "memory over {n} sessions (INFO used_memory delta per session, measured before the \
         throughput runs):\n  store (value + ~exp entry + user index): {per_store:>8.0} \
         bytes\n  raw SET … PX of the bare payload:         {per_raw:>8.0} bytes\n  ratio: \
         {:.2}x; MEMORY USAGE of one store key {store_key} vs one raw key {raw_key}\n",
        per_store / per_raw
    )
}
