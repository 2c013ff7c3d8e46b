//! The expiry indexes as a whole: one key on a single server, one per hash slot under
//! [`IndexPlacement::PerSlot`](crate::keys::IndexPlacement), visited the same way.

use redis::aio::ConnectionLike;
use session_core::{Result, Timestamp};

use super::call::Call;
use super::RedisStore;
use crate::reply::unexpected;
use crate::scripts::scripts;

/// How often `count` asks again for indexes whose slot moved mid-walk, and how long it waits
/// in between: a slot's keys move in a few ms; a whole resharding moves slot after slot.
const MOVED_ATTEMPTS: u32 = 200;
const MOVED_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// Index keys per script call when visiting every slot's index: a script blocks its node, and
/// 1,024 indexes take it about 4 ms (measured: 5,461 took 17-21 ms, 1.5 µs per `ZCARD` and
/// `ZCOUNT` inside Lua); a primary of a 3-primary cluster serves about 5,461 slots.
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
    /// `ZCOUNT` for each, pipelined to the primary that serves its slot (one script call per
    /// primary).
    pub(crate) async fn index_sizes(
        &self,
        call: &mut Call<C>,
        now: Timestamp,
    ) -> Result<Vec<IndexSize>> {
        let keys = &self.shared.keys;
        if !keys.per_slot() {
            return Ok(self.sizes_on(call, &[keys.expiry_index()], now).await?.0);
        }
        let all = keys.expiry_indexes();
        // Every primary at once: each walks its own slots.
        let walks = self.primaries().await?.into_iter().map(|primary| {
            let indexes: Vec<String> = primary
                .slots
                .iter()
                .flat_map(|range| {
                    all[usize::from(*range.start())..=usize::from(*range.end())].iter()
                })
                .cloned()
                .collect();
            let mut node = call.on(primary.conn);
            async move { self.sizes_on(&mut node, &indexes, now).await }
        });
        let mut out = Vec::new();
        let mut elsewhere = Vec::new();
        for (sizes, moved) in futures::future::try_join_all(walks).await? {
            out.extend(sizes);
            elsewhere.extend(moved);
        }
        // Indexes whose slot moved (a resharding): ask the slots' owners as they stand now,
        // until the slots have settled.
        let mut attempts = 0;
        while !elsewhere.is_empty() {
            attempts += 1;
            if attempts > MOVED_ATTEMPTS {
                return Err(session_core::Error::Unavailable {
                    backend: call.backend(),
                    source: Box::new(crate::UnexpectedReply(
                        "expiry index slots kept moving while counting",
                    )),
                });
            }
            tokio::time::sleep(MOVED_PAUSE).await;
            let primaries = self.primaries().await?;
            let mut again = Vec::new();
            for index in std::mem::take(&mut elsewhere) {
                let slot = crate::keys::key_slot(index.as_bytes());
                match primaries.iter().find(|p| p.serves(slot)) {
                    Some(primary) => {
                        let mut node = call.on(primary.conn.clone());
                        let (sizes, moved) = self.sizes_on(&mut node, &[index], now).await?;
                        out.extend(sizes);
                        again.extend(moved);
                    }
                    None => again.push(index),
                }
            }
            elsewhere = again;
        }
        Ok(out)
    }

    /// Sizes of `indexes` on the node `call` talks to, and the indexes it does not serve.
    async fn sizes_on(
        &self,
        call: &mut Call<C>,
        indexes: &[String],
        now: Timestamp,
    ) -> Result<(Vec<IndexSize>, Vec<String>)> {
        let mut out = Vec::new();
        let mut moved = Vec::new();
        for chunk in indexes.chunks(PER_TRIP) {
            let mut invocation = scripts().index_sizes.prepare_invoke();
            invocation.arg(now.0);
            for index in chunk {
                invocation.arg(index);
            }
            let flat: Vec<i64> = call.invoke_as(&invocation).await?;
            for row in flat.chunks(3) {
                let [at, entries, due] = *row else {
                    return Err(unexpected(call.backend(), "malformed index_sizes reply"));
                };
                let index = usize::try_from(at)
                    .ok()
                    .and_then(|at| chunk.get(at.wrapping_sub(1)))
                    .ok_or_else(|| unexpected(call.backend(), "malformed index_sizes reply"))?;
                match (u64::try_from(entries), u64::try_from(due)) {
                    (Ok(entries), Ok(due)) => out.push(IndexSize {
                        index: index.clone(),
                        entries,
                        due,
                    }),
                    _ => moved.push(index.clone()),
                }
            }
        }
        Ok((out, moved))
    }
}
