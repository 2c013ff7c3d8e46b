//! Reads: `load` (one `GET`), `count` (one `ZCOUNT`), `list_user` (one script), `scan`.

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

    /// `GET` and decode; a foreign value costs a second round trip for its `PTTL`.
    pub(crate) async fn fetch(
        &self,
        call: &mut Call<C>,
        sid: &StorageId,
        key: &str,
        now: Timestamp,
    ) -> Result<Loaded> {
        let bytes = match call.get(key).await? {
            Fetched::Value(bytes) => bytes,
            Fetched::Missing => return Ok(Loaded::Dead),
            Fetched::WrongType => {
                return Err(self.corrupt(sid, "the key does not hold a string", None))
            }
        };
        match codec::decode(&bytes) {
            Ok(Stored::Ours { meta, data }) => {
                let lifetime = meta.lifetime();
                Ok(if lifetime.is_live(now) {
                    Loaded::Live {
                        data,
                        lifetime,
                        bytes,
                    }
                } else {
                    Loaded::Dead
                })
            }
            Ok(Stored::Foreign { data }) => {
                let pttl: i64 = call.query(redis::cmd("PTTL").arg(key)).await?;
                Ok(match self.foreign_lifetime(&data, pttl, now) {
                    Some(lifetime) => Loaded::Live {
                        data,
                        lifetime,
                        bytes,
                    },
                    None => Loaded::Dead,
                })
            }
            Err(e) => {
                let reason = e.reason();
                Err(self.corrupt(sid, reason, e.into_source().map(|s| Box::new(s) as _)))
            }
        }
    }

    /// A foreign session's lifetime: created from its `created` seconds (else now), the
    /// default idle timeout, idle expiry where Redis will expire it, no absolute expiry.
    pub(crate) fn foreign_lifetime(
        &self,
        data: &SessionData,
        pttl: i64,
        now: Timestamp,
    ) -> Option<Lifetime> {
        let idle_timeout = self.shared.session.idle_timeout;
        let idle_expires_at = match pttl {
            // No TTL at all (a plain SET): treat it as freshly active.
            -1 => now.saturating_add(idle_timeout),
            ms if ms > 0 => now.saturating_add(Duration::from_millis(ms.unsigned_abs())),
            _ => return None,
        };
        Some(Lifetime {
            created_at: foreign_created(data).unwrap_or(now),
            idle_timeout,
            idle_expires_at,
            absolute_expires_at: None,
        })
    }

    pub(crate) async fn count_in(&self, call: &mut Call<C>) -> Result<u64> {
        let now = self.now();
        let mut cmd = redis::cmd("ZCOUNT");
        cmd.arg(&self.shared.expiry_index)
            .arg(format!("({}", now.0))
            .arg("+inf");
        call.query(&cmd).await
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
        invocation.arg(now.0).arg(keys.prefix()).arg(&u);
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
        // MGET answers nil for keys that hold other types, so one odd key cannot fail the page.
        let mut mget = redis::cmd("MGET");
        for (key, _) in &candidates {
            mget.arg(key);
        }
        let values: Vec<Option<Vec<u8>>> = call.query(&mget).await?;
        let now = self.now();

        let mut sessions = Vec::with_capacity(candidates.len());
        let mut foreign = Vec::new();
        for ((key, sid), value) in candidates.into_iter().zip(values) {
            let Some(bytes) = value else { continue };
            match codec::decode(&bytes) {
                Ok(Stored::Ours { meta, data }) => {
                    let lifetime = meta.lifetime();
                    if lifetime.is_live(now) {
                        sessions.push(record(&sid, data, lifetime));
                    }
                }
                Ok(Stored::Foreign { data }) => foreign.push((key, sid, data)),
                Err(e) => {
                    tracing::warn!(sid = %sid.fingerprint(), reason = e.reason(), "scan skips a corrupt session record")
                }
            }
        }
        if !foreign.is_empty() {
            let mut pipe = redis::pipe();
            for (key, _, _) in &foreign {
                pipe.cmd("PTTL").arg(key);
            }
            let ttls: Vec<i64> = call.pipe(&pipe).await?;
            for ((_, sid, data), pttl) in foreign.into_iter().zip(ttls) {
                if let Some(lifetime) = self.foreign_lifetime(&data, pttl, now) {
                    sessions.push(record(&sid, data, lifetime));
                }
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
