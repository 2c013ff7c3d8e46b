//! Manual time for stores whose liveness Redis decides: [`TimeShifted`] moves every TTL in a
//! test's key space back whenever the test's clock jumps forward.
//!
//! The conformance suite drives stores with a [`ManualClock`](session_core::ManualClock): it
//! advances the clock by minutes, or to 1 ms before an expiry and then by that last
//! millisecond, and expects the store to see exactly that. A store whose sessions live while
//! their Redis key exists (Redis's TTL, Redis's clock) cannot follow such a clock, and Redis's
//! clock cannot be mocked (libfaketime does not work with Debian's `redis-server`). So the
//! harness moves Redis instead: before each operation, if the store's clock has moved by `dv`
//! since the last one, every expiry under the test's prefix moves `dv` closer, as if Redis's
//! clock had jumped with the test's.
//!
//! The layout this knows (see `session-redis`'s `keys` module):
//!
//! - session keys `{prefix}{storage id}` (no `~` after the prefix), whose expiry the store
//!   also records as the score of `{storage id}` in the zset `{prefix}~exp`, in the store's
//!   own clock;
//! - user indexes `{prefix}~user:{hex}`, zsets scored by their members' expiries, with a TTL
//!   that covers their longest-lived member;
//! - anything else under the prefix (`{prefix}~exp` itself, usually without a TTL).
//!
//! Rules, with `now` the store's clock and `r = score - now` a key's virtual time left:
//!
//! - **Exact from the score.** A session key with a score gets the TTL `r`, not its previous
//!   TTL minus `dv`: a TTL also counts down in real time, and that drift would add up over a
//!   test, so a `load` (which reports the expiry the TTL shows when the two disagree) would
//!   drift from the expiry the test expects, and a key could die in real time while the test's
//!   clock says it is live. A TTL the store set beyond the score (a grace period) is kept as
//!   long as it is longer than `r`.
//! - **Pinned near the end.** A session with `0 < r <` [`PIN_MS`] is left without a TTL
//!   (`PERSIST`): with 1 ms of virtual life left it would otherwise die in real time before the
//!   test's next operation. A store reading a key without a TTL takes the score as its expiry
//!   and decides by its own clock, exactly. The next jump un-pins it (a TTL again) or, once
//!   `r <= 0`, deletes it.
//! - **Dead at the score.** With `r <= 0` the key is deleted (unless the store's grace, kept as
//!   above, still has time left: then it keeps that).
//! - **Everything else shifts.** Session keys without a score (another writer's) and other
//!   keys with a TTL get `PTTL - dv`, deleted when that is `<= 0`; keys without a TTL that the
//!   harness did not pin are left alone. User indexes shift the same way, but never below
//!   their latest member's `r`, and are pinned like sessions while that member is in its last
//!   [`PIN_MS`], so `list_user` keeps seeing a session the test's clock says is live.
//! - **Pinned after short writes.** A write can itself leave a key with less than [`PIN_MS`]:
//!   a session copied or imported with 1 ms of its lifetime left, a refresh just before an
//!   absolute expiry. After `put`, `rotate` and `refresh`, [`TimeShifted`] pins the session's
//!   key (and, for `put` and `rotate`, its user index) if their TTL came out that short, in one
//!   script call. This is a race it usually wins, not a guarantee: a key written with a 1 ms
//!   TTL can be gone before the call reaches Redis (about 1 in 40 runs of the migration
//!   suite's `load_expired_is_none` on an idle machine).
//!
//! Each pass is one `SCAN` of the prefix; per page, one pipeline reads `PTTL` and scores and
//! one pipeline applies the changes. Passes are serialized and hold a lock that every
//! operation through [`TimeShifted`] waits for, so no wrapped operation runs during a pass.
//! (An operation already running when the clock jumps may race with the pass; the suite does
//! not advance its clock while operations are in flight.)

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::Value;
use session_core::{
    user_of, Capabilities, CleanupReport, Clock, PutMode, Result, ScanCursor, ScanPage, Session,
    SessionConfig, SessionData, SessionId, SessionStore, SessionSummary, Timestamp, WriteOptions,
};

/// A session (or user index) with less virtual time than this left is pinned: left without a
/// TTL, so real time cannot end it before the test's clock does.
pub const PIN_MS: i64 = 2_000;

/// `SCAN COUNT` of a pass.
const SCAN_COUNT: u64 = 1_000;

/// KEYS: keys a write just set. ARGV: [`PIN_MS`]. `PERSIST`s each key whose TTL is under
/// `PIN_MS` (`PTTL` 0 included: the key lives until its millisecond is over); returns, per key,
/// the TTL it had if it did, else -1. One round trip: a key written with 1 ms to live has
/// little time.
const PIN_SHORT: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local ttl = redis.call('PTTL', key)
  if ttl >= 0 and ttl < tonumber(ARGV[1]) then
    redis.call('PERSIST', key)
    out[i] = ttl
  else
    out[i] = -1
  end
end
return out
";

/// A [`SessionStore`] whose Redis expiries follow the store's (manual) clock: before every
/// operation it calls [`TimeShift::sync`], then delegates to the wrapped store.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn session_core::SessionStore>) {
/// use std::sync::Arc;
/// use redis_harness::{timeshift::TimeShifted, RedisServer};
/// use session_core::ManualClock;
///
/// let server = RedisServer::start();
/// let clock = ManualClock::starting_now();
/// // `store` uses `clock` and the key prefix "ct:1:" on `server`.
/// let shifted = TimeShifted::new(
///     store,
///     server.async_connection().await,
///     "ct:1:",
///     Arc::new(clock.clone()),
/// );
/// # }
/// ```
pub struct TimeShifted {
    inner: Arc<dyn SessionStore>,
    shift: TimeShift,
    /// The store's `SessionConfig::user_keys`: which user index a written session is in.
    user_keys: Vec<String>,
}

impl TimeShifted {
    /// Wraps `inner`, which keeps its keys under `prefix` on the server `con` talks to (the
    /// master, for a replicated topology) and reads time from `clock`. The clock's time now is
    /// the starting point: only later jumps move expiries.
    pub fn new(
        inner: Arc<dyn SessionStore>,
        con: MultiplexedConnection,
        prefix: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        TimeShifted {
            inner,
            shift: TimeShift::new(con, prefix, clock),
            user_keys: SessionConfig::default().user_keys,
        }
    }

    /// [`TimeShifted::new`] with a connection to `redis_url` (e.g.
    /// [`RedisServer::url`](crate::RedisServer::url), or the master's address in a topology).
    ///
    /// # Panics
    /// If it cannot connect.
    pub async fn connect(
        inner: Arc<dyn SessionStore>,
        redis_url: &str,
        prefix: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        TimeShifted {
            inner,
            shift: TimeShift::connect(redis_url, prefix, clock).await,
            user_keys: SessionConfig::default().user_keys,
        }
    }

    /// The store's [`SessionConfig::user_keys`] (by default the default's), to find the user
    /// index a write near its session's end touched.
    pub fn with_user_keys(mut self, user_keys: Vec<String>) -> Self {
        self.user_keys = user_keys;
        self
    }

    /// The wrapped store (operations on it do not shift time).
    pub fn inner(&self) -> &Arc<dyn SessionStore> {
        &self.inner
    }

    /// The shifter every operation syncs through.
    pub fn shift(&self) -> &TimeShift {
        &self.shift
    }

    /// The key of `id` in either key mode (token or handle): the wrapper does not know which
    /// the store uses, and the other name is simply absent.
    fn session_keys(&self, id: &SessionId) -> Vec<String> {
        let prefix = &self.shift.prefix;
        vec![
            format!("{prefix}{}", id.expose_token()),
            format!("{prefix}{}", id.handle().as_str()),
        ]
    }

    /// After a write that left `written` with less than [`PIN_MS`] to live (a given lifetime
    /// nearly over, an absolute expiry close): pins its key and its user index if their TTLs
    /// came out that short, as a pass would have. There is a race: Redis may end a key with
    /// 1 ms to live before this reaches it; it only makes such writes usually survive.
    async fn pin_written(&self, written: &Session) {
        let now = ms(self.shift.clock.now().0);
        let left = ms(written.lifetime().expires_at().0) - now;
        if left <= 0 || left >= PIN_MS {
            return;
        }
        let mut keys = self.session_keys(written.id());
        if let Some(user) = user_of(written.data(), &self.user_keys) {
            let hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
            keys.push(format!("{}~user:{hex}", self.shift.prefix));
        }
        self.shift.pin_short(&keys, Some(left)).await;
    }
}

impl fmt::Debug for TimeShifted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeShifted")
            .field("inner", &self.inner)
            .field("prefix", &self.shift.prefix)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SessionStore for TimeShifted {
    // `capabilities` and `backend` are not async and touch no expiry: delegated as they are.
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        self.shift.sync().await;
        self.inner.load(id).await
    }

    async fn put(
        &self,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session> {
        self.shift.sync().await;
        let written = self.inner.put(id, data, mode, options).await?;
        self.pin_written(&written).await;
        Ok(written)
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        self.shift.sync().await;
        self.inner.delete(id).await
    }

    async fn exists(&self, id: &SessionId) -> Result<bool> {
        self.shift.sync().await;
        self.inner.exists(id).await
    }

    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        self.shift.sync().await;
        let live = self.inner.refresh(id).await?;
        if live {
            // The new expiry is not returned: pin the key if its TTL came out short.
            let keys = self.session_keys(id);
            self.shift.pin_short(&keys, None).await;
        }
        Ok(live)
    }

    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>> {
        self.shift.sync().await;
        let rotated = self.inner.rotate(id).await?;
        if let Some(written) = &rotated {
            self.pin_written(written).await;
        }
        Ok(rotated)
    }

    async fn count(&self) -> Result<u64> {
        self.shift.sync().await;
        self.inner.count().await
    }

    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>> {
        self.shift.sync().await;
        self.inner.list_user(user).await
    }

    async fn delete_user(&self, user: &str) -> Result<u64> {
        self.shift.sync().await;
        self.inner.delete_user(user).await
    }

    async fn cleanup(&self) -> Result<CleanupReport> {
        self.shift.sync().await;
        self.inner.cleanup().await
    }

    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        self.shift.sync().await;
        self.inner.scan(cursor, limit).await
    }
}

/// Moves the expiries under one key prefix along with a clock (see the [module](self) docs).
pub struct TimeShift {
    con: MultiplexedConnection,
    prefix: String,
    expiry_index: String,
    clock: Arc<dyn Clock>,
    pin_short: redis::Script,
    state: tokio::sync::Mutex<ShiftState>,
}

#[derive(Debug)]
struct ShiftState {
    /// The clock's time at the last pass: expiries are already shifted up to here.
    last: Timestamp,
    /// Keys this harness pinned (`PERSIST`), with how long past its score the key's TTL ran
    /// when it was pinned (the store's grace, `0` if none), so the key gets that back later.
    pinned: HashMap<Vec<u8>, i64>,
}

impl TimeShift {
    /// Shifts the keys under `prefix` on the server `con` talks to, following `clock` from its
    /// time now.
    pub fn new(
        con: MultiplexedConnection,
        prefix: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let prefix = prefix.into();
        let last = clock.now();
        TimeShift {
            con,
            expiry_index: format!("{prefix}~exp"),
            prefix,
            clock,
            pin_short: redis::Script::new(PIN_SHORT),
            state: tokio::sync::Mutex::new(ShiftState {
                last,
                pinned: HashMap::new(),
            }),
        }
    }

    /// [`TimeShift::new`] with a connection to `redis_url`.
    ///
    /// # Panics
    /// If it cannot connect.
    pub async fn connect(
        redis_url: &str,
        prefix: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let con = redis::Client::open(redis_url)
            .unwrap_or_else(|e| panic!("timeshift: bad redis URL {redis_url}: {e}"))
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("timeshift: cannot connect to {redis_url}: {e}"));
        Self::new(con, prefix, clock)
    }

    /// The prefix whose keys this shifts.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// If the clock moved forward since the last pass, moves every expiry under the prefix
    /// back by as much (see the [module](self) docs). Passes are serialized; a call while the
    /// clock has not moved returns at once (after any pass in progress).
    ///
    /// # Panics
    /// If Redis fails (a test-only helper: the test should stop there).
    pub async fn sync(&self) {
        let mut state = self.state.lock().await;
        let now = self.clock.now();
        if now <= state.last {
            return;
        }
        let dv = ms(now.0 - state.last.0);
        state.last = now;
        if let Err(e) = self.pass(&mut state, ms(now.0), dv).await {
            panic!(
                "timeshift: moving the expiries under {:?} by {dv} ms failed: {e}",
                self.prefix
            );
        }
    }

    /// Pins those of `keys` (just written) whose TTL is under [`PIN_MS`]; `left` is the
    /// written session's virtual time left, if known, to remember a grace the TTL had past it.
    ///
    /// # Panics
    /// If Redis fails.
    async fn pin_short(&self, keys: &[String], left: Option<i64>) {
        let mut state = self.state.lock().await;
        let mut invocation = self.pin_short.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        invocation.arg(PIN_MS);
        let ttls: Vec<i64> = invocation
            .invoke_async(&mut self.con.clone())
            .await
            .unwrap_or_else(|e| panic!("timeshift: pinning {keys:?} failed: {e}"));
        for (key, ttl) in keys.iter().zip(ttls) {
            if ttl >= 0 {
                let grace = left.map_or(0, |left| (ttl - left).max(0));
                state.pinned.insert(key.as_bytes().to_vec(), grace);
            }
        }
    }

    async fn pass(&self, state: &mut ShiftState, now: i64, dv: i64) -> redis::RedisResult<()> {
        let mut con = self.con.clone();
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut cursor = 0u64;
        loop {
            let (next, found): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut con)
                .await?;
            // SCAN may return a key twice; shifting it twice would move it by 2 dv.
            let page: Vec<Vec<u8>> = found
                .into_iter()
                .filter(|k| seen.insert(k.clone()))
                .collect();
            self.shift_page(&mut con, state, &page, now, dv).await?;
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// One pipeline reading every key's `PTTL` and score, one applying the changes.
    async fn shift_page(
        &self,
        con: &mut MultiplexedConnection,
        state: &mut ShiftState,
        keys: &[Vec<u8>],
        now: i64,
        dv: i64,
    ) -> redis::RedisResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let kinds: Vec<Kind> = keys.iter().map(|k| self.kind(k)).collect();
        let mut read = redis::pipe();
        for (key, kind) in keys.iter().zip(&kinds) {
            read.cmd("PTTL").arg(key);
            match kind {
                Kind::Session => {
                    read.cmd("ZSCORE")
                        .arg(&self.expiry_index)
                        .arg(&key[self.prefix.len()..]);
                }
                // The highest-scored member: the index's latest expiry.
                Kind::UserIndex => {
                    read.cmd("ZRANGE")
                        .arg(key)
                        .arg(-1)
                        .arg(-1)
                        .arg("WITHSCORES");
                }
                Kind::Other => {}
            }
        }
        let replies: Vec<Value> = read.query_async(con).await?;
        let mut replies = replies.into_iter();
        let mut write = redis::pipe();
        let mut changes = 0;
        for (key, kind) in keys.iter().zip(&kinds) {
            let pttl: i64 = redis::from_redis_value(next_reply(&mut replies)?)?;
            let score = match kind {
                Kind::Session => score_of(next_reply(&mut replies)?)?,
                Kind::UserIndex => max_score_of(next_reply(&mut replies)?)?,
                Kind::Other => None,
            };
            let decision = decide(*kind, pttl, score, state.pinned.get(key).copied(), now, dv);
            match decision.pin {
                Some(grace) => state.pinned.insert(key.clone(), grace),
                None => state.pinned.remove(key),
            };
            match decision.change {
                Some(Change::Delete) => write.cmd("DEL").arg(key).ignore(),
                Some(Change::Expire(ttl)) => write.cmd("PEXPIRE").arg(key).arg(ttl).ignore(),
                Some(Change::Persist) => write.cmd("PERSIST").arg(key).ignore(),
                None => continue,
            };
            changes += 1;
        }
        if changes > 0 {
            write.query_async::<()>(con).await?;
        }
        Ok(())
    }

    fn kind(&self, key: &[u8]) -> Kind {
        let suffix = key.get(self.prefix.len()..).unwrap_or_default();
        if !suffix.contains(&b'~') {
            Kind::Session
        } else if suffix.starts_with(b"~user:") {
            Kind::UserIndex
        } else {
            Kind::Other
        }
    }
}

impl fmt::Debug for TimeShift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeShift")
            .field("prefix", &self.prefix)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// What a key under the prefix is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `{prefix}{storage id}`: no `~` after the prefix.
    Session,
    /// `{prefix}~user:{hex}`.
    UserIndex,
    /// Anything else (`{prefix}~exp`, …).
    Other,
}

/// One key's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Delete,
    Expire(i64),
    Persist,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decision {
    change: Option<Change>,
    /// `Some(grace)`: the key is pinned after this pass.
    pin: Option<i64>,
}

const KEEP: Decision = Decision {
    change: None,
    pin: None,
};

/// What happens to one key when the clock moved `dv` to `now`, given its `PTTL`, its score
/// (a session's `~exp` score, a user index's highest member score) and, if the harness pinned
/// it, the grace it had then.
fn decide(
    kind: Kind,
    pttl: i64,
    score: Option<i64>,
    pinned: Option<i64>,
    now: i64,
    dv: i64,
) -> Decision {
    if pttl == -2 {
        return KEEP; // gone since the SCAN
    }
    // Where the key's TTL would end had Redis's clock jumped with the store's: its TTL less
    // `dv`; for a key the harness pinned, its score plus the grace it had; a session key
    // without a TTL but with a score (a writer's PERSIST): its score.
    let shifted = match (pttl, kind, score, pinned) {
        (ttl, _, _, _) if ttl >= 0 => Some(ttl - dv),
        (_, Kind::Session, Some(s), grace) => Some(s - now + grace.unwrap_or(0)),
        (_, Kind::UserIndex, Some(s), Some(grace)) => Some(s - now + grace),
        _ => None,
    };
    let Some(shifted) = shifted else {
        return KEEP; // no TTL, not pinned here: the store's choice
    };
    let left = match kind {
        Kind::Session | Kind::UserIndex => score.map(|s| s - now).filter(|&r| r > 0),
        Kind::Other => None,
    };
    match left {
        Some(r) if r < PIN_MS => Decision {
            change: (pttl != -1).then_some(Change::Persist),
            pin: Some((shifted - r).max(0)),
        },
        // Exactly the score, or the store's grace beyond it; a user index lives at least as
        // long as its latest member.
        Some(r) => Decision {
            change: Some(Change::Expire(shifted.max(r))),
            pin: None,
        },
        None if shifted > 0 => Decision {
            change: Some(Change::Expire(shifted)),
            pin: None,
        },
        None => Decision {
            change: Some(Change::Delete),
            pin: None,
        },
    }
}

fn next_reply(replies: &mut impl Iterator<Item = Value>) -> redis::RedisResult<Value> {
    replies.next().ok_or_else(|| {
        redis::RedisError::from((
            redis::ErrorKind::Client,
            "timeshift: fewer pipeline replies than commands",
        ))
    })
}

/// A `ZSCORE` reply as whole milliseconds.
fn score_of(reply: Value) -> redis::RedisResult<Option<i64>> {
    let score: Option<f64> = redis::from_redis_value(reply)?;
    Ok(score.map(|s| s as i64))
}

/// A `ZRANGE … WITHSCORES` reply of at most one member: its score.
fn max_score_of(reply: Value) -> redis::RedisResult<Option<i64>> {
    let members: Vec<(Vec<u8>, f64)> = redis::from_redis_value(reply)?;
    Ok(members.last().map(|(_, s)| *s as i64))
}

fn ms(millis: u64) -> i64 {
    i64::try_from(millis).unwrap_or(i64::MAX)
}

/// Escapes `*`, `?`, `[`, `]` and `\` so `text` matches itself in a `SCAN MATCH` pattern.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use redis::AsyncCommands;
    use session_core::ManualClock;

    use super::*;
    use crate::RedisServer;

    const NOW: i64 = 1_000_000;

    fn session(pttl: i64, score: Option<i64>, pinned: Option<i64>, dv: i64) -> Decision {
        decide(Kind::Session, pttl, score, pinned, NOW, dv)
    }

    fn expire(ttl: i64) -> Decision {
        Decision {
            change: Some(Change::Expire(ttl)),
            pin: None,
        }
    }

    const DELETE: Decision = Decision {
        change: Some(Change::Delete),
        pin: None,
    };

    #[test]
    fn sessions_with_a_score_get_exactly_their_virtual_time_left() {
        // TTL drifted 300 ms in real time: corrected to the score.
        assert_eq!(
            session(39_700, Some(NOW + 30_000), None, 10_000),
            expire(30_000)
        );
        // A store's grace past the score is kept.
        assert_eq!(
            session(41_000, Some(NOW + 30_000), None, 10_000),
            expire(31_000)
        );
        // At or past the score: deleted, unless the grace has time left.
        assert_eq!(session(10_000, Some(NOW), None, 10_000), DELETE);
        assert_eq!(session(10_900, Some(NOW), None, 10_000), expire(900));
        assert_eq!(session(5_000, Some(NOW - 1), None, 10_000), DELETE);
        // No TTL (another writer's PERSIST) with a score: by the score.
        assert_eq!(
            session(-1, Some(NOW + 30_000), None, 10_000),
            expire(30_000)
        );
        assert_eq!(session(-1, Some(NOW - 5), None, 10_000), DELETE);
        // Gone since the SCAN: nothing.
        assert_eq!(session(-2, Some(NOW + 30_000), None, 10_000), KEEP);
    }

    #[test]
    fn sessions_near_their_end_are_pinned_then_released() {
        let pinned = |grace| Decision {
            change: Some(Change::Persist),
            pin: Some(grace),
        };
        assert_eq!(session(99_999, Some(NOW + 1), None, 99_998), pinned(0));
        assert_eq!(session(5_000, Some(NOW + 1), None, 4_999), pinned(0));
        // The grace past the score is remembered.
        assert_eq!(session(6_000, Some(NOW + 1), None, 4_999), pinned(1_000));
        // Already pinned: stays so without a command.
        assert_eq!(
            session(-1, Some(NOW + 1_500), Some(1_000), 10),
            Decision {
                change: None,
                pin: Some(1_000)
            }
        );
        // Its score passed: deleted, or its grace back.
        assert_eq!(session(-1, Some(NOW), Some(0), 1), DELETE);
        assert_eq!(session(-1, Some(NOW - 1), Some(1_000), 1), expire(999));
        // The store moved its expiry: a TTL again.
        assert_eq!(session(-1, Some(NOW + 90_000), Some(0), 1), expire(90_000));
    }

    #[test]
    fn keys_without_a_score_shift_by_the_jump() {
        assert_eq!(session(50_000, None, None, 10_000), expire(40_000));
        assert_eq!(session(10_000, None, None, 10_000), DELETE);
        assert_eq!(session(-1, None, None, 10_000), KEEP);
        // Pinned, then its score went: left as it is, no longer pinned.
        assert_eq!(session(-1, None, Some(0), 10_000), KEEP);
        let other = |pttl, pinned| decide(Kind::Other, pttl, Some(NOW + 50_000), pinned, NOW, 10);
        assert_eq!(other(-1, None), KEEP);
        assert_eq!(other(500, None), expire(490));
        assert_eq!(other(10, None), DELETE);
    }

    #[test]
    fn user_indexes_outlive_their_latest_member() {
        let index = |pttl, max, pinned| decide(Kind::UserIndex, pttl, max, pinned, NOW, 10_000);
        assert_eq!(index(40_000, Some(NOW + 31_000), None), expire(31_000));
        assert_eq!(index(42_000, Some(NOW + 31_000), None), expire(32_000));
        assert_eq!(
            index(11_000, Some(NOW + 1_000), None),
            Decision {
                change: Some(Change::Persist),
                pin: Some(0)
            }
        );
        assert_eq!(index(-1, Some(NOW - 1), Some(0)), DELETE);
        assert_eq!(index(-1, Some(NOW), Some(800)), expire(800));
        // No live member: the TTL shifts.
        assert_eq!(index(15_000, Some(NOW - 10), None), expire(5_000));
        assert_eq!(index(5_000, Some(NOW - 10), None), DELETE);
        // No TTL and not pinned here: the store's choice.
        assert_eq!(index(-1, Some(NOW + 10), None), KEEP);
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    async fn pttl(con: &mut MultiplexedConnection, key: &str) -> i64 {
        con.pttl(key).await.unwrap()
    }

    /// Asserts a TTL of `ms` less at most the real time the test took since it was set.
    async fn assert_ttl(con: &mut MultiplexedConnection, key: &str, ms: i64) {
        let got = pttl(con, key).await;
        assert!(
            got <= ms && got > ms - 1_000,
            "{key}: PTTL {got}, expected about {ms}"
        );
    }

    /// Raw keys in each shape, through jumps of the clock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sync_moves_raw_keys() {
        let server = RedisServer::start();
        let mut con = server.async_connection().await;
        let clock = ManualClock::starting_now();
        let t0 = i64::try_from(clock.now().0).unwrap();
        // `[1]` in the prefix: "t1:stranger" matches it unescaped.
        let p = "t[1]:";
        let key = |s: &str| format!("{p}{s}");
        let exp = key("~exp");
        let set = |k: String, ttl: Option<i64>| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(k).arg("v");
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(ttl);
            }
            cmd
        };
        let mut setup = redis::pipe();
        // Exact TTL (Redis owns liveness), and the old layout's 1 s grace.
        setup.add_command(set(key("exact"), Some(100_000)));
        setup.add_command(set(key("grace"), Some(101_000)));
        // Pinned at 99.999 s, then its store moves the expiry to 200 s (keeping no TTL).
        setup.add_command(set(key("moved"), Some(101_500)));
        // Another writer's: no score.
        setup.add_command(set(key("foreign"), Some(90_000)));
        setup.add_command(set(key("forever"), None));
        setup
            .cmd("ZADD")
            .arg(&exp)
            .arg(t0 + 100_000)
            .arg("exact")
            .arg(t0 + 100_000)
            .arg("grace")
            .arg(t0 + 101_500)
            .arg("moved");
        setup
            .cmd("ZADD")
            .arg(key("~user:61"))
            .arg(t0 + 100_000)
            .arg("exact")
            .arg(t0 + 50_000)
            .arg("gone");
        setup.cmd("PEXPIRE").arg(key("~user:61")).arg(100_000);
        setup.add_command(set(key("~other"), Some(30_000)));
        setup.add_command(set("t1:stranger".into(), Some(50_000)));
        setup.add_command(set("other:x".into(), Some(50_000)));
        // Enough sessions for several SCAN pages.
        for i in 0..2_500 {
            setup.add_command(set(key(&format!("bulk{i}")), Some(100_000)));
            setup
                .cmd("ZADD")
                .arg(&exp)
                .arg(t0 + 100_000)
                .arg(format!("bulk{i}"));
        }
        setup.query_async::<()>(&mut con).await.unwrap();

        let shift = TimeShift::new(con.clone(), p, Arc::new(clock.clone()));
        // The clock has not moved: nothing changes.
        shift.sync().await;
        assert_ttl(&mut con, &key("foreign"), 90_000).await;

        clock.advance(Duration::from_secs(60));
        shift.sync().await;
        assert_ttl(&mut con, &key("exact"), 40_000).await;
        assert_ttl(&mut con, &key("grace"), 41_000).await;
        assert_ttl(&mut con, &key("foreign"), 30_000).await;
        assert_eq!(pttl(&mut con, &key("forever")).await, -1);
        assert_ttl(&mut con, &key("~user:61"), 40_000).await;
        assert_eq!(pttl(&mut con, &key("~other")).await, -2);
        assert_eq!(pttl(&mut con, &exp).await, -1);
        assert_ttl(&mut con, "t1:stranger", 50_000).await;
        assert_ttl(&mut con, "other:x", 50_000).await;
        for i in [0, 1_234, 2_499] {
            assert_ttl(&mut con, &key(&format!("bulk{i}")), 40_000).await;
        }

        // 1 ms before the end: pinned.
        clock.advance(Duration::from_millis(39_999));
        shift.sync().await;
        for k in ["exact", "grace", "moved", "~user:61", "bulk7"] {
            assert_eq!(pttl(&mut con, &key(k)).await, -1, "{k}");
        }
        assert_eq!(pttl(&mut con, &key("foreign")).await, -2);
        // Real time passing does not end a pinned key.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pttl(&mut con, &key("exact")).await, -1);

        let _: () = con.zadd(&exp, "moved", t0 + 200_000).await.unwrap();
        clock.advance(Duration::from_millis(1));
        shift.sync().await;
        for k in ["exact", "~user:61", "bulk7"] {
            assert_eq!(pttl(&mut con, &key(k)).await, -2, "{k}");
        }
        // The grace it had when pinned: about 1 s.
        assert_ttl(&mut con, &key("grace"), 1_000).await;
        assert_ttl(&mut con, &key("moved"), 100_000).await;
        assert_eq!(pttl(&mut con, &key("forever")).await, -1);
        // The index's scores are untouched.
        let score: Option<f64> = con.zscore(&exp, "exact").await.unwrap();
        assert_eq!(score, Some((t0 + 100_000) as f64));

        // After a write: keys whose TTL came out under PIN_MS are pinned, others left alone.
        let mut written = redis::pipe();
        written.add_command(set(key("short"), Some(1_500)));
        written.add_command(set(key("long"), Some(5_000)));
        written.query_async::<()>(&mut con).await.unwrap();
        let keys = [key("short"), key("long"), key("missing")];
        shift.pin_short(&keys, Some(1_400)).await;
        assert_eq!(pttl(&mut con, &key("short")).await, -1);
        assert_ttl(&mut con, &key("long"), 5_000).await;
        assert_eq!(pttl(&mut con, &key("missing")).await, -2);
        let state = shift.state.lock().await;
        let grace = state.pinned.get(key("short").as_bytes()).copied().unwrap();
        assert!((0..=100).contains(&grace), "grace {grace}");
        assert!(!state.pinned.contains_key(key("long").as_bytes()));
    }
}
