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
use crate::liveness::{live_lifetime, parse_score};
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
            .get_timed(key, &self.shared.expiry_index, sid.as_str())
            .await?;
        let bytes = match fetched {
            Fetched::Value(bytes) => bytes,
            Fetched::Missing => return Ok(Loaded::Dead),
            Fetched::WrongType => {
                return Err(self.corrupt(sid, "the key does not hold a string", None))
            }
        };
        let score = score.as_deref().and_then(parse_score);
        let (data, lifetime) = match codec::decode(&bytes) {
            Ok(Stored::Ours { meta, data }) => (data, meta.lifetime(now)),
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

    pub(crate) async fn count_in(&self, call: &mut Call<C>) -> Result<u64> {
        loop {
            let mut invocation = scripts().count.key(&self.shared.expiry_index);
            invocation
                .arg(self.now().0)
                .arg(self.shared.keys.prefix())
                .arg(super::maint::CLEANUP_BATCH)
                .arg(self.default_idle_ms());
            let n: i64 = call.invoke_as(&invocation).await?;
            if let Ok(n) = u64::try_from(n) {
                return Ok(n);
            }
        }
    }

    pub(crate) async fn list_user_in(
        &self,
        call: &mut Call<C>,
        user: &str,
    ) -> Result<Vec<SessionSummary>> {
        let now = self.now();
        let u = user_hex(user);
        let keys = &self.shared.keys;
        let mut invocation = scripts().list_user.key(keys.user_index(&u));
        invocation
            .key(&self.shared.expiry_index)
            .arg(now.0)
            .arg(keys.prefix())
            .arg(&u);
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
            // A member that is not a storage id was not written by this store: skip it.
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
        let mut scan = redis::cmd("SCAN");
        scan.arg(start)
            .arg("MATCH")
            .arg(keys.scan_pattern())
            .arg("COUNT")
            .arg(limit.max(1));
        let (next, found): (u64, Vec<Vec<u8>>) = call.query(&scan).await?;
        let next = (next != 0).then(|| ScanCursor(next.to_string()));

        let candidates: Vec<(Vec<u8>, StorageId)> = found
            .into_iter()
            .filter_map(|k| keys.parse_session_key(&k).map(|sid| (k, sid)))
            .collect();
        if candidates.is_empty() {
            return Ok(ScanPage {
                sessions: Vec::new(),
                next,
            });
        }
        // MGET answers nil for keys that hold other types, so one odd key cannot fail the page;
        // PTTLs and expiry index scores come in the same round trip.
        let mut pipe = redis::pipe();
        pipe.cmd("MGET");
        for (key, _) in &candidates {
            pipe.arg(key);
        }
        for (key, sid) in &candidates {
            pipe.cmd("PTTL").arg(key);
            pipe.cmd("ZSCORE")
                .arg(&self.shared.expiry_index)
                .arg(sid.as_str());
        }
        let mut replies: Vec<Value> = call.pipe(&pipe).await?;
        let bad = || unexpected(call.backend(), "malformed scan reply");
        if replies.len() != 1 + 2 * candidates.len() {
            return Err(bad());
        }
        let timed = replies.split_off(1);
        let values: Vec<Option<Vec<u8>>> =
            redis::from_redis_value(replies.pop().ok_or_else(bad)?).map_err(|_| bad())?;
        let now = self.now();

        let mut sessions = Vec::with_capacity(candidates.len());
        for (((_, sid), value), timing) in candidates.into_iter().zip(values).zip(timed.chunks(2)) {
            let Some(bytes) = value else { continue };
            let pttl: i64 = redis::from_redis_value_ref(&timing[0]).map_err(|_| bad())?;
            let score: Option<String> =
                redis::from_redis_value_ref(&timing[1]).map_err(|_| bad())?;
            let score = score.as_deref().and_then(parse_score);
            let (data, lifetime) = match codec::decode(&bytes) {
                Ok(Stored::Ours { meta, data }) => (data, meta.lifetime(now)),
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

fn record(sid: &StorageId, data: SessionData, lifetime: Lifetime) -> SessionRecord {
    SessionRecord {
        id: sid.token().cloned(),
        handle: sid.handle(),
        data,
        lifetime,
    }
}
