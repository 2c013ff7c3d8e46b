//! Writes without Lua, where plain commands decide as exactly as a script would.
//!
//! Every command a script runs costs Redis more than the same command sent plainly, and the
//! script machinery has a cost of its own: `write.lua` costs the server 4–7× a `SET`
//! (`cargo bench -p session-redis --bench redis`). A `MULTI … EXEC` of plain commands is
//! atomic too, but it cannot branch on what it reads, so the native path is taken where the
//! common case needs no branch, and the script decides the rest.
//!
//! **`Create`** without a given lifetime is `SET … PX … NX` with `ZADD … NX` on the expiry
//! index (and, on one server, the user index entry) in one transaction. Ids are random, so the
//! key is almost always free and the transaction does exactly what `write.lua` would have.
//! Otherwise:
//! - **The key exists**: the `SET` did nothing and `write.lua` decides (a live session:
//!   `AlreadyExists`; past its absolute expiry but kept by another writer's `EXPIRE`: replaced;
//!   not a session: `Corrupt`). `ZADD NX` left an existing entry alone; one it added (the key
//!   had none: another writer's value) the script removes again unless it writes.
//! - **The key was free but an earlier session under the id left its expiry index entry**
//!   (expired and not yet settled, or deleted by another writer's `DEL`): `ZADD NX` kept the
//!   old score. The transaction read it first (`ZSCORE`), and `replace_score.lua` moves it to
//!   the new session's expiry unless someone moved it meanwhile. Until then, readers ignore an
//!   entry scored before the session's creation ([`crate::liveness::current_score`]).
//! - On one server the user index entry is written even where the `SET` did nothing: readers
//!   check every entry against the session it names, and `cleanup` prunes it once due.
//!
//! A given lifetime (a copy of an existing session) goes through `write.lua`: its expiry is
//! not where its creation put it, so the rule above could not speak for it.

use std::sync::Arc;

use redis::aio::ConnectionLike;
use redis::Value;
use session_core::{Result, Session, SessionData, SessionId, WriteOptions};

use super::call::Call;
use super::RedisStore;
use crate::codec::{self, Meta};
use crate::keys::StorageId;
use crate::liveness::{parse_score, MIN_KEY_TTL_MS};
use crate::reply::unexpected;
use crate::scripts::scripts;

/// A native create that found the key taken: the expiry index entry it added (if it added
/// one), for `write.lua` to remove unless it writes.
pub(super) struct Speculation {
    /// The score the transaction added, as digits.
    pub added: String,
}

/// How a native create went.
pub(super) enum Created {
    Stored(Session),
    /// The key exists: `write.lua` decides, given this to undo.
    Taken(Option<Speculation>),
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// `PutMode::Create` without a given lifetime as one `MULTI … EXEC` (see the module docs);
    /// `body` is `encode_body(data)` (size already checked), `user_hex` the user tag the data
    /// names. Per-slot layouts write the user index entry before (another slot); on one server
    /// it goes into the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_natively(
        &self,
        call: &mut Call<C>,
        id: &SessionId,
        sid: &StorageId,
        data: &Arc<SessionData>,
        body: &[u8],
        user_hex: &str,
        options: &WriteOptions,
    ) -> Result<Created> {
        let config = &self.shared.session;
        let keys = &self.shared.keys;
        let now = self.now();
        let fresh = options.lifetime_at(now, None, config.idle_timeout, config.absolute_lifetime);
        let meta = Meta::of(&fresh, codec::fresh_writes(), user_hex.to_owned());
        let value = codec::compose(&meta, body);
        let score = fresh.expires_at().0;
        let ttl = score.saturating_sub(now.0).max(MIN_KEY_TTL_MS);
        let expiry_index = keys.expiry_index_of(sid);

        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("ZSCORE")
            .arg(&expiry_index)
            .arg(sid.as_str())
            .cmd("SET")
            .arg(keys.session_key(sid))
            .arg(&value)
            .arg("PX")
            .arg(ttl)
            .arg("NX")
            .cmd("ZADD")
            .arg(&expiry_index)
            .arg("NX")
            .arg(score)
            .arg(sid.as_str());
        if !keys.per_slot() && !user_hex.is_empty() {
            let user_index = keys.user_index(user_hex);
            pipe.cmd("ZADD")
                .arg(&user_index)
                .arg(score)
                .arg(sid.as_str())
                .ignore()
                // User indexes have no TTL: clear one an older layout gave it.
                .cmd("PERSIST")
                .arg(&user_index)
                .ignore();
        }
        let (previous, set, added): (Option<String>, Value, i64) = call.pipe(&pipe).await?;
        match set {
            Value::Okay => {}
            Value::SimpleString(s) if s == "OK" => {}
            Value::Nil => {
                return Ok(Created::Taken((added == 1).then(|| Speculation {
                    added: score.to_string(),
                })))
            }
            _ => return Err(unexpected(call.backend(), "unexpected SET NX reply")),
        }
        if added == 0 {
            // An earlier session's entry: move it to this one's expiry.
            let previous = previous
                .as_deref()
                .and_then(parse_score)
                .ok_or_else(|| unexpected(call.backend(), "unreadable expiry index score"))?;
            let mut invocation = scripts().replace_score.key(&expiry_index);
            invocation.arg(sid.as_str()).arg(previous).arg(score);
            call.invoke_as::<i64>(&invocation).await?;
        }
        Ok(Created::Stored(Session::from_parts(
            id.clone(),
            data.clone(),
            meta.lifetime(fresh.idle_expires_at),
            codec::version_of(&value),
        )))
    }
}
