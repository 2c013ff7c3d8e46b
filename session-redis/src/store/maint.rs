//! `cleanup`: purge expired sessions and repair index entries, in bounded batches.

use redis::aio::ConnectionLike;
use session_core::{CleanupReport, Result, SessionId};

use super::call::Call;
use super::RedisStore;
use crate::codec::{self, Stored};
use crate::keys::StorageId;
use crate::scripts::scripts;

/// Expiry index entries one script call handles: big enough to amortise the round trip,
/// small enough that the server is never blocked for long.
const CLEANUP_BATCH: u64 = 500;
/// `SCAN COUNT` for finding user indexes.
const SCAN_COUNT: u64 = 1000;

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Every key matching `pattern`, by `SCAN` (never `KEYS`).
    async fn scan_keys(&self, call: &mut Call<C>, pattern: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut cursor = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, found): (u64, Vec<String>) = call.query(&scan).await?;
            keys.extend(found);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort_unstable();
        keys.dedup(); // SCAN may return a key twice
        Ok(keys)
    }

    /// Walks one index with `ZSCAN` and drops the members whose session key is gone, a
    /// batch per script call. Returns how many were dropped.
    async fn drop_gone(&self, call: &mut Call<C>, index: &str) -> Result<u64> {
        let mut dropped = 0;
        let mut cursor = 0u64;
        loop {
            let mut zscan = redis::cmd("ZSCAN");
            zscan.arg(index).arg(cursor).arg("COUNT").arg(CLEANUP_BATCH);
            // ZSCAN answers member, score, member, score, …
            let (next, flat): (u64, Vec<String>) = call.query(&zscan).await?;
            let members: Vec<&String> = flat.iter().step_by(2).collect();
            if !members.is_empty() {
                let mut invocation = scripts().drop_gone.key(index);
                invocation.arg(self.shared.keys.prefix());
                for member in members {
                    invocation.arg(member);
                }
                dropped += call.invoke_as::<u64>(&invocation).await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(dropped)
    }

    pub(crate) async fn cleanup_in(&self, call: &mut Call<C>) -> Result<CleanupReport> {
        let now = self.now();
        let keys = &self.shared.keys;
        let mut report = CleanupReport::default();

        // Each batch either deletes its entries or moves them past `now`, so this ends.
        loop {
            let mut invocation = scripts().cleanup.key(&self.shared.expiry_index);
            invocation.arg(now.0).arg(keys.prefix()).arg(CLEANUP_BATCH);
            let reply = call.invoke(&invocation).await?;
            report.removed += reply.uint(0)?;
            report.repaired += reply.uint(1)?;
            if reply.uint(2)? < CLEANUP_BATCH {
                break;
            }
        }

        // User indexes expire with their last member, but members of sessions Redis expired
        // by TTL stay until then: drop every member whose expiry has passed.
        let user_indexes = self.scan_keys(call, &keys.user_index_pattern()).await?;
        for chunk in user_indexes.chunks(SCAN_COUNT as usize) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("ZREMRANGEBYSCORE").arg(key).arg("-inf").arg(now.0);
            }
            let dropped: Vec<u64> = call.pipe(&pipe).await?;
            report.repaired += dropped.iter().sum::<u64>();
        }

        // Entries whose session another writer deleted (a plain `DEL`) are not due yet, so
        // the passes above miss them: check every remaining member against its key.
        report.repaired += self.drop_gone(call, &self.shared.expiry_index).await?;
        for key in &user_indexes {
            report.repaired += self.drop_gone(call, key).await?;
        }
        report.repaired += self.index_foreign(call).await?;
        Ok(report)
    }

    /// Sessions another writer stored without our metadata (the existing service's `SETEX`)
    /// are in no index until this store first writes or refreshes them: this pass adopts every
    /// one it finds (gives it metadata and index entries, data unchanged), so `count`,
    /// `list_user` and `delete_user` see them. Returns how many. A page of keys at a time.
    async fn index_foreign(&self, call: &mut Call<C>) -> Result<u64> {
        let keys = &self.shared.keys;
        // The other writer keys sessions by token; a store that keys them by hash cannot
        // read those keys as sessions at all.
        if keys.hashed() {
            return Ok(0);
        }
        let pattern = keys.scan_pattern();
        let mut adopted = 0;
        let mut cursor = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, found): (u64, Vec<Vec<u8>>) = call.query(&scan).await?;
            let ids: Vec<SessionId> = found
                .iter()
                .filter_map(|key| match keys.parse_session_key(key) {
                    Some(StorageId::Token(id)) => Some(id),
                    _ => None,
                })
                .collect();
            // Ours are in the expiry index: fetch only the values of keys that are not, so a
            // pass moves a few bytes per session, not every session's value.
            let ids = if ids.is_empty() {
                ids
            } else {
                let mut pipe = redis::pipe();
                for id in &ids {
                    pipe.cmd("ZSCORE")
                        .arg(&self.shared.expiry_index)
                        .arg(id.expose_token());
                }
                let scores: Vec<Option<String>> = call.pipe(&pipe).await?;
                ids.into_iter()
                    .zip(scores)
                    .filter_map(|(id, score)| score.is_none().then_some(id))
                    .collect()
            };
            if !ids.is_empty() {
                let mut mget = redis::cmd("MGET");
                for id in &ids {
                    mget.arg(keys.session_key(&StorageId::Token(id.clone())));
                }
                let values: Vec<Option<Vec<u8>>> = call.query(&mget).await?;
                for (id, value) in ids.iter().zip(values) {
                    let foreign = value
                        .is_some_and(|v| matches!(codec::decode(&v), Ok(Stored::Foreign { .. })));
                    if foreign && self.adopt(call, id).await? {
                        adopted += 1;
                    }
                }
            }
            if next == 0 {
                return Ok(adopted);
            }
            cursor = next;
        }
    }
}
