//! The expiry indexes as a whole: one key on a single server, one per hash slot under
//! [`IndexPlacement::PerSlot`](crate::keys::IndexPlacement), visited the same way.

use redis::aio::ConnectionLike;
use session_core::{Result, Timestamp};

use super::call::Call;
use super::RedisStore;

/// Index keys per pipelined round trip when visiting every slot's index.
const PER_TRIP: usize = 1024;

/// One expiry index's size and how many of its entries are due.
pub(crate) struct IndexSize {
    pub(crate) index: String,
    pub(crate) entries: u64,
    pub(crate) due: u64,
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Every non-empty expiry index with its size and due entries at `now`: `ZCARD` and
    /// `ZCOUNT` for each, pipelined (16 round trips for the 16,384 per-slot indexes).
    pub(crate) async fn index_sizes(
        &self,
        call: &mut Call<C>,
        now: Timestamp,
    ) -> Result<Vec<IndexSize>> {
        let indexes = self.shared.keys.expiry_indexes();
        let mut out = Vec::new();
        for chunk in indexes.chunks(PER_TRIP) {
            let mut pipe = redis::pipe();
            for index in chunk {
                pipe.cmd("ZCARD")
                    .arg(index)
                    .cmd("ZCOUNT")
                    .arg(index)
                    .arg("-inf")
                    .arg(now.0);
            }
            let counts: Vec<u64> = call.pipe(&pipe).await?;
            for (index, pair) in chunk.iter().zip(counts.chunks(2)) {
                if pair[0] > 0 {
                    out.push(IndexSize {
                        index: index.clone(),
                        entries: pair[0],
                        due: pair[1],
                    });
                }
            }
        }
        Ok(out)
    }
}
