//! [`RedisStore::import_bulk`]: a page of prepared sessions written in one round trip.
//!
//! On Redis 6.2 and newer (`ZADD GT`) the page is one `MULTI`/`EXEC`: a plain `SET … PX … NX`
//! per session, one `ZADD GT` on the expiry index and one `EVAL` of `index_users.lua` for
//! the user indexes. Older servers get the page through `import_batch.lua`. The session
//! values never pass through Lua on the first path, and that is what it saves: Redis's Lua
//! hashes every byte of every string it creates. Server instructions per session, by
//! callgrind over a `sessionctl migrate` of ~19,000 sessions in pages of 1,000:
//! 43k this way, 61k through `import_batch.lua` (a bare pipelined `SETEX` of the same values:
//! 11k). All plain commands (a `ZADD` and two `PEXPIRE`s per user) cost the server 39k, but the
//! client more, in one `QUEUED` reply per command.
//!
//! Both ways write each session only if its key does not exist, so nothing live is ever
//! overwritten and a re-run skips what an earlier run copied. They differ only where a key
//! was already there:
//! - the script indexes exactly the sessions it wrote;
//! - the transaction cannot make an index write depend on its `SET`, so it adds every
//!   session's entries with `ZADD GT`: an entry is created or moved later, never earlier. A
//!   session that someone else wrote meanwhile keeps entries at least as late as its own
//!   expiry (its next write or `cleanup` puts them right, and `list_user` / `delete_user`
//!   already check the user a session names); a stale entry left by an expired copy of the
//!   same session is raised to the new copy's expiry instead of hiding it from `count()`.

use std::collections::HashMap;
use std::sync::OnceLock;

use redis::aio::ConnectionLike;
use redis::{ScriptInvocation, Value};
use session_core::{ImportOutcome, Result};

use super::{BulkSession, RedisStore};
use crate::reply::unexpected;
use crate::scripts::{scripts, Status};

/// The user index entries of a page, run inside its transaction (see the script's header).
const INDEX_USERS: &str = include_str!("../lua/index_users.lua");

/// One user's part of a page, users kept in first-seen order.
struct UserEntries<'a> {
    user_hex: &'a str,
    /// The longest key TTL among its sessions: its index must live that long.
    longest_ttl: u64,
    /// (expiry score, storage id)
    members: Vec<(u64, &'a str)>,
}

/// Which way [`RedisStore::import_bulk`] writes, decided once per store from `INFO server`.
#[derive(Debug, Default)]
pub(crate) struct ImportPath(OnceLock<bool>);

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Writes a batch in one round trip: each session only if its key does not exist, with
    /// a TTL to its expiry and its index entries (see the module
    /// docs for what happens to the entries of a key that was already there). Returns one
    /// outcome per session, in order: `Imported`, `AlreadyPresent` (the key exists, live or
    /// not; left as it was) or `Expired` (by this store's clock; nothing written).
    ///
    /// Keep batches to about a thousand sessions: the server runs one transaction at a time.
    pub async fn import_bulk(&self, batch: &[BulkSession]) -> Result<Vec<ImportOutcome>> {
        let now = self.now();
        let live: Vec<&BulkSession> = batch.iter().filter(|s| s.expires_at > now).collect();
        let mut outcomes = vec![ImportOutcome::Expired; batch.len()];
        if live.is_empty() {
            return Ok(outcomes);
        }
        let mut call = self.call("import_bulk", None);
        // The script keeps one expiry index: a per-slot layout (Redis Cluster, 7.0 and newer)
        // always takes the transaction.
        let native = match self.shared.import_path.0.get() {
            _ if self.shared.keys.per_slot() => true,
            Some(native) => *native,
            // INFO may be renamed away or denied by an ACL: then the script, which every
            // version runs, and the question is asked again next time.
            None => match call.query::<String>(redis::cmd("INFO").arg("server")).await {
                Ok(info) => *self
                    .shared
                    .import_path
                    .0
                    .get_or_init(|| version(&info) >= (6, 2)),
                Err(_) => false,
            },
        };
        let ttl = |s: &BulkSession| (s.expires_at.0 - now.0).max(crate::liveness::MIN_KEY_TTL_MS);
        let written = if self.clustered() {
            self.import_clustered(&mut call, &live, ttl).await?
        } else if native {
            let replies: Vec<Value> = call.pipe(&self.import_transaction(&live, ttl)).await?;
            replies
                .into_iter()
                .map(|reply| match reply {
                    Value::Okay => Some(true),
                    Value::SimpleString(s) if s == "OK" => Some(true),
                    Value::Nil => Some(false),
                    _ => None,
                })
                .collect::<Option<Vec<bool>>>()
                .ok_or_else(|| unexpected(call.backend(), "malformed SET NX reply"))?
        } else {
            let codes: Vec<i64> = call.invoke_as(&self.import_script(&live, ttl)).await?;
            codes
                .into_iter()
                .map(|code| match Status::from_code(code) {
                    Some(Status::Ok) => Some(true),
                    Some(Status::Taken) => Some(false),
                    _ => None,
                })
                .collect::<Option<Vec<bool>>>()
                .ok_or_else(|| unexpected(call.backend(), "unknown import_batch status"))?
        };
        if written.len() != live.len() {
            return Err(unexpected(
                call.backend(),
                "bulk import answered a wrong count",
            ));
        }
        let mut written = written.into_iter();
        for (session, outcome) in batch.iter().zip(&mut outcomes) {
            if session.expires_at <= now {
                continue;
            }
            *outcome = if written.next() == Some(true) {
                ImportOutcome::Imported
            } else {
                ImportOutcome::AlreadyPresent
            };
        }
        Ok(outcomes)
    }

    /// The page as one call of `import_batch.lua` (servers before 6.2).
    fn import_script(
        &self,
        live: &[&BulkSession],
        ttl: impl Fn(&BulkSession) -> u64,
    ) -> ScriptInvocation<'static> {
        let mut invocation = scripts().import_batch.key(self.shared.keys.expiry_index());
        invocation.arg(self.shared.keys.prefix());
        for session in live {
            invocation
                .arg(session.sid.as_str())
                .arg(&session.value)
                .arg(session.expires_at.0)
                .arg(ttl(session))
                .arg(&session.user_hex);
        }
        invocation
    }

    /// The page as one transaction: the `SET … NX`s (the only replies kept), one `ZADD GT`
    /// on the expiry index, and one `EVAL` of `index_users.lua` for the user indexes (a
    /// `ZADD GT` per user and its TTL raised to its longest-lived member). Three plain
    /// commands per user cost the client more in `QUEUED` replies than the script costs
    /// the server.
    fn import_transaction(
        &self,
        live: &[&BulkSession],
        ttl: impl Fn(&BulkSession) -> u64,
    ) -> redis::Pipeline {
        let keys = &self.shared.keys;
        let mut pipe = redis::pipe();
        pipe.atomic();
        // One `ZADD GT` per expiry index (one on a single server, one per slot per slot).
        let mut expiry: std::collections::BTreeMap<String, redis::Cmd> = Default::default();
        let mut users: Vec<UserEntries<'_>> = Vec::new();
        let mut user_at: HashMap<&str, usize> = HashMap::new();
        for session in live {
            let ttl = ttl(session);
            pipe.cmd("SET")
                .arg(keys.session_key(&session.sid))
                .arg(&session.value)
                .arg("PX")
                .arg(ttl)
                .arg("NX");
            let (score, member) = (session.expires_at.0, session.sid.as_str());
            expiry
                .entry(keys.expiry_index_of(&session.sid))
                .or_insert_with_key(|index| {
                    let mut zadd = redis::cmd("ZADD");
                    zadd.arg(index).arg("GT");
                    zadd
                })
                .arg(score)
                .arg(member);
            if session.user_hex.is_empty() {
                continue;
            }
            let at = *user_at.entry(&session.user_hex).or_insert_with(|| {
                users.push(UserEntries {
                    user_hex: &session.user_hex,
                    longest_ttl: 0,
                    members: Vec::new(),
                });
                users.len() - 1
            });
            let user = &mut users[at];
            user.longest_ttl = user.longest_ttl.max(ttl);
            user.members.push((score, member));
        }
        for zadd in expiry.into_values() {
            pipe.add_command(zadd).ignore();
        }
        if !users.is_empty() {
            let mut index = redis::cmd("EVAL");
            index.arg(INDEX_USERS).arg(users.len());
            for user in &users {
                index.arg(keys.user_index(user.user_hex));
            }
            for user in &users {
                index.arg(user.longest_ttl).arg(user.members.len());
                for (score, member) in &user.members {
                    index.arg(*score).arg(*member);
                }
            }
            pipe.add_command(index).ignore();
        }
        pipe
    }

    /// The page on Redis Cluster, where one transaction holds keys of one slot: the user
    /// index entries first (each user's a `ZADD GT` + `PERSIST`, so no session names a user
    /// whose index lacks it), then one transaction per slot, all at once. Returns whether each
    /// session was written.
    async fn import_clustered(
        &self,
        call: &mut super::Call<C>,
        live: &[&BulkSession],
        ttl: impl Fn(&BulkSession) -> u64,
    ) -> Result<Vec<bool>> {
        use futures::StreamExt as _;
        /// Transactions (one per slot) in flight at once.
        const AT_ONCE: usize = 64;
        let keys = &self.shared.keys;
        let mut users: std::collections::BTreeMap<&str, Vec<&BulkSession>> = Default::default();
        let mut slots: std::collections::BTreeMap<u16, Vec<usize>> = Default::default();
        for (at, session) in live.iter().enumerate() {
            if !session.user_hex.is_empty() {
                users.entry(&session.user_hex).or_default().push(session);
            }
            slots
                .entry(keys.shard_of(&session.sid))
                .or_default()
                .push(at);
        }
        let entries: Vec<_> = users
            .into_iter()
            .map(|(user_hex, sessions)| {
                let mut one = call.on(self.conn.clone());
                let key = keys.user_index(user_hex);
                let mut pipe = redis::pipe();
                pipe.cmd("ZADD").arg(&key).arg("GT");
                for session in sessions {
                    pipe.arg(session.expires_at.0).arg(session.sid.as_str());
                }
                pipe.ignore().cmd("PERSIST").arg(&key).ignore();
                Box::pin(async move { one.pipe::<()>(&pipe).await })
            })
            .collect();
        let mut entries = futures::stream::iter(entries).buffer_unordered(AT_ONCE);
        while let Some(done) = entries.next().await {
            done?;
        }
        drop(entries);

        let writes: Vec<_> = slots
            .into_values()
            .map(|members| {
                let mut one = call.on(self.conn.clone());
                let mut pipe = redis::pipe();
                pipe.atomic();
                let mut zadd = redis::cmd("ZADD");
                zadd.arg(keys.expiry_index_of(&live[members[0]].sid))
                    .arg("GT");
                for &at in &members {
                    let session = live[at];
                    pipe.cmd("SET")
                        .arg(keys.session_key(&session.sid))
                        .arg(&session.value)
                        .arg("PX")
                        .arg(ttl(session))
                        .arg("NX");
                    zadd.arg(session.expires_at.0).arg(session.sid.as_str());
                }
                pipe.add_command(zadd).ignore();
                Box::pin(async move {
                    let replies: Vec<Value> = one.pipe(&pipe).await?;
                    Ok::<_, session_core::Error>((members, replies))
                })
            })
            .collect();
        let mut written = vec![false; live.len()];
        let mut writes = futures::stream::iter(writes).buffer_unordered(AT_ONCE);
        while let Some(done) = writes.next().await {
            let (members, replies) = done?;
            if replies.len() != members.len() {
                return Err(unexpected(call.backend(), "malformed SET NX reply"));
            }
            for (at, reply) in members.into_iter().zip(replies) {
                written[at] = match reply {
                    Value::Okay => true,
                    Value::SimpleString(s) if s == "OK" => true,
                    Value::Nil => false,
                    _ => return Err(unexpected(call.backend(), "malformed SET NX reply")),
                };
            }
        }
        Ok(written)
    }

    /// Makes [`RedisStore::import_bulk`] use `import_batch.lua` whatever the server's
    /// version, as it does on Redis older than 6.2 (for tests of that path). Affects every
    /// clone of this store; call it before the first import (the choice is made once).
    #[doc(hidden)]
    pub fn force_scripted_bulk_import(&self) {
        let _ = self.shared.import_path.0.set(false);
    }
}

/// The (major, minor) version in an `INFO server` reply ((0, 0) when it cannot be read: the
/// script then does the work, which every version runs).
fn version(info: &str) -> (u32, u32) {
    let Some(v) = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
    else {
        return (0, 0);
    };
    let mut parts = v.trim().split('.').map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor),
        _ => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::version;

    #[test]
    fn reads_the_version_from_info() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:0\r\n";
        assert_eq!(version(info), (7, 0));
        assert!(version("redis_version:6.2.14\r\n") >= (6, 2));
        assert!(version("redis_version:6.0.20\r\n") < (6, 2));
        assert_eq!(version("redis_version:garbage\r\n"), (0, 0));
        assert_eq!(version(""), (0, 0));
    }
}
