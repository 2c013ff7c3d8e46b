//! Writes: each one `EVALSHA` (see `scripts`), with the data encoded here and the metadata
//! composed by the script from what is stored.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike;
use session_core::{
    encode_data, user_of, Error, PutMode, Result, Session, SessionData, SessionId, Timestamp,
    WriteOptions,
};

use super::call::Call;
use super::native::{Created, Speculation};
use super::read::Loaded;
use super::RedisStore;
use crate::codec::{self, Meta, Stored};
use crate::keys::{user_hex, StorageId};
use crate::reply::unexpected;
use crate::scripts::{scripts, Status};

/// How often rotate adopts a foreign value and retry before giving up with
/// [`Error::Conflict`] (another writer keeps replacing it).
const ADOPT_ATTEMPTS: usize = 3;
/// How many fresh ids rotate tries when the new key is taken (never happens in practice).
const ROTATE_ATTEMPTS: usize = 5;

/// What `write.lua` did.
enum Written {
    Stored(Session),
    Taken,
    Gone,
    Stale,
    /// Nothing: the session would newly name its user, whose index needs the entry first.
    Unindexed,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A put's name in traces: `put_create`, `put_upsert`, `put_if_live`, `put_if_version`.
pub(crate) fn op_name(mode: PutMode) -> &'static str {
    match mode {
        PutMode::Create => "put_create",
        PutMode::Upsert => "put_upsert",
        PutMode::IfLive => "put_if_live",
        PutMode::IfVersion(_) => "put_if_version",
        _ => "put",
    }
}

/// `write.lua`'s name for a mode.
fn mode_name(mode: PutMode) -> Result<&'static str> {
    Ok(match mode {
        PutMode::Create => "create",
        PutMode::Upsert => "upsert",
        PutMode::IfLive => "iflive",
        PutMode::IfVersion(_) => "ifversion",
        _ => {
            return Err(Error::Unsupported {
                backend: super::BACKEND,
                operation: "this put mode",
            })
        }
    })
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn user_hex_of(&self, data: &SessionData) -> String {
        user_of(data, &self.shared.session.user_keys)
            .map(|u| user_hex(&u))
            .unwrap_or_default()
    }

    /// One `write.lua` call: the put at `sid`, returning the session under `id`.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        call: &mut Call<C>,
        id: SessionId,
        data: Arc<SessionData>,
        body: &[u8],
        mode: PutMode,
        options: WriteOptions,
        indexed: &str,
        speculation: Option<&Speculation>,
    ) -> Result<Written> {
        let sid = &self.shared.keys.storage_id(&id);
        let now = self.now();
        let config = &self.shared.session;
        let keys = &self.shared.keys;
        let mut invocation = scripts().write.key(keys.session_key(sid));
        invocation.key(keys.expiry_index_of(sid));
        let user_hex = self.user_hex_of(&data);
        // One index for everything: the script writes the user index entry itself.
        if !keys.per_slot() && !user_hex.is_empty() {
            invocation.key(keys.user_index(&user_hex));
        }
        // The metadata of a session written where no live one is (or the given lifetime): the
        // script uses it as it is, except over a live session without a given lifetime.
        let fresh = options.lifetime_at(now, None, config.idle_timeout, config.absolute_lifetime);
        let expected = match mode {
            PutMode::IfVersion(v) => codec::version_hex(v),
            _ => String::new(),
        };
        invocation
            .arg(mode_name(mode)?)
            .arg(now.0)
            .arg(sid.as_str())
            .arg("")
            .arg(codec::tail(body))
            .arg(&user_hex)
            .arg(options.idle_timeout.map_or(0, ms))
            .arg(fresh.created_at.0)
            .arg(ms(fresh.idle_timeout))
            .arg(fresh.idle_expires_at.0)
            .arg(fresh.absolute_expires_at.map_or(0, |a| a.0))
            .arg(codec::fresh_writes())
            .arg(if options.lifetime.is_some() { "1" } else { "0" })
            .arg(expected)
            .arg(indexed);
        if let Some(speculation) = speculation {
            invocation.arg(&speculation.added);
        }
        let reply = call.invoke(&invocation).await?;
        match reply.status()? {
            Status::Ok => {
                let absolute = reply.uint(4)?;
                let idle_expires_at = Timestamp(reply.uint(3)?);
                let meta = Meta {
                    created_at: Timestamp(reply.uint(1)?),
                    idle_timeout: Duration::from_millis(reply.uint(2)?),
                    absolute_expires_at: (absolute > 0).then_some(Timestamp(absolute)),
                    writes: reply.uint(5)?,
                    user_hex,
                };
                let version = codec::version_of_encoded(&meta, body);
                Ok(Written::Stored(Session::from_parts(
                    id,
                    data,
                    meta.lifetime(idle_expires_at),
                    version,
                )))
            }
            Status::Taken => Ok(Written::Taken),
            Status::Gone => Ok(Written::Gone),
            Status::Stale => Ok(Written::Stale),
            Status::Unindexed => Ok(Written::Unindexed),
            Status::Corrupt => Err(self.corrupt(sid, "not a session; left unchanged", None)),
            _ => Err(unexpected(call.backend(), "unexpected write status")),
        }
    }

    /// Adds `sid` to the index of the user tagged `user_hex`, scored with an expiry still ahead
    /// (cleanup prunes only entries whose score has passed, so this one survives until the
    /// write it prepares has happened). User indexes have no TTL: `PERSIST` clears one that
    /// an older layout gave it.
    pub(super) async fn index_user(
        &self,
        call: &mut Call<C>,
        user_hex: &str,
        sid: &StorageId,
        score: Timestamp,
    ) -> Result<()> {
        let key = self.shared.keys.user_index(user_hex);
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(&key)
            .arg(score.0)
            .arg(sid.as_str())
            .ignore()
            .cmd("PERSIST")
            .arg(&key)
            .ignore();
        call.pipe::<()>(&pipe).await
    }

    pub(crate) async fn put_in(
        &self,
        call: &mut Call<C>,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session> {
        let sid = self.shared.keys.storage_id(id);
        let body = encode_data(&data, self.shared.session.max_session_bytes)?;
        if options.lifetime.is_some_and(|l| !l.is_live(self.now())) {
            return Err(Error::NotFound);
        }
        // A new session naming a user needs its user index entry first: write it up front
        // rather than hear so from the script. Otherwise the script says when.
        let mut indexed = String::new();
        let mut speculation = None;
        if mode == PutMode::Create {
            let user_hex = self.user_hex_of(&data);
            if self.shared.keys.per_slot() && !user_hex.is_empty() {
                let score = self.index_score(&options);
                self.index_user(call, &user_hex, &sid, score).await?;
                indexed.clone_from(&user_hex);
            }
            // A copy (given lifetime) goes through the script: see `native`.
            if options.lifetime.is_none() {
                match self
                    .create_natively(call, id, &sid, &data, &body, &user_hex, &options)
                    .await?
                {
                    Created::Stored(session) => return Ok(session),
                    Created::Taken(taken) => speculation = taken,
                }
            }
        }
        loop {
            let written = self
                .write(
                    call,
                    id.clone(),
                    data.clone(),
                    &body,
                    mode,
                    options,
                    &indexed,
                    speculation.take().as_ref(),
                )
                .await?;
            return match written {
                Written::Stored(session) => Ok(session),
                Written::Taken => Err(Error::AlreadyExists),
                Written::Gone => Err(Error::NotFound),
                Written::Stale => Err(Error::Conflict),
                Written::Unindexed if indexed.is_empty() => {
                    let user_hex = self.user_hex_of(&data);
                    let score = self.index_score(&options);
                    self.index_user(call, &user_hex, &sid, score).await?;
                    indexed = user_hex;
                    continue;
                }
                Written::Unindexed => Err(unexpected(call.backend(), "user index entry refused")),
            };
        }
    }

    /// The score a user index entry is written with ahead of a write: the latest expiry that
    /// write can give (never in the past, so cleanup leaves the entry alone).
    fn index_score(&self, options: &WriteOptions) -> Timestamp {
        let config = &self.shared.session;
        let now = self.now();
        let fresh = options.lifetime_at(now, None, config.idle_timeout, config.absolute_lifetime);
        let idle = options.idle_timeout.unwrap_or(config.idle_timeout);
        fresh
            .expires_at()
            .max(now.saturating_add(idle))
            .max(now.saturating_add(Duration::from_millis(1000)))
    }

    pub(crate) async fn delete_in(&self, call: &mut Call<C>, id: &SessionId) -> Result<bool> {
        let keys = &self.shared.keys;
        let sid = keys.storage_id(id);
        let mut invocation = scripts().delete.key(keys.session_key(&sid));
        invocation
            .key(keys.expiry_index_of(&sid))
            .arg(self.now().0)
            .arg(sid.as_str());
        Ok(call.invoke_as::<i64>(&invocation).await? == 1)
    }

    pub(crate) async fn refresh_in(&self, call: &mut Call<C>, id: &SessionId) -> Result<bool> {
        let keys = &self.shared.keys;
        let sid = keys.storage_id(id);
        let mut invocation = scripts().refresh.key(keys.session_key(&sid));
        invocation
            .key(keys.expiry_index_of(&sid))
            .arg(self.now().0)
            .arg(sid.as_str())
            .arg(self.default_idle_ms());
        match call.invoke(&invocation).await?.status()? {
            Status::Ok => Ok(true),
            Status::Gone => Ok(false),
            Status::Corrupt => Err(self.corrupt(&sid, "not a session; left unchanged", None)),
            _ => Err(unexpected(call.backend(), "unexpected refresh status")),
        }
    }

    pub(crate) async fn rotate_in(
        &self,
        call: &mut Call<C>,
        id: &SessionId,
    ) -> Result<Option<Session>> {
        let keys = &self.shared.keys;
        let sid = keys.storage_id(id);
        let (mut adoptions, mut collisions, mut reindexed) = (0, 0, 0);
        let mut new_id = keys.fresh_id_near(&sid);
        let mut indexed = String::new();
        loop {
            let new_sid = keys.storage_id(&new_id);
            let mut invocation = scripts().rotate.key(keys.session_key(&sid));
            invocation
                .key(keys.session_key(&new_sid))
                .key(keys.expiry_index_of(&sid))
                .arg(self.now().0)
                .arg(sid.as_str())
                .arg(new_sid.as_str())
                .arg(&indexed);
            let mut reply = call.invoke(&invocation).await?;
            match reply.status()? {
                Status::Ok => {
                    let idle_expires_at = Timestamp(reply.uint(2)?);
                    let bytes = reply.take_bytes(1)?;
                    let version = codec::version_of(&bytes);
                    return match codec::decode(&bytes) {
                        Ok(Stored::Ours { meta, data }) => Ok(Some(Session::from_parts(
                            new_id,
                            Arc::new(data),
                            meta.lifetime(idle_expires_at),
                            version,
                        ))),
                        // The script found valid metadata, so only the data part can be bad.
                        _ => {
                            Err(self.corrupt(&new_sid, "rotated record has unreadable data", None))
                        }
                    };
                }
                Status::Gone => return Ok(None),
                Status::Corrupt => {
                    return Err(self.corrupt(&sid, "not a session; left unchanged", None))
                }
                // The session names a user whose index lacks the new id (again, if its user
                // changed meanwhile): index it there and try again.
                Status::Unindexed if reindexed < ADOPT_ATTEMPTS => {
                    reindexed += 1;
                    let user_hex = reply.text(1)?;
                    let score = self.index_score(&WriteOptions::new());
                    self.index_user(call, &user_hex, &new_sid, score).await?;
                    indexed = user_hex;
                }
                Status::Taken if collisions < ROTATE_ATTEMPTS => {
                    collisions += 1;
                    new_id = keys.fresh_id_near(&sid);
                    indexed.clear();
                }
                Status::Foreign if adoptions < ADOPT_ATTEMPTS => {
                    adoptions += 1;
                    if !self.adopt(call, id).await? {
                        return Ok(None);
                    }
                }
                Status::Taken | Status::Foreign | Status::Unindexed => return Err(Error::Conflict),
                _ => return Err(unexpected(call.backend(), "unexpected rotate status")),
            }
        }
    }

    /// Gives a foreign value (written without metadata), or one of ours from before layout v2,
    /// current metadata and index entries by saving it unchanged, with the lifetime it has
    /// (adoption extends nothing: the key keeps its remaining TTL), so scripts that edit
    /// metadata in place can work on it. Returns `false` if it is gone.
    pub(super) async fn adopt(&self, call: &mut Call<C>, id: &SessionId) -> Result<bool> {
        let now = self.now();
        let sid = self.shared.keys.storage_id(id);
        let key = self.shared.keys.session_key(&sid);
        let Loaded::Live {
            data,
            bytes,
            lifetime,
        } = self.fetch(call, &sid, &key, now).await?
        else {
            return Ok(false);
        };
        let version = codec::version_of(&bytes);
        match self
            .put_in(
                call,
                id,
                Arc::new(data),
                PutMode::IfVersion(version),
                WriteOptions::new().with_lifetime(lifetime),
            )
            .await
        {
            // A conflict means someone wrote it meanwhile: the caller's retry looks again.
            Ok(_) | Err(Error::Conflict) => Ok(true),
            Err(Error::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// "Log out everywhere": every session in the user's index that names the user, one
    /// script per slot (on one server, per index: one script for all, so atomic there).
    pub(crate) async fn delete_user_in(&self, call: &mut Call<C>, user: &str) -> Result<u64> {
        let u = user_hex(user);
        let now = self.now();
        // One script per slot holding the user's sessions, all at once.
        let deletes: Vec<_> = self
            .user_entries(call, &u, None)
            .await?
            .into_iter()
            .map(|(index, group)| {
                let mut one = call.on(self.conn.clone());
                let mut invocation = scripts().delete_user.key(index);
                for sid in &group {
                    invocation.key(self.shared.keys.session_key(sid));
                }
                invocation.arg(now.0).arg(&u);
                for sid in &group {
                    invocation.arg(sid.as_str());
                }
                Box::pin(async move { one.invoke_as::<u64>(&invocation).await })
            })
            .collect();
        Ok(futures::future::try_join_all(deletes)
            .await?
            .into_iter()
            .sum())
    }
}
