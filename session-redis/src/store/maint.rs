//! `cleanup`: purge expired sessions and repair index entries, in bounded batches.

use redis::aio::ConnectionLike;
use session_core::{CleanupReport, Result};

use super::call::Call;
use super::RedisStore;
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
        Ok(report)
    }
}
