//! Store vs raw `redis` crate on the same server, same kind of connection, same run.
//!
//! `cargo bench -p session-redis --bench redis` (full) or with `BENCH_QUICK=1` (< 1 min).
//! Prints ops/s for `get`, `set`, `update` at 1 and 50 concurrent tasks beside raw `GET`,
//! `SET … EX` and `GET` + `SET … EX` (the existing service's read-modify-write) of the same
//! ~900-byte payload, the ratio store/raw, and Redis memory per session.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis_harness::RedisServer;
use serde_json::{json, Map, Value};
use session_core::{SessionConfig, SessionId, SessionStore, SessionStoreExt, SystemClock};
use session_redis::{RedisConfig, RedisStore};

// The same ~900-byte, existing-service-shaped session the integration tests use.
#[path = "../tests/common/mod.rs"]
mod common;
use common::seed_data as seed;

type Op = Arc<dyn Fn(usize, u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

const TTL_SECS: u64 = 7200;
const IDS_PER_TASK: usize = 16;

/// Runs `op` on `tasks` concurrent tasks for `duration`; returns ops per second.
async fn throughput(tasks: usize, duration: Duration, op: Op) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (op, done) = (op.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    op(task, i).await;
                    i += 1;
                }
                done.fetch_add(i, Ordering::Relaxed);
            })
        })
        .collect();
    for h in handles {
        h.await.expect("bench task");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn used_memory(con: &mut redis::Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("used_memory")
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v != "0")
        || std::env::args().any(|a| a == "--quick");
    let (duration, rounds, sessions_for_memory) = if quick {
        (Duration::from_millis(1500), 1, 2_000)
    } else {
        (Duration::from_secs(4), 2, 20_000)
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
        let payload = Arc::new(serde_json::to_string(&seed("aaron")).unwrap());
        println!(
            "payload: {} bytes of JSON, server 127.0.0.1:{}, {}",
            payload.len(),
            server.port(),
            if quick { "quick" } else { "full" }
        );

        // Per task: its own sessions (contention-free) and raw keys with the same payload.
        let ids: Arc<Vec<Vec<SessionId>>> = {
            let mut all = Vec::new();
            for task in 0..50 {
                let mut mine = Vec::new();
                for _ in 0..IDS_PER_TASK {
                    mine.push(
                        store
                            .create(seed(&format!("user{task}")))
                            .await
                            .unwrap()
                            .id()
                            .clone(),
                    );
                }
                all.push(mine);
            }
            Arc::new(all)
        };
        let raw_keys: Arc<Vec<Vec<String>>> = Arc::new(
            (0..50)
                .map(|t| (0..IDS_PER_TASK).map(|i| format!("raw:{t}:{i}")).collect())
                .collect(),
        );
        {
            let mut con = raw.clone();
            for keys in raw_keys.iter() {
                for key in keys {
                    let _: () = redis::cmd("SET")
                        .arg(key)
                        .arg(payload.as_str())
                        .arg("EX")
                        .arg(TTL_SECS)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                }
            }
        }
        let pick = |i: u64| (i as usize) % IDS_PER_TASK;

        let store_get: Op = {
            let (store, ids) = (store.clone(), ids.clone());
            Arc::new(move |t, i| {
                let (store, id) = (store.clone(), ids[t][pick(i)].clone());
                Box::pin(async move { assert!(store.get(&id).await.unwrap().is_some()) })
            })
        };
        let raw_get: Op = {
            let (con, keys) = (raw.clone(), raw_keys.clone());
            Arc::new(move |t, i| {
                let (mut con, key) = (con.clone(), keys[t][pick(i)].clone());
                Box::pin(async move {
                    let v: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    assert!(v.is_some());
                })
            })
        };
        let store_set: Op = {
            let (store, ids) = (store.clone(), ids.clone());
            let data = Arc::new(seed("aaron"));
            Arc::new(move |t, i| {
                let (store, id, data) = (store.clone(), ids[t][pick(i)].clone(), data.clone());
                Box::pin(async move {
                    store.set(&id, Map::clone(&data)).await.unwrap();
                })
            })
        };
        let raw_set: Op = {
            let (con, keys, payload) = (raw.clone(), raw_keys.clone(), payload.clone());
            Arc::new(move |t, i| {
                let (mut con, key, payload) =
                    (con.clone(), keys[t][pick(i)].clone(), payload.clone());
                Box::pin(async move {
                    let _: () = redis::cmd("SET")
                        .arg(&key)
                        .arg(payload.as_str())
                        .arg("EX")
                        .arg(TTL_SECS)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                })
            })
        };
        let store_update: Op = {
            let (store, ids) = (store.clone(), ids.clone());
            Arc::new(move |t, i| {
                let (store, id) = (store.clone(), ids[t][pick(i)].clone());
                Box::pin(async move {
                    let updated = store
                        .update(&id, |d| {
                            d.insert("csrf_token".into(), json!(i));
                        })
                        .await
                        .unwrap();
                    assert!(updated.is_some());
                })
            })
        };
        let raw_update: Op = {
            let (con, keys) = (raw.clone(), raw_keys.clone());
            Arc::new(move |t, i| {
                let (mut con, key) = (con.clone(), keys[t][pick(i)].clone());
                Box::pin(async move {
                    // The existing service: json.loads(GET), change one key, SETEX json.dumps.
                    let v: Vec<u8> = redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    let mut data: Map<String, Value> = serde_json::from_slice(&v).unwrap();
                    data.insert("csrf_token".into(), json!(i));
                    let body = serde_json::to_vec(&data).unwrap();
                    let _: () = redis::cmd("SET")
                        .arg(&key)
                        .arg(body)
                        .arg("EX")
                        .arg(TTL_SECS)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                })
            })
        };

        println!();
        println!(
            "{:<8} {:>5} {:>14} {:>14} {:>8}  raw is",
            "op", "tasks", "store ops/s", "raw ops/s", "ratio"
        );
        let cells: [(&str, &Op, &Op, &str); 3] = [
            ("get", &store_get, &raw_get, "GET"),
            ("set", &store_set, &raw_set, "SET … EX"),
            (
                "update",
                &store_update,
                &raw_update,
                "GET + parse + SET … EX",
            ),
        ];
        for (name, store_op, raw_op, raw_is) in cells {
            for tasks in [1usize, 50] {
                let (mut s, mut r) = (0.0, 0.0);
                // Alternate so drift (CPU frequency, allocator warm-up) hits both sides alike.
                for _ in 0..rounds {
                    r += throughput(tasks, duration, raw_op.clone()).await;
                    s += throughput(tasks, duration, store_op.clone()).await;
                }
                let (s, r) = (s / rounds as f64, r / rounds as f64);
                println!(
                    "{name:<8} {tasks:>5} {s:>14.0} {r:>14.0} {:>7.2}x  {raw_is}",
                    s / r
                );
            }
        }

        // Memory: N more sessions through the store (each with its own user, so every index
        // entry is paid for) against N bare payloads stored with SET … EX.
        let mut con = server.connection();
        let n = sessions_for_memory;
        let before = used_memory(&mut con);
        for i in 0..n {
            store.create(seed(&format!("mem{i}"))).await.unwrap();
        }
        let after_store = used_memory(&mut con);
        for i in 0..n {
            let _: () = redis::cmd("SET")
                .arg(format!("session:mem-raw-{i:08}-padding-to-43-chars-xxxxx"))
                .arg(payload.as_str())
                .arg("EX")
                .arg(TTL_SECS)
                .query(&mut con)
                .unwrap();
        }
        let after_raw = used_memory(&mut con);
        let per_store = (after_store - before) as f64 / n as f64;
        let per_raw = (after_raw - after_store) as f64 / n as f64;
        let sample = ids[0][0].expose_token().to_owned();
        let usage = |key: String| -> i64 {
            redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .query(&mut server.connection())
                .unwrap_or(0)
        };
        println!();
        println!("memory over {n} sessions (INFO used_memory delta per session):");
        println!("  store (value + ~exp entry + user index): {per_store:>8.0} bytes");
        println!("  raw SET … EX of the bare payload:         {per_raw:>8.0} bytes");
        println!(
            "  ratio: {:.2}x; MEMORY USAGE of one store key {} vs one raw key {}",
            per_store / per_raw,
            usage(format!("bench:{sample}")),
            usage("raw:0:0".into())
        );
        println!("  store count(): {}", store.count().await.unwrap());
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut con)
            .unwrap();
        println!();
        println!("server time per command (INFO commandstats):");
        for line in stats.lines().filter(|l| {
            ["evalsha", "get:", "set:"]
                .iter()
                .any(|c| l.contains(&format!("cmdstat_{c}")))
        }) {
            println!("  {line}");
        }
    });
}
