//! `count()` of our `RedisStore` at 10k, 100k and 1M live sessions against counting the same
//! sessions with `SCAN MATCH prefix* COUNT 1000` to completion, on a fresh server holding
//! nothing else (the best case for `SCAN`, which walks every key in the database).
//!
//! The sessions are written through the store's bulk import path (`prepare_record` +
//! `import_bulk`: one transaction per 1000 sessions, with every index entry a normal write
//! makes), several batches in flight, so a million sessions take seconds, not minutes.

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt as _, TryStreamExt as _};
use redis::aio::{ConnectionLike, ConnectionManager};
use redis_harness::RedisServer;
use session_core::{
    Clock as _, Lifetime, SessionId, SessionRecord, SessionStore as _, SystemClock,
};
use session_redis::RedisStore;

use crate::driver::median;
use crate::redis::our_store;
use crate::seed::{self, TTL_SECS};

const PREFIX: &str = "cnt:";
const BATCH: usize = 1000;
const IN_FLIGHT: usize = 4;
/// Sessions per user: a user index per four sessions, as people with a few devices have.
const PER_USER: usize = 4;

/// One row of the count table.
#[derive(Debug, Clone)]
pub struct CountRow {
    /// Live sessions in the store.
    pub sessions: u64,
    /// What `count()` answered.
    pub counted: u64,
    /// What the `SCAN` count found.
    pub scanned: u64,
    /// Median `count()` time.
    pub count_median: Duration,
    /// Fastest `count()` call.
    pub count_min: Duration,
    /// Server time per `ZCOUNT` (what `count()` sends), µs, from `INFO commandstats`.
    pub zcount_server_us: f64,
    /// Server time per `SCAN` page, µs.
    pub scan_server_us: f64,
    /// Calls of `count()` timed.
    pub count_calls: usize,
    /// Median `SCAN` count time.
    pub scan_median: Duration,
    /// `SCAN` counts timed.
    pub scan_calls: usize,
    /// How long filling up to this size took (from the previous size).
    pub fill: Duration,
}

/// Writes sessions `from..to` through the bulk import path (the fixture session, user
/// `user{i / 4}` for session `i`); answers their ids. Generic over the connection, so the
/// cluster table seeds its [`ClusterStore`](session_cluster::ClusterStore) the same way.
pub async fn fill<C>(store: &RedisStore<C>, from: usize, to: usize) -> Vec<SessionId>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let now = SystemClock.now();
    let idle = Duration::from_secs(TTL_SECS);
    let batches: Vec<(usize, usize)> = (from..to)
        .step_by(BATCH)
        .map(|start| (start, (start + BATCH).min(to)))
        .collect();
    let ids: Vec<Vec<SessionId>> = stream::iter(batches)
        .map(|(start, end)| async move {
            let ids: Vec<SessionId> = (start..end).map(|_| SessionId::generate()).collect();
            let batch = ids
                .iter()
                .zip(start..end)
                .map(|(id, i)| {
                    let record = SessionRecord {
                        handle: id.handle(),
                        id: Some(id.clone()),
                        data: seed::data(&format!("user{}", i / PER_USER)),
                        lifetime: Lifetime::starting(now, idle, None),
                    };
                    store.prepare_record(&record)
                })
                .collect::<session_core::Result<Vec<_>>>()?;
            store.import_bulk(&batch).await.map(|_| ids)
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await
        .expect("bulk import");
    ids.into_iter().flatten().collect()
}

/// Counts the session keys under `prefix` on one server the way one would without an index:
/// `SCAN MATCH prefix* COUNT 1000` to completion, index keys left out.
pub async fn scan_count<C: ConnectionLike + Send>(con: &mut C, prefix: &str) -> u64 {
    let pattern = format!("{prefix}*");
    let index = format!("{prefix}~");
    let mut cursor = 0u64;
    let mut n = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(con)
            .await
            .expect("SCAN");
        // The index keys share the prefix; they are not sessions.
        n += batch.iter().filter(|k| !k.starts_with(&index)).count() as u64;
        if next == 0 {
            return n;
        }
        cursor = next;
    }
}

/// `usec_per_call` of ZCOUNT and SCAN since the last `CONFIG RESETSTAT`.
async fn server_usec_per_call(con: &mut ConnectionManager) -> (f64, f64) {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(con)
        .await
        .expect("INFO commandstats");
    let of = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:")))
            .and_then(|l| {
                l.split(',')
                    .find_map(|kv| kv.strip_prefix("usec_per_call="))
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    (of("zcount"), of("scan"))
}

/// `f`'s time and answer.
pub async fn timed<T, F: std::future::Future<Output = T>>(f: F) -> (Duration, T) {
    let started = Instant::now();
    let out = f.await;
    (started.elapsed(), out)
}

/// The median of `samples`.
pub fn median_duration(samples: &[Duration]) -> Duration {
    let secs: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
    Duration::from_secs_f64(median(&secs))
}

/// Runs the count table on a fresh server, filling incrementally up to each size.
pub async fn run(sizes: &[usize], count_calls: usize, scan_calls: usize) -> Vec<CountRow> {
    let server = RedisServer::start();
    let store = our_store(&server, PREFIX).await;
    let mut con = ConnectionManager::new(server.client())
        .await
        .expect("connection");
    let mut rows = Vec::new();
    let mut have = 0;
    for &size in sizes {
        let (fill_time, _) = timed(fill(&store, have, size)).await;
        have = size;
        // Warm up once (connection buffers), then count the server's own time from here.
        store.count().await.expect("count");
        let () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut con)
            .await
            .expect("CONFIG RESETSTAT");
        let mut count_times = Vec::new();
        let mut counted = 0;
        for _ in 0..count_calls {
            let (t, n) = timed(store.count()).await;
            counted = n.expect("count");
            count_times.push(t);
        }
        let mut scan_times = Vec::new();
        let mut scanned = 0;
        for _ in 0..scan_calls {
            let (t, n) = timed(scan_count(&mut con, PREFIX)).await;
            scanned = n;
            scan_times.push(t);
        }
        let server_us = server_usec_per_call(&mut con).await;
        let row = CountRow {
            sessions: size as u64,
            counted,
            scanned,
            count_median: median_duration(&count_times),
            count_min: count_times.iter().min().copied().unwrap_or_default(),
            zcount_server_us: server_us.0,
            scan_server_us: server_us.1,
            count_calls,
            scan_median: median_duration(&scan_times),
            scan_calls,
            fill: fill_time,
        };
        eprintln!(
            "count: {size} sessions (filled in {:.1} s): count() {:?} = {counted}, SCAN {:?} = {scanned}",
            fill_time.as_secs_f64(),
            row.count_median,
            row.scan_median
        );
        rows.push(row);
    }
    rows
}
