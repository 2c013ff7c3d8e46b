//! Redis memory per session for each store on the same data: `INFO memory` `used_memory`
//! before and after writing N sessions through the store (every session its own user, so our
//! per-user index costs its most), plus `MEMORY USAGE` and `STRLEN` of one session key,
//! against the bare JSON payload stored with `SET … EX`. A fresh server, stores one after
//! another.

use std::future::Future;

use actix_session::storage::SessionStore as _;
use futures::stream::{self, StreamExt as _};
use redis::aio::ConnectionManager;
use redis_harness::RedisServer;
use session_core::{SessionId, SessionStoreExt as _};
use tower_sessions_core_014::SessionStore as _;

use crate::redis::{actix_store, actix_ttl, our_store, tower_record, tower_store};
use crate::seed::{self, TTL_SECS};

const IN_FLIGHT: usize = 16;

/// One store's figures.
#[derive(Debug, Clone)]
pub struct UsageRow {
    /// The store.
    pub name: &'static str,
    /// `used_memory` growth per session, in bytes.
    pub per_session: f64,
    /// `MEMORY USAGE` of one session key, in bytes.
    pub key_usage: i64,
    /// `STRLEN` of that key: the stored value's size.
    pub value_len: i64,
    /// Length of that key's name.
    pub key_len: usize,
}

async fn used_memory(con: &mut ConnectionManager) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(con)
        .await
        .expect("INFO memory");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("used_memory in INFO")
}

/// Writes `n` sessions with `write(i)` (which answers the key it wrote) and measures.
async fn measure<F, Fut>(
    con: &mut ConnectionManager,
    name: &'static str,
    n: usize,
    write: F,
) -> UsageRow
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = String>,
{
    let before = used_memory(con).await;
    let keys: Vec<String> = stream::iter(0..n)
        .map(write)
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let after = used_memory(con).await;
    let key = keys.first().cloned().unwrap_or_default();
    let key_usage: Option<i64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(&key)
        .query_async(con)
        .await
        .expect("MEMORY USAGE");
    let value_len: i64 = redis::cmd("STRLEN")
        .arg(&key)
        .query_async(con)
        .await
        .expect("STRLEN");
    let row = UsageRow {
        name,
        per_session: (after - before) as f64 / n as f64,
        key_usage: key_usage.unwrap_or(0),
        value_len,
        key_len: key.len(),
    };
    eprintln!("memory usage: {row:?}");
    row
}

/// Runs the memory-per-session table with `n` sessions per store.
pub async fn run(n: usize) -> Vec<UsageRow> {
    let server = RedisServer::start();
    let mut con = ConnectionManager::new(server.client())
        .await
        .expect("connection");
    let ours = our_store(&server, "mu-ours:").await;
    let tower = tower_store(&server).await;
    let actix = actix_store(&server, "mu-actix:").await;
    let data = |i: usize| seed::data(&format!("user{i:07}"));
    let raw_con = con.clone();
    let mut rows = vec![
        measure(&mut con, "raw SET EX (bare JSON)", n, |i| {
            let mut con = raw_con.clone();
            async move {
                let key = format!("mu-raw:{}", SessionId::generate().expose_token());
                let () = redis::cmd("SET")
                    .arg(&key)
                    .arg(seed::payload(&data(i)))
                    .arg("EX")
                    .arg(TTL_SECS)
                    .query_async(&mut con)
                    .await
                    .expect("SET");
                key
            }
        })
        .await,
    ];
    rows.push(
        measure(&mut con, "ours", n, |i| {
            let ours = &ours;
            async move {
                let session = ours.create(data(i)).await.expect("create");
                let keys = ours.keys();
                keys.session_key(&keys.storage_id(session.id()))
            }
        })
        .await,
    );
    rows.push(
        measure(&mut con, "tower-sessions-redis-store", n, |i| {
            let tower = &tower;
            async move {
                let mut record = tower_record(&data(i));
                tower.create(&mut record).await.expect("create");
                record.id.to_string()
            }
        })
        .await,
    );
    rows.push(
        measure(&mut con, "actix-session", n, |i| {
            let actix = &actix;
            async move {
                let key = actix
                    .save(seed::actix_state(&data(i)), &actix_ttl())
                    .await
                    .expect("save");
                format!("mu-actix:{}", key.as_ref())
            }
        })
        .await,
    );
    rows
}
