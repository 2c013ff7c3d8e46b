//! What `stats` and `migrate` need from a Redis-backed store beyond the trait, for plain Redis
//! and Sentinel alike (`RedisStore<C>` over either connection).

use std::sync::Arc;

use async_trait::async_trait;
use redis::aio::ConnectionLike;
use session_store::redis::keys::StorageId;
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
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        };
        let bytes = field("used_memory")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok((bytes, field("used_memory_human").unwrap_or_default()))
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

/// The Redis side of a store, if it has one.
pub fn redis_side(store: &Store) -> Option<Arc<dyn RedisSide>> {
    match store {
        Store::Redis(store) => Some(Arc::new(store.clone())),
        Store::Sentinel(store) => Some(Arc::new(store.redis_store().clone())),
        _ => None,
    }
}
