//! Runs one operation N times, sequentially, against a private `redis-server`, so a profiler
//! (callgrind, perf) can attribute the client-side cost of the store's hot paths.
//!
//! `cargo run --release -p session-redis --example profile_ops -- <get|set|save|raw-get|raw-set> [N]`
//!
//! Under callgrind, compare two N (say 1000 and 5000): the difference divided by the extra
//! operations is the per-operation instruction count, with start-up cancelled out.
//!
//! With `PROFILE_REDIS_PORT` set it uses the `redis-server` already listening on that
//! loopback port instead of starting one, so the server's side can be profiled too (run
//! `redis-server` itself under callgrind there).

use std::sync::Arc;

use redis::aio::ConnectionManager;
use redis_harness::RedisServer;
use session_core::{SessionConfig, SessionStore, SessionStoreExt, SystemClock};
use session_redis::{RedisConfig, RedisStore};

#[path = "../tests/common/mod.rs"]
mod common;
use common::seed_data as seed;

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_else(|| "get".into());
    let n: usize = args.next().map_or(1000, |n| n.parse().expect("N"));
    let external: Option<u16> = std::env::var("PROFILE_REDIS_PORT")
        .ok()
        .map(|p| p.parse().expect("PROFILE_REDIS_PORT"));
    let server = external.is_none().then(RedisServer::start);
    let port = external.unwrap_or_else(|| server.as_ref().map_or(0, RedisServer::port));
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = RedisConfig {
            port,
            session: SessionConfig::default(),
            ..RedisConfig::default()
        };
        let store = RedisStore::connect(config)
            .await
            .unwrap()
            .with_clock(Arc::new(SystemClock));
        let mut raw = ConnectionManager::new(client).await.unwrap();
        let payload = serde_json::to_string(&seed("aaron")).unwrap();
        let session = store.create(seed("aaron")).await.unwrap();
        let id = session.id().clone();
        let _: () = redis::cmd("SET")
            .arg("raw")
            .arg(&payload)
            .arg("EX")
            .arg(7200)
            .query_async(&mut raw)
            .await
            .unwrap();
        let data = seed("aaron");
        for i in 0..n {
            match op.as_str() {
                "get" => assert!(store.load(&id).await.unwrap().is_some()),
                "set" => {
                    store.set(&id, data.clone()).await.unwrap();
                }
                "save" => {
                    let mut s = store.load(&id).await.unwrap().unwrap();
                    s.insert("csrf_token", i).unwrap();
                    store.save(s).await.unwrap();
                }
                "raw-get" => {
                    let v: Option<Vec<u8>> = redis::cmd("GET")
                        .arg("raw")
                        .query_async(&mut raw)
                        .await
                        .unwrap();
                    assert!(v.is_some());
                }
                "raw-set" => {
                    let _: () = redis::cmd("SET")
                        .arg("raw")
                        .arg(&payload)
                        .arg("EX")
                        .arg(7200)
                        .query_async(&mut raw)
                        .await
                        .unwrap();
                }
                other => panic!("unknown op {other}"),
            }
        }
        println!("{op} x{n} done");
    });
}
