//! What `stats` and `migrate` need from a Redis-backed store beyond the trait, for plain Redis,
//! Sentinel and Cluster alike (`RedisStore<C>` over any of their connections; on a cluster,
//! the server figures are summed over its primaries).

use std::sync::Arc;

use async_trait::async_trait;
use redis::aio::ConnectionLike;
use session_store::cluster::{ClusterConn, ClusterPrimaries, ClusterStore};
use session_store::redis::keys::StorageId;
use session_store::redis::topology::Topology as _;
use session_store::redis::{BulkSession, NotCopied, RawPage, RawSession, RedisStore};
use session_store::{ImportOutcome, Result, Store};

/// A Redis-backed store, whatever its connection.
#[async_trait]
pub trait RedisSide: Send + Sync {
    /// One raw page (see `RedisStore::scan_raw`).
    async fn scan_raw(&self, cursor: u64, count: usize) -> Result<RawPage>;
    /// Values and PTTLs of these ids (this store's layout).
    async fn fetch_raw(&self, sids: Vec<StorageId>) -> Result<Vec<RawSession>>;
    /// This store's id for a session named in another layout.
    fn map_storage_id(&self, sid: &StorageId) -> Option<StorageId>;
    /// A raw session from another store, ready to write here.
    fn prepare_raw(&self, raw: RawSession) -> std::result::Result<BulkSession, NotCopied>;
    /// Writes a batch (`SET NX`, indexed).
    async fn import_bulk(&self, batch: &[BulkSession]) -> Result<Vec<ImportOutcome>>;
    /// `INFO memory`'s `used_memory` and `used_memory_human`.
    async fn used_memory(&self) -> Result<(u64, String)>;
    /// `DBSIZE`: an upper bound on the keys a scan visits, for progress.
    async fn dbsize(&self) -> Result<u64>;
    /// The backend name, for messages.
    fn name(&self) -> &'static str;
}

#[async_trait]
impl<C> RedisSide for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn scan_raw(&self, cursor: u64, count: usize) -> Result<RawPage> {
        RedisStore::scan_raw(self, cursor, count).await
    }

    async fn fetch_raw(&self, sids: Vec<StorageId>) -> Result<Vec<RawSession>> {
        RedisStore::fetch_raw(self, sids).await
    }

    fn map_storage_id(&self, sid: &StorageId) -> Option<StorageId> {
        RedisStore::map_storage_id(self, sid)
    }

    fn prepare_raw(&self, raw: RawSession) -> std::result::Result<BulkSession, NotCopied> {
        RedisStore::prepare_raw(self, raw)
    }

    async fn import_bulk(&self, batch: &[BulkSession]) -> Result<Vec<ImportOutcome>> {
        RedisStore::import_bulk(self, batch).await
    }

    async fn used_memory(&self) -> Result<(u64, String)> {
        let info: String = raw(self, redis::cmd("INFO").arg("memory")).await?;
        let bytes = info_field(&info, "used_memory")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok((
            bytes,
            info_field(&info, "used_memory_human").unwrap_or_default(),
        ))
    }

    async fn dbsize(&self) -> Result<u64> {
        raw(self, &redis::cmd("DBSIZE")).await
    }

    fn name(&self) -> &'static str {
        session_store::SessionStore::backend(self)
    }
}

/// A raw command on a store's connection, with errors mapped like the store's.
async fn raw<C, T>(store: &RedisStore<C>, cmd: &redis::Cmd) -> Result<T>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
    T: redis::FromRedisValue,
{
    let mut conn = store.connection().clone();
    cmd.query_async(&mut conn)
        .await
        .map_err(|e| session_store::redis::error::to_store_error(store.name(), e))
}

/// A field of an `INFO` reply.
fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// A Redis Cluster: the bulk API of the Redis backend underneath (its cursor walks every
/// primary, its reads and writes go to each key's slot), and `INFO` / `DBSIZE` asked of every
/// primary and summed (replicas hold copies, not more sessions).
struct ClusterSide {
    store: RedisStore<ClusterConn>,
    primaries: ClusterPrimaries,
}

impl ClusterSide {
    fn new(store: &ClusterStore) -> Self {
        let store = store.redis().clone();
        let primaries = ClusterPrimaries::new(store.connection().clone());
        ClusterSide { store, primaries }
    }

    /// `cmd` on every primary (in parallel), with errors mapped like the store's.
    async fn on_each_primary<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<Vec<T>> {
        let primaries = self.primaries.primaries().await?;
        let name = self.name();
        futures::future::try_join_all(primaries.into_iter().map(|primary| async move {
            let mut conn = primary.conn;
            cmd.query_async(&mut conn)
                .await
                .map_err(|e| session_store::redis::error::to_store_error(name, e))
        }))
        .await
    }
}

#[async_trait]
impl RedisSide for ClusterSide {
    async fn scan_raw(&self, cursor: u64, count: usize) -> Result<RawPage> {
        self.store.scan_raw(cursor, count).await
    }

    async fn fetch_raw(&self, sids: Vec<StorageId>) -> Result<Vec<RawSession>> {
        self.store.fetch_raw(sids).await
    }

    fn map_storage_id(&self, sid: &StorageId) -> Option<StorageId> {
        self.store.map_storage_id(sid)
    }

    fn prepare_raw(&self, raw: RawSession) -> std::result::Result<BulkSession, NotCopied> {
        self.store.prepare_raw(raw)
    }

    async fn import_bulk(&self, batch: &[BulkSession]) -> Result<Vec<ImportOutcome>> {
        self.store.import_bulk(batch).await
    }

    async fn used_memory(&self) -> Result<(u64, String)> {
        let infos: Vec<String> = self
            .on_each_primary(redis::cmd("INFO").arg("memory"))
            .await?;
        let bytes = infos
            .iter()
            .filter_map(|info| info_field(info, "used_memory")?.parse::<u64>().ok())
            .sum();
        Ok((
            bytes,
            format!("{} over {} primaries", human_bytes(bytes), infos.len()),
        ))
    }

    async fn dbsize(&self) -> Result<u64> {
        let sizes: Vec<u64> = self.on_each_primary(&redis::cmd("DBSIZE")).await?;
        Ok(sizes.into_iter().sum())
    }

    fn name(&self) -> &'static str {
        session_store::SessionStore::backend(&self.store)
    }
}

/// Bytes as Redis's `used_memory_human` writes them (`1.50M`).
fn human_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    UNITS.iter().find(|(size, _)| bytes >= *size).map_or_else(
        || format!("{bytes}B"),
        |(size, unit)| format!("{:.2}{unit}", bytes as f64 / *size as f64),
    )
}

/// The Redis side of a store, if it has one.
pub fn redis_side(store: &Store) -> Option<Arc<dyn RedisSide>> {
    match store {
        Store::Redis(store) => Some(Arc::new(store.clone())),
        Store::Sentinel(store) => Some(Arc::new(store.redis_store().clone())),
        Store::Cluster(store) => Some(Arc::new(ClusterSide::new(store))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_reads_like_redis() {
        assert_eq!(human_bytes(900), "900B");
        assert_eq!(human_bytes(1536), "1.50K");
        assert_eq!(human_bytes(3 << 20), "3.00M");
    }
}
