//! `cleanup`: purge expired sessions and repair index entries, in bounded batches.

use futures::StreamExt as _;
use redis::aio::ConnectionLike;
use session_core::{CleanupReport, Result, SessionId, Timestamp};

use super::call::Call;
use super::RedisStore;
use crate::codec;
use crate::keys::StorageId;
use crate::scripts::scripts;

/// Expiry index entries one script call handles: big enough to amortise the round trip,
/// small enough that the server is never blocked for long.
pub(crate) const CLEANUP_BATCH: u64 = 500;
/// How a value of ours starts (JSON whitespace aside).
const HEAD: &str = "{\"__session__\"";

/// How many bytes of a value the adoption pass reads to judge it.
const HEAD_BYTES: usize = 128;

/// Whether a value's first bytes show one to adopt: another writer's (no metadata member
/// first), or ours from before layout v2 (an idle expiry `e` before `a`; its user index entry
/// is under the old key name), which a rewrite brings to the current layout.
fn needs_adoption(head: &[u8]) -> bool {
    let compact: Vec<u8> = head
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !compact.starts_with(HEAD.as_bytes()) {
        return true;
    }
    let at = |needle: &[u8]| compact.windows(needle.len()).position(|w| w == needle);
    match (at(b",\"e\":"), at(b",\"a\":")) {
        (Some(e), Some(a)) => e < a,
        _ => false,
    }
}

/// Expiry indexes `cleanup` works on at once.
const INDEXES_AT_ONCE: usize = 16;

/// `SCAN COUNT` for finding user indexes.
const SCAN_COUNT: u64 = 1000;

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Every key matching `pattern`, by `SCAN` (never `KEYS`), on every primary.
    async fn scan_keys(&self, call: &mut Call<C>, pattern: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut cursor = 0u64;
        loop {
            let step = self
                .scan_step(call, cursor, pattern, SCAN_COUNT as usize)
                .await?;
            keys.extend(
                step.found
                    .into_iter()
                    .filter_map(|k| String::from_utf8(k).ok()),
            );
            if step.next == 0 {
                break;
            }
            cursor = step.next;
        }
        keys.sort_unstable();
        keys.dedup(); // SCAN may return a key twice
        Ok(keys)
    }

    /// Walks one expiry index with `ZSCAN` and drops the members whose session key is gone,
    /// a batch per script call. Returns how many were dropped.
    async fn drop_gone(&self, call: &mut Call<C>, index: &str) -> Result<u64> {
        let keys = &self.shared.keys;
        let mut dropped = 0;
        let mut cursor = 0u64;
        loop {
            let mut zscan = redis::cmd("ZSCAN");
            zscan.arg(index).arg(cursor).arg("COUNT").arg(CLEANUP_BATCH);
            // ZSCAN answers member, score, member, score, …
            let (next, flat): (u64, Vec<String>) = call.query(&zscan).await?;
            let members: Vec<StorageId> = flat
                .iter()
                .step_by(2)
                .filter_map(|m| keys.parse_member(m))
                .collect();
            if !members.is_empty() {
                let mut invocation = scripts().drop_gone.key(index);
                for sid in &members {
                    invocation.key(keys.session_key(sid));
                }
                for sid in &members {
                    invocation.arg(sid.as_str());
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

    /// Settles every due entry of one expiry index, a batch at a time.
    async fn settle_index(
        &self,
        call: &mut Call<C>,
        index: &str,
        now: Timestamp,
        report: &mut CleanupReport,
    ) -> Result<()> {
        // Each batch either deletes its entries or moves them past `now`, so this ends.
        loop {
            let mut range = redis::cmd("ZRANGEBYSCORE");
            range
                .arg(index)
                .arg("-inf")
                .arg(now.0)
                .arg("LIMIT")
                .arg(0)
                .arg(CLEANUP_BATCH);
            let due: Vec<String> = call.query(&range).await?;
            if due.is_empty() {
                return Ok(());
            }
            let (removed, repaired) = self.settle(call, index, &due, now).await?;
            report.removed += removed;
            report.repaired += repaired;
            if (due.len() as u64) < CLEANUP_BATCH {
                return Ok(());
            }
        }
    }

    /// Prunes one user index: entries scored at or before `now` whose session is gone,
    /// expired, unreadable or names someone else. (An entry written for a write in flight is
    /// scored ahead of `now`, so it is never pruned from under that write.)
    async fn prune_user_index(&self, call: &mut Call<C>, key: &str, now: Timestamp) -> Result<u64> {
        let Some(u) = key.strip_prefix(&self.shared.keys.user_index("")) else {
            return Ok(0);
        };
        let mut pruned = 0;
        for (index, group) in self.user_entries(call, u, Some(now)).await? {
            let live: std::collections::HashSet<_> = self
                .user_sessions(call, &index, &group, u, now)
                .await?
                .into_iter()
                .map(|summary| summary.handle)
                .collect();
            let stale: Vec<&StorageId> = group
                .iter()
                .filter(|sid| !live.contains(&sid.handle()))
                .collect();
            if stale.is_empty() {
                continue;
            }
            let mut invocation = scripts().prune_user.key(key);
            invocation.arg(now.0);
            for sid in stale {
                invocation.arg(sid.as_str());
            }
            pruned += call.invoke_as::<u64>(&invocation).await?;
        }
        Ok(pruned)
    }

    pub(crate) async fn cleanup_in(&self, call: &mut Call<C>) -> Result<CleanupReport> {
        let now = self.now();
        let keys = &self.shared.keys;
        let mut report = CleanupReport::default();

        let indexes: Vec<String> = if keys.per_slot() {
            self.index_sizes(call, now)
                .await?
                .into_iter()
                .map(|size| size.index)
                .collect()
        } else {
            vec![keys.expiry_index()]
        };
        // Per index: settle its due entries, then check every remaining member against its key
        // (entries whose session is gone but not due: another writer's plain `DEL`). Several
        // indexes at once (under a per-slot layout there is one per slot holding sessions).
        let passes: Vec<_> = indexes
            .into_iter()
            .map(|index| {
                let mut one = call.on(self.conn.clone());
                Box::pin(async move {
                    let mut report = CleanupReport::default();
                    self.settle_index(&mut one, &index, now, &mut report)
                        .await?;
                    report.repaired += self.drop_gone(&mut one, &index).await?;
                    Ok::<_, session_core::Error>(report)
                })
            })
            .collect();
        let mut passes = futures::stream::iter(passes).buffer_unordered(INDEXES_AT_ONCE);
        while let Some(pass) = passes.next().await {
            let pass = pass?;
            report.removed += pass.removed;
            report.repaired += pass.repaired;
        }
        drop(passes);
        // User index entries are pruned once their score has passed.
        for key in self.scan_keys(call, &keys.user_index_pattern()).await? {
            report.repaired += self.prune_user_index(call, &key, now).await?;
        }
        report.repaired += self.index_foreign(call).await?;
        Ok(report)
    }

    /// "Log out everywhere" while another writer is active: first adopts every session that
    /// writer stored (the pass `cleanup` ends with: a `SCAN` of the prefix reading the first
    /// bytes of each value), so none of that user's is missed, then
    /// [`delete_user`](session_core::SessionStore::delete_user). `delete_user` alone reaches every session
    /// this store wrote, refreshed or adopted, in time proportional to the user's sessions; this
    /// reaches the other writer's too, in time proportional to all keys under the prefix.
    /// Returns how many live sessions were deleted.
    pub async fn delete_user_everywhere(&self, user: &str) -> Result<u64> {
        let mut call = self.call("delete_user_everywhere", None);
        let result = async {
            self.index_foreign(&mut call).await?;
            self.delete_user_in(&mut call, user).await
        }
        .await;
        call.finish(&result);
        result
    }

    /// Sessions another writer stored without our metadata (the existing service's `SETEX`)
    /// are in no index until this store first writes or refreshes them: this pass adopts every
    /// one it finds (gives it metadata and index entries, data unchanged), so `count`,
    /// `list_user` and `delete_user` see them. Sessions this library stored before layout v2
    /// are rewritten the same way (their user index entries move to the current key names).
    /// Returns how many. A page of keys at a time.
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
            let step = self
                .scan_step(call, cursor, &pattern, SCAN_COUNT as usize)
                .await?;
            let (next, found) = (step.next, step.found);
            let ids: Vec<SessionId> = found
                .iter()
                .filter_map(|key| match keys.parse_session_key(key) {
                    Some(StorageId::Token(id)) => Some(id),
                    _ => None,
                })
                .collect();
            // Ours start with the metadata member: read only the first bytes of each value to
            // find the others (and ours from before layout v2), so a pass moves a few bytes per
            // session, not every value.
            let ids = if ids.is_empty() {
                ids
            } else {
                let names: Vec<String> = ids
                    .iter()
                    .map(|id| keys.session_key(&StorageId::Token(id.clone())))
                    .collect();
                let heads = self.read_each(call, &names, Some(HEAD_BYTES)).await?;
                ids.into_iter()
                    .zip(heads)
                    .filter_map(|(id, head)| head.is_some_and(|h| needs_adoption(&h)).then_some(id))
                    .collect()
            };
            if !ids.is_empty() {
                let names: Vec<String> = ids
                    .iter()
                    .map(|id| keys.session_key(&StorageId::Token(id.clone())))
                    .collect();
                let values = self.read_each(call, &names, None).await?;
                for (id, value) in ids.iter().zip(values) {
                    // Readable (foreign, or ours in the old layout): adopt; corrupt: leave it.
                    let readable = value.is_some_and(|v| codec::decode(&v).is_ok());
                    if readable && self.adopt(call, id).await? {
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

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// The values of `names` (their first `head` bytes if given; `None`: absent or not a
    /// string): one pipeline on one server, one routed command each over several primaries.
    async fn read_each(
        &self,
        call: &mut Call<C>,
        names: &[String],
        head: Option<usize>,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let cmd = |name: &String| {
            let mut cmd = match head {
                Some(_) => redis::cmd("GETRANGE"),
                None => redis::cmd("GET"),
            };
            cmd.arg(name);
            if let Some(n) = head {
                cmd.arg(0).arg(n - 1);
            }
            cmd
        };
        // Errors per command (a key of another type) read as absent.
        let settle =
            |v: redis::RedisResult<Option<Vec<u8>>>| v.ok().flatten().filter(|v| !v.is_empty());
        if self.clustered() {
            let reads = names.iter().map(|name| {
                let mut one = call.on(self.conn.clone());
                let mut pipe = redis::pipe();
                pipe.ignore_errors().add_command(cmd(name));
                async move {
                    let (value,): (redis::RedisResult<Option<Vec<u8>>>,) = one.pipe(&pipe).await?;
                    Ok::<_, session_core::Error>(settle(value))
                }
            });
            return futures::future::try_join_all(reads).await;
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for name in names {
            pipe.add_command(cmd(name));
        }
        let values: Vec<redis::RedisResult<Option<Vec<u8>>>> = call.pipe(&pipe).await?;
        Ok(values.into_iter().map(settle).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::needs_adoption;

    #[test]
    fn adoption_is_for_other_writers_and_the_old_layout() {
        let v2 = br#"{"__session__":{"c":1,"t":2,"a":0,"w":3,"u":""},"e":1}"#;
        let v1 = br#"{"__session__": {"c": 1, "t": 2, "e": 5, "a": 0, "w": 3, "u": ""}}"#;
        assert!(!needs_adoption(v2));
        assert!(needs_adoption(v1));
        assert!(needs_adoption(br#"{"user": {"sub": "x"}}"#));
    }
}
