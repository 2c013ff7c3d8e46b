//! Reads: `load` (`GET`, `PTTL`, `ZSCORE` in one round trip), `count` and `list_user` (one
//! script each), `scan`.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::Value;
use session_core::{
    Error, Lifetime, Result, ScanCursor, ScanPage, Session, SessionData, SessionId, SessionRecord,
    SessionSummary, Timestamp,
};

use super::call::{Call, Fetched};
use super::RedisStore;
use crate::codec::{self, foreign_created, Stored};
use crate::keys::{user_hex, StorageId};
use crate::liveness::{current_score, live_lifetime, parse_score};
use crate::reply::unexpected;
use crate::scripts::scripts;

/// A value read from Redis, decoded and judged live or not at `now`.
pub(crate) enum Loaded {
    Live {
        data: SessionData,
        lifetime: Lifetime,
        /// The stored bytes: the version is their hash, computed only if a save needs it.
        bytes: Vec<u8>,
    },
    /// Absent, or expired by the store's clock.
    Dead,
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    pub(crate) async fn load_in(
        &self,
        call: &mut Call<C>,
        id: &SessionId,
    ) -> Result<Option<Session>> {
        let now = self.now();
        let sid = self.shared.keys.storage_id(id);
        let key = self.shared.keys.session_key(&sid);
        match self.fetch(call, &sid, &key, now).await? {
            Loaded::Live {
                data,
                lifetime,
                bytes,
            } => Ok(Some(Session::from_parts_deferred(
                id.clone(),
                Arc::new(data),
                lifetime,
                bytes,
                codec::version_of,
            ))),
            Loaded::Dead => Ok(None),
        }
    }

    /// `GET`, `PTTL` and expiry index score in one round trip, decoded: live while the key
    /// exists and its absolute expiry has not passed (see [`crate::liveness`]).
    pub(crate) async fn fetch(
        &self,
        call: &mut Call<C>,
        sid: &StorageId,
        key: &str,
        now: Timestamp,
    ) -> Result<Loaded> {
        let (fetched, pttl, score) = call
            .get_timed(key, &self.shared.keys.expiry_index_of(sid), sid.as_str())
            .await?;
        let bytes = match fetched {
            Fetched::Value(bytes) => bytes,
            Fetched::Missing => return Ok(Loaded::Dead),
            Fetched::WrongType => {
                return Err(self.corrupt(sid, "the key does not hold a string", None))
            }
        };
        let mut score = score.as_deref().and_then(parse_score);
        let (data, lifetime) = match codec::decode(&bytes) {
            Ok(Stored::Ours { meta, data }) => {
                let lifetime = meta.lifetime(now);
                score = current_score(score, &lifetime);
                (data, lifetime)
            }
            Ok(Stored::Foreign { data }) => {
                let lifetime = self.foreign_lifetime(&data, now);
                (data, lifetime)
            }
            Err(e) => {
                let reason = e.reason();
                return Err(self.corrupt(sid, reason, e.into_source().map(|s| Box::new(s) as _)));
            }
        };
        Ok(match live_lifetime(lifetime, pttl, score, now) {
            Some(lifetime) => Loaded::Live {
                data,
                lifetime,
                bytes,
            },
            None => Loaded::Dead,
        })
    }

    /// A foreign session's lifetime before Redis's view is applied ([`live_lifetime`]):
    /// created from its `created` seconds (else now), the default idle timeout, no absolute
    /// expiry.
    pub(crate) fn foreign_lifetime(&self, data: &SessionData, now: Timestamp) -> Lifetime {
        let idle_timeout = self.shared.session.idle_timeout;
        Lifetime {
            created_at: foreign_created(data).unwrap_or(now),
            idle_timeout,
            idle_expires_at: now.saturating_add(idle_timeout),
            absolute_expires_at: None,
        }
    }

    /// Live sessions in the expiry indexes: entries ahead of `now` are live sessions (or ones
    /// another writer deleted with a plain `DEL` since: cleanup's reconcile pass drops those);
    /// due entries are settled first. One round trip per index when nothing is due.
    pub(crate) async fn count_in(&self, call: &mut Call<C>) -> Result<u64> {
        if !self.shared.keys.per_slot() {
            return self
                .count_index(call, &self.shared.keys.expiry_index())
                .await;
        }
        let mut total = 0;
        for size in self.index_sizes(call, self.now()).await? {
            total += if size.due == 0 {
                size.entries
            } else {
                self.count_index(call, &size.index).await?
            };
        }
        Ok(total)
    }

    async fn count_index(&self, call: &mut Call<C>, index: &str) -> Result<u64> {
        loop {
            let now = self.now();
            let mut pipe = redis::pipe();
            pipe.cmd("ZRANGEBYSCORE")
                .arg(index)
                .arg("-inf")
                .arg(now.0)
                .arg("LIMIT")
                .arg(0)
                .arg(super::maint::CLEANUP_BATCH)
                .cmd("ZCARD")
                .arg(index);
            let (due, n): (Vec<String>, u64) = call.pipe(&pipe).await?;
            if due.is_empty() {
                return Ok(n);
            }
            self.settle(call, index, &due, now).await?;
        }
    }

    /// Settles due entries of one expiry index (`settle.lua`); returns (removed, repaired).
    pub(crate) async fn settle(
        &self,
        call: &mut Call<C>,
        index: &str,
        due: &[String],
        now: Timestamp,
    ) -> Result<(u64, u64)> {
        let keys = &self.shared.keys;
        let mut invocation = scripts().settle.key(index);
        // A member that is not a storage id was not written by this store: its key (if any)
        // is not ours to judge, so the entry is dropped as a repair.
        let mut members = Vec::with_capacity(due.len());
        let mut strangers = Vec::new();
        for member in due {
            match keys.parse_member(member) {
                Some(sid) => {
                    invocation.key(keys.session_key(&sid));
                    members.push(member);
                }
                None => strangers.push(member),
            }
        }
        let mut repaired = 0;
        if !strangers.is_empty() {
            let mut zrem = redis::cmd("ZREM");
            zrem.arg(index).arg(&strangers);
            repaired += call.query::<u64>(&zrem).await?;
        }
        if members.is_empty() {
            return Ok((0, repaired));
        }
        invocation.arg(now.0).arg(self.default_idle_ms());
        for member in members {
            invocation.arg(member);
        }
        let reply = call.invoke(&invocation).await?;
        Ok((reply.uint(0)?, repaired + reply.uint(1)?))
    }

    /// The storage ids in the user's index, grouped by expiry index (each group one slot),
    /// at most a batch per group. `due_by`: only entries scored at or before it (cleanup).
    pub(crate) async fn user_entries(
        &self,
        call: &mut Call<C>,
        user_hex: &str,
        due_by: Option<Timestamp>,
    ) -> Result<Vec<(String, Vec<StorageId>)>> {
        let keys = &self.shared.keys;
        let mut range = redis::cmd("ZRANGEBYSCORE");
        range.arg(keys.user_index(user_hex)).arg("-inf");
        match due_by {
            Some(t) => range.arg(t.0),
            None => range.arg("+inf"),
        };
        let members: Vec<String> = call.query(&range).await?;
        let mut groups: std::collections::BTreeMap<u16, Vec<StorageId>> = Default::default();
        // A member that is not a storage id was not written by this store: skip it.
        for sid in members.iter().filter_map(|m| keys.parse_member(m)) {
            groups.entry(keys.shard_of(&sid)).or_default().push(sid);
        }
        let mut out = Vec::new();
        for group in groups.into_values() {
            let index = keys.expiry_index_of(&group[0]);
            for chunk in group.chunks(super::maint::CLEANUP_BATCH as usize) {
                out.push((index.clone(), chunk.to_vec()));
            }
        }
        Ok(out)
    }

    pub(crate) async fn list_user_in(
        &self,
        call: &mut Call<C>,
        user: &str,
    ) -> Result<Vec<SessionSummary>> {
        let now = self.now();
        let u = user_hex(user);
        // One script per slot holding the user's sessions, all at once.
        let checks: Vec<_> = self
            .user_entries(call, &u, None)
            .await?
            .into_iter()
            .map(|(index, group)| {
                let mut one = call.on(self.conn.clone());
                let u = &u;
                Box::pin(async move { self.user_sessions(&mut one, &index, &group, u, now).await })
            })
            .collect();
        Ok(futures::future::try_join_all(checks)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Which of `group` (one slot's entries of the user's index) are live sessions naming the
    /// user tagged `u`, as summaries (`user_sessions.lua`).
    pub(crate) async fn user_sessions(
        &self,
        call: &mut Call<C>,
        index: &str,
        group: &[StorageId],
        u: &str,
        now: Timestamp,
    ) -> Result<Vec<SessionSummary>> {
        let keys = &self.shared.keys;
        let mut invocation = scripts().user_sessions.key(index);
        for sid in group {
            invocation.key(keys.session_key(sid));
        }
        invocation.arg(now.0).arg(u);
        for sid in group {
            invocation.arg(sid.as_str());
        }
        let items: Vec<Value> = call.invoke_as(&invocation).await?;
        let bad = || unexpected(call.backend(), "malformed list_user reply");
        let mut out = Vec::with_capacity(items.len() / 5);
        for row in items.chunks(5) {
            let [Value::BulkString(member), Value::Int(c), Value::Int(t), Value::Int(e), Value::Int(a)] =
                row
            else {
                return Err(bad());
            };
            let member = std::str::from_utf8(member).map_err(|_| bad())?;
            let Some(sid) = keys.parse_member(member) else {
                continue;
            };
            let ms = |n: &i64| u64::try_from(*n).map_err(|_| bad());
            out.push(SessionSummary {
                handle: sid.handle(),
                lifetime: Lifetime {
                    created_at: Timestamp(ms(c)?),
                    idle_timeout: Duration::from_millis(ms(t)?),
                    idle_expires_at: Timestamp(ms(e)?),
                    absolute_expires_at: (*a > 0).then_some(Timestamp(ms(a)?)),
                },
            });
        }
        Ok(out)
    }

    /// One `SCAN` page of keys under the prefix, their values in one `MGET`, and `PTTL`s only
    /// for foreign values. Unreadable values are skipped (with a warning): an iteration for
    /// migration should not stop at one bad record.
    pub(crate) async fn scan_in(
        &self,
        call: &mut Call<C>,
        cursor: Option<ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage> {
        let start: u64 = match &cursor {
            None => 0,
            Some(c) => c.0.parse().map_err(|_| Error::InvalidData {
                reason: "not a cursor from this store".into(),
            })?,
        };
        let keys = &self.shared.keys;
        let step = self
            .scan_step(call, start, &keys.scan_pattern(), limit)
            .await?;
        let next = (step.next != 0).then(|| ScanCursor(step.next.to_string()));
        let sids: Vec<StorageId> = step
            .found
            .iter()
            .filter_map(|k| keys.parse_session_key(k))
            .collect();
        let timed = self.read_timed(call, &sids).await?;
        let now = self.now();
        let mut sessions = Vec::with_capacity(sids.len());
        for (sid, (value, pttl, score)) in sids.into_iter().zip(timed) {
            let Some(bytes) = value else { continue };
            let mut score = score.as_deref().and_then(parse_score);
            let (data, lifetime) = match codec::decode(&bytes) {
                Ok(Stored::Ours { meta, data }) => {
                    let lifetime = meta.lifetime(now);
                    score = current_score(score, &lifetime);
                    (data, lifetime)
                }
                Ok(Stored::Foreign { data }) => {
                    let lifetime = self.foreign_lifetime(&data, now);
                    (data, lifetime)
                }
                Err(e) => {
                    tracing::warn!(sid = %sid.fingerprint(), reason = e.reason(), "scan skips a corrupt session record");
                    continue;
                }
            };
            if let Some(lifetime) = live_lifetime(lifetime, pttl, score, now) {
                sessions.push(record(&sid, data, lifetime));
            }
        }
        Ok(ScanPage { sessions, next })
    }
}

/// A value (`None`: absent or not a string), its key's `PTTL` and its expiry index score.
type Timed = (Option<Vec<u8>>, i64, Option<String>);

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Values, `PTTL`s and expiry index scores of these sessions. On one server one pipelined
    /// round trip (`MGET` answers nil for keys that hold other types, so one odd key cannot
    /// fail a page); over several primaries one routed `GET`/`PTTL`/`ZSCORE` per session, all
    /// at once (keys of different slots cannot share a command there).
    pub(crate) async fn read_timed(
        &self,
        call: &mut Call<C>,
        sids: &[StorageId],
    ) -> Result<Vec<Timed>> {
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let keys = &self.shared.keys;
        if self.clustered() {
            let reads = sids.iter().map(|sid| {
                let mut one = call.on(self.conn.clone());
                let key = keys.session_key(sid);
                let index = keys.expiry_index_of(sid);
                async move {
                    let (fetched, pttl, score) = one.get_timed(&key, &index, sid.as_str()).await?;
                    let value = match fetched {
                        Fetched::Value(bytes) => Some(bytes),
                        Fetched::Missing | Fetched::WrongType => None,
                    };
                    Ok::<_, Error>((value, pttl, score))
                }
            });
            return futures::future::try_join_all(reads).await;
        }
        let mut pipe = redis::pipe();
        pipe.cmd("MGET");
        for sid in sids {
            pipe.arg(keys.session_key(sid));
        }
        for sid in sids {
            pipe.cmd("PTTL").arg(keys.session_key(sid));
            pipe.cmd("ZSCORE")
                .arg(keys.expiry_index_of(sid))
                .arg(sid.as_str());
        }
        let mut replies: Vec<Value> = call.pipe(&pipe).await?;
        let bad = || unexpected(call.backend(), "malformed scan reply");
        if replies.len() != 1 + 2 * sids.len() {
            return Err(bad());
        }
        let timing = replies.split_off(1);
        let values: Vec<Option<Vec<u8>>> =
            redis::from_redis_value(replies.pop().ok_or_else(bad)?).map_err(|_| bad())?;
        values
            .into_iter()
            .zip(timing.chunks(2))
            .map(|(value, timing)| {
                let pttl: i64 = redis::from_redis_value_ref(&timing[0]).map_err(|_| bad())?;
                let score: Option<String> =
                    redis::from_redis_value_ref(&timing[1]).map_err(|_| bad())?;
                Ok((value, pttl, score))
            })
            .collect()
    }
}

fn record(sid: &StorageId, data: SessionData, lifetime: Lifetime) -> SessionRecord {
    SessionRecord {
        id: sid.token().cloned(),
        handle: sid.handle(),
        data,
        lifetime,
    }
}
