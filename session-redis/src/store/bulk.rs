//! Bulk copy: whole pages of sessions read raw from one Redis and written to another in one
//! transaction per page, for migration tools such as `sessionctl migrate`.
//!
//! Per-session `import` costs one `EVALSHA` round trip per session; this path costs, per page
//! of about `count` keys, one `SCAN`, one pipelined `MGET` + `PTTL`s on the source and one
//! transaction on the target:
//!
//! 1. [`RedisStore::scan_raw`] on the source: keys under its prefix, values and `PTTL`s.
//! 2. [`RedisStore::prepare_raw`] on the target: sessions written by this library are copied
//!    byte for byte (same metadata, same version); sessions the existing service wrote with
//!    a plain `SETEX` get metadata (lifetime from their `PTTL`, user from the target's
//!    `user_keys`), so they arrive indexed: counted and listed by user.
//! 3. [`RedisStore::import_bulk`] on the target (`store/import.rs`): `SET … PX … NX` and the
//!    index entries for every session of the page in one `MULTI`/`EXEC`; an existing key is
//!    never overwritten, so a re-run skips what an earlier one copied.
//!
//! Nothing here checks `max_session_bytes`: a migration copies what exists.

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::Value;
use serde::Deserialize;
use session_core::{user_of, Error, Result, SessionRecord, Timestamp};

use super::RedisStore;
use crate::codec::{self, Meta, Stored};
use crate::keys::{user_hex, StorageId};
use crate::liveness::live_lifetime;
use crate::reply::unexpected;

/// A session key as read by [`RedisStore::scan_raw`] or [`RedisStore::fetch_raw`]: its
/// storage id in the source's layout, its value and its `PTTL`.
///
/// `Debug` shows the fingerprint and sizes, never the value (it holds session data) or the
/// token.
#[derive(Clone)]
pub struct RawSession {
    /// The storage id in the layout of the store that read it.
    pub sid: StorageId,
    /// The stored bytes; `None` when the key is gone or holds another type.
    pub value: Option<Vec<u8>>,
    /// `PTTL` in ms: `-1` no TTL, `-2` gone.
    pub pttl_ms: i64,
    /// The reading store's clock just before the `PTTL` was asked: the session ends no earlier
    /// than `read_at + pttl_ms`, however long the page waits before it is written elsewhere.
    pub read_at: Timestamp,
}

impl std::fmt::Debug for RawSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSession")
            .field("sid", &self.sid.fingerprint())
            .field("value_len", &self.value.as_ref().map(Vec::len))
            .field("pttl_ms", &self.pttl_ms)
            .field("read_at", &self.read_at)
            .finish()
    }
}

/// One page of [`RedisStore::scan_raw`].
#[derive(Debug, Clone, Default)]
pub struct RawPage {
    /// Session keys found in this page (index keys and strangers left out).
    pub sessions: Vec<RawSession>,
    /// Keys `SCAN` returned, sessions or not (for progress).
    pub keys_scanned: usize,
    /// The `SCAN` cursor to continue from; `None` when the iteration is complete.
    pub next: Option<u64>,
}

/// A session ready for [`RedisStore::import_bulk`] on the store that prepared it.
#[derive(Clone)]
pub struct BulkSession {
    pub(super) sid: StorageId,
    pub(super) value: Vec<u8>,
    pub(super) expires_at: Timestamp,
    pub(super) user_hex: String,
}

impl BulkSession {
    /// Its storage id in the target's layout.
    pub fn storage_id(&self) -> &StorageId {
        &self.sid
    }

    /// When it stops being live.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

impl std::fmt::Debug for BulkSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkSession")
            .field("sid", &self.sid.fingerprint())
            .field("value_len", &self.value.len())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why [`RedisStore::prepare_raw`] did not produce a [`BulkSession`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotCopied {
    /// The key vanished or the session has expired: nothing to copy.
    Gone,
    /// The value is not a session (not JSON, not an object, bad metadata, another type).
    Corrupt(&'static str),
    /// The source keys sessions by handle and this store by token: the token is unknown.
    NeedsToken,
}

/// The metadata member as the compact encoding writes it, for the fast path.
#[derive(Deserialize)]
struct WireMeta {
    c: u64,
    t: u64,
    // `e`, in values from before layout v2, is ignored.
    a: u64,
    w: u64,
    u: String,
}

const COMPACT_META: &[u8] = b"{\"__session__\":";

/// Reads only the metadata of a value this library wrote compactly (the data after it is
/// not parsed: it is copied as it is). `None` for anything else, which then takes the full
/// decode.
fn fast_meta(bytes: &[u8]) -> Option<Meta> {
    let rest = bytes.strip_prefix(COMPACT_META)?;
    let end = rest.iter().position(|&b| b == b'}')?;
    let wire: WireMeta = serde_json::from_slice(&rest[..=end]).ok()?;
    let after = rest.get(end + 1)?;
    if !matches!(after, b',' | b'}') || !wire.u.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(Meta {
        created_at: Timestamp(wire.c),
        idle_timeout: Duration::from_millis(wire.t),
        absolute_expires_at: (wire.a > 0).then_some(Timestamp(wire.a)),
        writes: wire.w,
        user_hex: wire.u,
    })
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// One `SCAN cursor MATCH {prefix}* COUNT count` page (start with 0), with the values and
    /// `PTTL`s of its session keys in one pipelined round trip (`MGET` answers nil for keys of
    /// another type, so one odd key cannot fail the page).
    pub async fn scan_raw(&self, cursor: u64, count: usize) -> Result<RawPage> {
        let keys = &self.shared.keys;
        let mut call = self.call("scan_raw", None);
        let step = self
            .scan_step(&mut call, cursor, &keys.scan_pattern(), count)
            .await?;
        let (next, found) = (step.next, step.found);
        let keys_scanned = found.len();
        let sids: Vec<StorageId> = found
            .iter()
            .filter_map(|k| keys.parse_session_key(k))
            .collect();
        let sessions = self.fetch_raw_in(&mut call, sids).await?;
        Ok(RawPage {
            sessions,
            keys_scanned,
            next: (next != 0).then_some(next),
        })
    }

    /// Values and `PTTL`s of these sessions (in this store's layout), in one pipelined round
    /// trip: for comparing two stores after a copy.
    pub async fn fetch_raw(&self, sids: Vec<StorageId>) -> Result<Vec<RawSession>> {
        let mut call = self.call("fetch_raw", None);
        self.fetch_raw_in(&mut call, sids).await
    }

    async fn fetch_raw_in(
        &self,
        call: &mut super::Call<C>,
        sids: Vec<StorageId>,
    ) -> Result<Vec<RawSession>> {
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let keys = &self.shared.keys;
        if self.clustered() {
            // Keys of different slots cannot share a command: one routed GET + PTTL each.
            let read_at = self.now();
            let reads = sids.into_iter().map(|sid| {
                let mut one = call.on(self.conn.clone());
                let key = keys.session_key(&sid);
                async move {
                    let mut pipe = redis::pipe();
                    pipe.ignore_errors()
                        .cmd("GET")
                        .arg(&key)
                        .cmd("PTTL")
                        .arg(&key);
                    let (value, pttl_ms): (redis::RedisResult<Option<Vec<u8>>>, i64) =
                        one.pipe(&pipe).await?;
                    Ok::<_, session_core::Error>(RawSession {
                        sid,
                        // A key of another type reads as absent, as MGET answers it.
                        value: value.ok().flatten(),
                        pttl_ms,
                        read_at,
                    })
                }
            });
            return futures::future::try_join_all(reads).await;
        }
        let names: Vec<String> = sids.iter().map(|sid| keys.session_key(sid)).collect();
        let mut pipe = redis::pipe();
        pipe.cmd("MGET").arg(&names);
        for name in &names {
            pipe.cmd("PTTL").arg(name);
        }
        let read_at = self.now();
        let mut replies: Vec<Value> = call.pipe(&pipe).await?;
        let bad = || unexpected(call.backend(), "malformed MGET/PTTL reply");
        if replies.len() != names.len() + 1 {
            return Err(bad());
        }
        let ttls = replies.split_off(1);
        let Some(Value::Array(values)) = replies.pop() else {
            return Err(bad());
        };
        if values.len() != names.len() {
            return Err(bad());
        }
        sids.into_iter()
            .zip(values)
            .zip(ttls)
            .map(|((sid, value), ttl)| {
                let value = match value {
                    Value::BulkString(bytes) => Some(bytes),
                    Value::Nil => None,
                    _ => return Err(bad()),
                };
                let Value::Int(pttl_ms) = ttl else {
                    return Err(bad());
                };
                Ok(RawSession {
                    sid,
                    value,
                    pttl_ms,
                    read_at,
                })
            })
            .collect()
    }

    /// This store's storage id for a session named `sid` in another store's layout; `None`
    /// when `sid` is a handle and this store keys sessions by token.
    pub fn map_storage_id(&self, sid: &StorageId) -> Option<StorageId> {
        match sid {
            StorageId::Token(id) => Some(self.shared.keys.storage_id(id)),
            StorageId::Handle(handle) if self.shared.keys.hashed() => {
                Some(StorageId::Handle(handle.clone()))
            }
            StorageId::Handle(_) => None,
        }
    }

    /// Turns a session read raw from another store (see [`RedisStore::scan_raw`]) into what
    /// [`RedisStore::import_bulk`] writes here: ours byte for byte; foreign ones (no
    /// metadata) with metadata built the way this store reads them (created from their
    /// `created` field, the default idle timeout, idle expiry where their `PTTL` ends, or
    /// `now + idle_timeout` without a TTL; user from `user_keys`).
    pub fn prepare_raw(&self, raw: RawSession) -> std::result::Result<BulkSession, NotCopied> {
        let sid = self.map_storage_id(&raw.sid).ok_or(NotCopied::NeedsToken)?;
        let value = raw.value.ok_or(NotCopied::Gone)?;
        let now = self.now();
        if let Some(meta) = fast_meta(&value) {
            return self.live(sid, value, &meta, raw.pttl_ms, raw.read_at);
        }
        // Another writer's value: its members copied byte for byte, our metadata spliced in
        // first (so the target indexes it by user and can list and revoke it), with the TTL
        // it has; only the members the metadata needs are decoded.
        match codec::probe_foreign(&value, &self.shared.session.user_keys) {
            Ok(Some(probe)) => {
                let lifetime = live_lifetime(
                    self.foreign_lifetime(&probe.members, raw.read_at),
                    raw.pttl_ms,
                    None,
                    raw.read_at,
                )
                .filter(|l| l.expires_at() > now)
                .ok_or(NotCopied::Gone)?;
                let user = probe.user.map(|u| user_hex(&u)).unwrap_or_default();
                let meta = Meta::of(&lifetime, codec::fresh_writes(), user);
                let value = codec::with_meta(&meta, &value);
                return Ok(BulkSession {
                    sid,
                    value,
                    expires_at: lifetime.expires_at(),
                    user_hex: meta.user_hex,
                });
            }
            Ok(None) => {}
            Err(e) => return Err(NotCopied::Corrupt(e.reason())),
        }
        match codec::decode(&value) {
            Ok(Stored::Ours { meta, .. }) => self.live(sid, value, &meta, raw.pttl_ms, raw.read_at),
            Ok(Stored::Foreign { .. }) => Err(NotCopied::Corrupt("unreadable metadata member")),
            Err(e) => Err(NotCopied::Corrupt(e.reason())),
        }
    }

    /// Where the session ends by its key's TTL on the source (see [`live_lifetime`]).
    fn live(
        &self,
        sid: StorageId,
        value: Vec<u8>,
        meta: &Meta,
        pttl_ms: i64,
        read_at: Timestamp,
    ) -> std::result::Result<BulkSession, NotCopied> {
        let now = self.now();
        let expires_at = live_lifetime(meta.lifetime(read_at), pttl_ms, None, read_at)
            .ok_or(NotCopied::Gone)?
            .expires_at();
        if expires_at <= now {
            return Err(NotCopied::Gone);
        }
        Ok(BulkSession {
            sid,
            value,
            expires_at,
            user_hex: meta.user_hex.clone(),
        })
    }

    /// A record from any store (for example an in-memory one, or a test's seed data) as a
    /// [`BulkSession`] for this store, keeping its lifetime like [`import`] does.
    ///
    /// [`import`]: session_core::SessionStoreExt::import
    pub fn prepare_record(&self, record: &SessionRecord) -> Result<BulkSession> {
        let sid = match &record.id {
            Some(id) => self.shared.keys.storage_id(id),
            None if self.shared.keys.hashed() => StorageId::Handle(record.handle.clone()),
            None => {
                return Err(Error::Unsupported {
                    backend: self.backend,
                    operation: "importing a record without its token into a plain-keyed store",
                })
            }
        };
        let lifetime = record.lifetime;
        let user = user_of(&record.data, &self.shared.session.user_keys)
            .map(|u| user_hex(&u))
            .unwrap_or_default();
        let meta = Meta::of(&lifetime, codec::fresh_writes(), user);
        Ok(BulkSession {
            sid,
            value: codec::encode(&meta, &record.data),
            expires_at: lifetime.expires_at(),
            user_hex: meta.user_hex,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fast_meta_agrees_with_the_codec() {
        let meta = Meta {
            created_at: Timestamp(1),
            idle_timeout: Duration::from_millis(2),
            absolute_expires_at: Some(Timestamp(4)),
            writes: 5,
            user_hex: "6162".into(),
        };
        for data in [json!({}), json!({"user": {"sub": "x"}, "n": "}"})] {
            let bytes = codec::encode(&meta, data.as_object().unwrap());
            assert_eq!(fast_meta(&bytes), Some(meta.clone()));
        }
        assert_eq!(fast_meta(br#"{"__session__": {"c": 1}}"#), None);
        assert_eq!(fast_meta(br#"{"user": {}}"#), None);
    }
}
