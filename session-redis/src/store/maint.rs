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
        let mut cursor = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(keys.user_index_pattern())
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, found): (u64, Vec<String>) = call.query(&scan).await?;
            if !found.is_empty() {
                let mut pipe = redis::pipe();
                for key in &found {
                    pipe.cmd("ZREMRANGEBYSCORE").arg(key).arg("-inf").arg(now.0);
                }
                let dropped: Vec<u64> = call.pipe(&pipe).await?;
                report.repaired += dropped.iter().sum::<u64>();
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(report)
    }
}
