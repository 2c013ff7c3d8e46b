//! Redis stores side by side on one `redis-server`: our `RedisStore`, tower-sessions-redis-store
//! (fred), actix-session's `RedisSessionStore` (redis-rs `ConnectionManager`), our `RedisStore`
//! under actix-session's trait through `session_actix::ActixStore`, and raw redis-rs
//! `GET` / `SET … EX` on a `ConnectionManager`. Every contender talks over one multiplexed
//! connection of its own; each has its own key space (see [`Stores::connect`]).
//!
//! The operations are in [`crate::redis_ops`].

use std::sync::{Arc, Mutex};

use redis::aio::ConnectionManager;
use redis_harness::RedisServer;
use session_actix::ActixStore;
use session_core::{SessionConfig, SessionData, SessionId, SessionStoreExt};
use session_redis::{RedisConfig, RedisStore};
use time::OffsetDateTime;
use tower_sessions_core_014::session::{Id, Record};
use tower_sessions_core_014::SessionStore as _;
use tower_sessions_redis_store::fred::prelude::{Client, ClientLike as _, Config};

use crate::driver::{cell, Plan};
use crate::redis_ops;
use crate::report::CellRow;
use crate::seed::{self, MAX_TASKS, TTL_SECS};

/// Sessions per task for load and save.
pub const PER_TASK: usize = 16;

/// The task counts of the Redis table.
pub const TASKS: [usize; 3] = [1, 16, 64];

/// tower-sessions-redis-store's store on a fred client.
pub type TowerRedis = tower_sessions_redis_store::RedisStore<Client>;

/// Key prefixes: one per store and purpose (tower-sessions-redis-store has no prefix option:
/// its keys are bare 22-character ids, which no prefixed key can equal).
pub mod prefix {
    /// Our store, load and save.
    pub const OURS: &str = "ours:";
    /// Our store, create.
    pub const OURS_CREATE: &str = "ours-c:";
    /// actix-session, load and save.
    pub const ACTIX: &str = "actix:";
    /// actix-session, create.
    pub const ACTIX_CREATE: &str = "actix-c:";
    /// Our store under `ActixStore`, load and save.
    pub const OURS_ACTIX: &str = "ours-ax:";
    /// Raw redis-rs, load and save.
    pub const RAW: &str = "raw:";
    /// Raw redis-rs, create.
    pub const RAW_CREATE: &str = "raw-c:";
}

/// Names of keys a `create` window wrote, per task (no locking across tasks), to delete
/// after the window.
#[derive(Debug)]
pub struct Created(Vec<Mutex<Vec<String>>>);

impl Created {
    fn new() -> Arc<Self> {
        Arc::new(Created(
            (0..MAX_TASKS).map(|_| Mutex::new(Vec::new())).collect(),
        ))
    }

    /// Notes that `task` wrote `key`.
    pub fn push(&self, task: usize, key: String) {
        self.0[task].lock().expect("not poisoned").push(key);
    }

    fn drain(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|m| std::mem::take(&mut *m.lock().expect("not poisoned")))
            .collect()
    }
}

/// Every store, connected, with its sessions for load and save.
pub struct Stores {
    /// Ours, `ours:` prefix.
    pub ours: Arc<RedisStore>,
    /// Ours for creates, `ours-c:` prefix (wiped after each window).
    pub ours_create: Arc<RedisStore>,
    /// Our sessions, by [`seed::slot`].
    pub ours_ids: Vec<SessionId>,
    /// tower-sessions-redis-store on one fred client.
    pub tower: Arc<TowerRedis>,
    /// tower-sessions records, by [`seed::slot`].
    pub tower_records: Vec<Record>,
    /// actix-session, `actix:` prefix.
    pub actix: Arc<actix_session::storage::RedisSessionStore>,
    /// actix-session for creates, `actix-c:` prefix.
    pub actix_create: Arc<actix_session::storage::RedisSessionStore>,
    /// actix-session keys (without prefix), by [`seed::slot`].
    pub actix_keys: Vec<String>,
    /// `ActixStore` over our store (its own `RedisStore`, `ours-ax:` prefix): the same
    /// actix-session trait calls as [`Stores::actix`], on our store.
    pub ours_actix: ActixStore,
    /// `ActixStore` keys (our tokens), by [`seed::slot`].
    pub ours_actix_keys: Vec<String>,
    /// Raw redis-rs.
    pub raw: ConnectionManager,
    /// Raw keys, by [`seed::slot`].
    pub raw_keys: Vec<String>,
    /// Session data per task (each task is one user).
    pub data: Vec<SessionData>,
    /// The raw baselines' payload per task.
    pub payload: Vec<Arc<str>>,
    /// Keys written by create windows.
    pub created: Arc<Created>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

/// Our store's settings for a server on `port` with `key_prefix` (the cluster table's
/// `ClusterStore` gets the same, `port` unused).
pub fn our_config(port: u16, key_prefix: &str) -> RedisConfig {
    RedisConfig {
        port,
        session: SessionConfig {
            key_prefix: key_prefix.into(),
            idle_timeout: std::time::Duration::from_secs(TTL_SECS),
            ..SessionConfig::default()
        },
        ..RedisConfig::default()
    }
}

/// Our store on `server` with `key_prefix`.
pub async fn our_store(server: &RedisServer, key_prefix: &str) -> RedisStore {
    RedisStore::connect(our_config(server.port(), key_prefix))
        .await
        .expect("connect our store")
}

/// tower-sessions-redis-store on one fred client (fred multiplexes and pipelines one
/// connection, like our `ConnectionManager`).
pub async fn tower_store(server: &RedisServer) -> TowerRedis {
    let config = Config::from_url(&server.url()).expect("fred config");
    let client = Client::new(config, None, None, None);
    client.init().await.expect("fred connects");
    TowerRedis::new(client)
}

/// actix-session's store with `prefix` before its keys.
pub async fn actix_store(
    server: &RedisServer,
    prefix: &'static str,
) -> actix_session::storage::RedisSessionStore {
    actix_session::storage::RedisSessionStore::builder(server.url())
        .cache_keygen(move |key| format!("{prefix}{key}"))
        .build()
        .await
        .expect("actix-session connects")
}

/// A tower-sessions record of `data`, expiring in the TTL.
pub fn tower_record(data: &SessionData) -> Record {
    Record {
        id: Id::default(),
        data: seed::tower_data(data),
        expiry_date: OffsetDateTime::now_utc() + time::Duration::seconds(TTL_SECS as i64),
    }
}

/// The TTL as actix-session takes it.
pub fn actix_ttl() -> time::Duration {
    time::Duration::seconds(TTL_SECS as i64)
}

impl Stores {
    /// Connects every store to `server` and writes `MAX_TASKS * PER_TASK` sessions into each.
    pub async fn connect(server: &RedisServer) -> Stores {
        use actix_session::storage::SessionStore as _;

        let ours = Arc::new(our_store(server, prefix::OURS).await);
        let ours_create = Arc::new(our_store(server, prefix::OURS_CREATE).await);
        let tower = Arc::new(tower_store(server).await);
        let actix = Arc::new(actix_store(server, prefix::ACTIX).await);
        let actix_create = Arc::new(actix_store(server, prefix::ACTIX_CREATE).await);
        let ours_actix = ActixStore::new(Arc::new(our_store(server, prefix::OURS_ACTIX).await));
        let mut raw = ConnectionManager::new(server.client())
            .await
            .expect("raw connection");
        let data: Vec<SessionData> = (0..MAX_TASKS)
            .map(|t| seed::data(&format!("user{t}")))
            .collect();
        let payload: Vec<Arc<str>> = data.iter().map(|d| seed::payload(d).into()).collect();
        let n = MAX_TASKS * PER_TASK;
        let (mut ours_ids, mut tower_records, mut actix_keys, mut ours_actix_keys, mut raw_keys) =
            (vec![], vec![], vec![], vec![], vec![]);
        for k in 0..n {
            // `seed::slot(task, ..)` is `task` modulo MAX_TASKS: each task is one user.
            let d = &data[k % MAX_TASKS];
            let session = ours.create(d.clone()).await.expect("our create");
            let mut record = tower_record(d);
            tower.create(&mut record).await.expect("tower create");
            let key = actix
                .save(seed::actix_state(d), &actix_ttl())
                .await
                .expect("actix save");
            // Through the adapter, as actix-session's middleware would create it.
            let ours_actix_key = ours_actix
                .save(seed::actix_state(d), &actix_ttl())
                .await
                .expect("ActixStore save");
            let raw_key = format!("{}{}", prefix::RAW, SessionId::generate().expose_token());
            let () = redis::cmd("SET")
                .arg(&raw_key)
                .arg(&*payload[k % MAX_TASKS])
                .arg("EX")
                .arg(TTL_SECS)
                .query_async(&mut raw)
                .await
                .expect("raw SET");
            ours_ids.push(session.id().clone());
            tower_records.push(record);
            actix_keys.push(key.into());
            ours_actix_keys.push(ours_actix_key.into());
            raw_keys.push(raw_key);
        }
        Stores {
            ours,
            ours_create,
            ours_ids,
            tower,
            tower_records,
            actix,
            actix_create,
            actix_keys,
            ours_actix,
            ours_actix_keys,
            raw,
            raw_keys,
            data,
            payload,
            created: Created::new(),
        }
    }

    /// Panics unless every `ActixStore` session is still live and holds its task's state:
    /// `ActixStore::update` of a session that is gone drops the write and still answers `Ok`
    /// (see session-actix), so this is what shows its save figures were real writes.
    pub async fn check_ours_actix_live(&self) {
        use actix_session::storage::SessionStore as _;

        for (k, key) in self.ours_actix_keys.iter().enumerate() {
            let key = actix_session::storage::SessionKey::try_from(key.clone())
                .expect("actix accepts our keys");
            let state = self
                .ours_actix
                .load(&key)
                .await
                .expect("ActixStore load")
                .expect("every ActixStore session still live after the table");
            assert_eq!(
                state,
                seed::actix_state(&self.data[k % MAX_TASKS]),
                "ActixStore session {k} holds its task's state"
            );
        }
    }

    /// Deletes what create windows wrote: the noted keys, and our create store's index keys.
    pub async fn clear_created(&self) {
        let mut con = self.raw.clone();
        let mut keys = self.created.drain();
        keys.extend(scan_keys(&mut con, &format!("{}~*", prefix::OURS_CREATE)).await);
        for chunk in keys.chunks(1000) {
            let () = redis::cmd("UNLINK")
                .arg(chunk)
                .query_async(&mut con)
                .await
                .expect("UNLINK");
        }
    }
}

/// Every key matching `pattern`, by `SCAN … COUNT 1000`.
pub async fn scan_keys(con: &mut ConnectionManager, pattern: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(con)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// The server's CPU seconds so far (`used_cpu_sys + used_cpu_user` from `INFO cpu`).
pub async fn cpu_seconds(con: &mut impl redis::aio::ConnectionLike) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(con)
        .await
        .expect("INFO cpu");
    ["used_cpu_sys:", "used_cpu_user:"]
        .iter()
        .map(|field| {
            info.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .expect("used_cpu_sys and used_cpu_user in INFO cpu")
        })
        .sum()
}

/// Server-side time per call of the commands the stores send, from `INFO commandstats`
/// over the whole table: GET and SET are every store's together (the calls inside our
/// scripts included), EVALSHA is ours alone (our writes are scripts; our load is a pipelined
/// `GET`, `PTTL` and `ZSCORE`).
async fn command_stats(con: &mut ConnectionManager) -> String {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(con)
        .await
        .expect("INFO commandstats");
    let mut out = String::from("| command | calls | server µs per call |\n|---|---:|---:|\n");
    // ZADD and PEXPIRE are sent only by our scripts (the index upkeep); PTTL and ZSCORE by
    // our loads (ours and `ActixStore`'s) and inside our scripts.
    for name in ["get", "set", "evalsha", "zadd", "pttl", "zscore", "pexpire"] {
        let Some(line) = info
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:")))
        else {
            continue;
        };
        let field = |f: &str| {
            line.split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{f}=")))
                .unwrap_or("?")
                .to_owned()
        };
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            name.to_uppercase(),
            field("calls"),
            field("usec_per_call")
        ));
    }
    out
}

/// Runs the Redis table on `server`: load, save and create at every task count in [`TASKS`];
/// answers the rows and the server's time per command (markdown).
pub async fn run(server: &RedisServer, plan: Plan) -> (Vec<CellRow>, String) {
    let stores = Arc::new(Stores::connect(server).await);
    let mut con = stores.raw.clone();
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut con)
        .await
        .expect("CONFIG RESETSTAT");
    let ops = [
        ("load", redis_ops::load(&stores)),
        ("save", redis_ops::save(&stores)),
        ("create", redis_ops::create(&stores)),
    ];
    let mut rows = Vec::new();
    for (op, contenders) in &ops {
        for tasks in TASKS {
            let figures = cell(contenders, tasks, plan).await;
            let row = CellRow { op, tasks, figures };
            eprintln!("{}", row.progress_line());
            rows.push(row);
        }
    }
    stores.check_ours_actix_live().await;
    (rows, command_stats(&mut con).await)
}
