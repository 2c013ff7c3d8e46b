//! [`TimeShift`]: the Redis work of a pass (`SCAN`, reads, changes) and of pinning after a
//! write.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use session_core::{Clock, Timestamp};

use super::rules::{decide, Change, Kind};
use super::{ms, PIN_MS};

/// `SCAN COUNT` of a pass.
const SCAN_COUNT: u64 = 1_000;

/// Names the expiry index that would hold a key's score.
pub type IndexOf = Arc<dyn Fn(&[u8]) -> String + Send + Sync>;

/// Moves the expiries under one key prefix along with a clock (see the [module](super) docs).
pub struct TimeShift {
    con: MultiplexedConnection,
    prefix: String,
    /// The expiry index that would hold a key's score (see [`TimeShift::with_index_of`]).
    index_of: IndexOf,
    clock: Arc<dyn Clock>,
    read: redis::Script,
    pin_short: redis::Script,
    /// A Redis Cluster's primaries: each is scanned and shifted with plain commands (a
    /// script's keys must share a slot there). `None`: the one server `con` talks to.
    cluster: Option<Vec<MultiplexedConnection>>,
    /// The clock's time at the last pass: expiries are already shifted up to here. Held
    /// during a pass and while pinning, which it serializes.
    last: tokio::sync::Mutex<Timestamp>,
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
            index_of: {
                let index = format!("{prefix}~exp");
                Arc::new(move |_: &[u8]| index.clone())
            },
            prefix,
            clock,
            read: redis::Script::new(include_str!("read.lua")),
            pin_short: redis::Script::new(include_str!("pin_short.lua")),
            cluster: None,
            last: tokio::sync::Mutex::new(last),
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

    /// The same shifter for a store whose expiry index entries live elsewhere than the one
    /// `{prefix}~exp` (one index per hash slot): `index_of` names a key's index.
    pub fn with_index_of(mut self, index_of: IndexOf) -> Self {
        self.index_of = index_of;
        self
    }

    /// The same shifter for a Redis Cluster whose primaries `nodes` talk to (a connection
    /// to each, in any order; the cluster must not reshard while the shifter is used).
    pub fn with_cluster_nodes(mut self, nodes: Vec<MultiplexedConnection>) -> Self {
        self.cluster = Some(nodes);
        self
    }

    /// The prefix whose keys this shifts.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The clock's time now, in ms.
    pub(super) fn now_ms(&self) -> i64 {
        ms(self.clock.now().0)
    }

    /// If the clock moved forward since the last pass, moves every expiry under the prefix
    /// back by as much (see the [module](super) docs). Passes are serialized; a call while the
    /// clock has not moved returns at once (after any pass in progress).
    ///
    /// # Panics
    /// If Redis fails (a test-only helper: the test should stop there).
    pub async fn sync(&self) {
        let mut last = self.last.lock().await;
        let now = self.clock.now();
        if now <= *last {
            return;
        }
        let dv = ms(now.0 - last.0);
        *last = now;
        if let Err(e) = self.pass(ms(now.0), dv).await {
            panic!(
                "timeshift: moving the expiries under {:?} by {dv} ms failed: {e}",
                self.prefix
            );
        }
    }

    /// Pins those of `keys` (just written) whose TTL is under [`PIN_MS`]; returns how many.
    ///
    /// # Panics
    /// If Redis fails.
    pub(super) async fn pin_short(&self, keys: &[String]) -> usize {
        let _serialized = self.last.lock().await;
        if let Some(nodes) = &self.cluster {
            return self.pin_short_plain(nodes, keys).await;
        }
        let mut invocation = self.pin_short.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        invocation.arg(PIN_MS);
        invocation
            .invoke_async(&mut self.con.clone())
            .await
            .unwrap_or_else(|e| panic!("timeshift: pinning {keys:?} failed: {e}"))
    }

    /// [`TimeShift::pin_short`] on a cluster: asks every node (those that do not hold a key
    /// answer `MOVED`, ignored), then pins on the node that does.
    async fn pin_short_plain(&self, nodes: &[MultiplexedConnection], keys: &[String]) -> usize {
        let mut pinned = 0;
        for node in nodes {
            let mut con = node.clone();
            let mut read = redis::pipe();
            read.ignore_errors();
            for key in keys {
                read.cmd("PTTL").arg(key);
            }
            let ttls: Vec<redis::RedisResult<i64>> = read
                .query_async(&mut con)
                .await
                .unwrap_or_else(|e| panic!("timeshift: reading TTLs of {keys:?} failed: {e}"));
            let mut pin = redis::pipe();
            let mut n = 0;
            for (key, ttl) in keys.iter().zip(ttls) {
                if let Ok(ttl @ 0..) = ttl {
                    if ttl < PIN_MS {
                        pin.cmd("PERSIST").arg(key).ignore();
                        n += 1;
                    }
                }
            }
            if n > 0 {
                pin.query_async::<()>(&mut con)
                    .await
                    .unwrap_or_else(|e| panic!("timeshift: pinning {keys:?} failed: {e}"));
                pinned += n;
            }
        }
        pinned
    }

    /// One `SCAN` of the prefix (of every primary of a cluster), shifting each page.
    async fn pass(&self, now: i64, dv: i64) -> redis::RedisResult<()> {
        match &self.cluster {
            None => self.pass_on(self.con.clone(), now, dv, false).await,
            Some(nodes) => {
                for node in nodes {
                    self.pass_on(node.clone(), now, dv, true).await?;
                }
                Ok(())
            }
        }
    }

    async fn pass_on(
        &self,
        mut con: MultiplexedConnection,
        now: i64,
        dv: i64,
        plain: bool,
    ) -> redis::RedisResult<()> {
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
            if plain {
                self.shift_page_plain(&mut con, &page, now, dv).await?;
            } else {
                self.shift_page(&mut con, &page, now, dv).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// One script call reading every key's `PTTL` and expiry (`read.lua`), one pipeline
    /// applying the changes.
    async fn shift_page(
        &self,
        con: &mut MultiplexedConnection,
        keys: &[Vec<u8>],
        now: i64,
        dv: i64,
    ) -> redis::RedisResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut read = self.read.prepare_invoke();
        read.arg(&self.prefix);
        for key in keys {
            read.key(key)
                .key((self.index_of)(key))
                .arg(Kind::of(key, self.prefix.len()).code());
        }
        let rows: Vec<Vec<i64>> = read.invoke_async(con).await?;
        self.apply(con, keys, rows, now, dv).await
    }

    /// [`Self::shift_page`] with plain commands (a cluster node: a script's keys must share
    /// a slot): each key's `PTTL`, and a session's score in its slot's index, which lives on
    /// the same node. User indexes carry no TTL in the current layout, so only their own
    /// TTL (if any) is shifted.
    async fn shift_page_plain(
        &self,
        con: &mut MultiplexedConnection,
        keys: &[Vec<u8>],
        now: i64,
        dv: i64,
    ) -> redis::RedisResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let skip = self.prefix.len();
        let mut read = redis::pipe();
        for key in keys {
            read.cmd("PTTL").arg(key);
            if Kind::of(key, skip) == Kind::Session {
                read.cmd("ZSCORE")
                    .arg((self.index_of)(key))
                    .arg(&key[skip..]);
            }
        }
        let replies: Vec<redis::Value> = read.query_async(con).await?;
        let mut replies = replies.into_iter();
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            let pttl: i64 = redis::from_redis_value(replies.next().unwrap_or(redis::Value::Nil))?;
            let mut row = vec![pttl];
            if Kind::of(key, skip) == Kind::Session {
                let score: Option<f64> =
                    redis::from_redis_value(replies.next().unwrap_or(redis::Value::Nil))?;
                if let Some(score) = score {
                    row.push(score as i64);
                }
            }
            rows.push(row);
        }
        self.apply(con, keys, rows, now, dv).await
    }

    /// Applies the rules to each key's `[PTTL, expiry?]`, in one pipeline.
    async fn apply(
        &self,
        con: &mut MultiplexedConnection,
        keys: &[Vec<u8>],
        rows: Vec<Vec<i64>>,
        now: i64,
        dv: i64,
    ) -> redis::RedisResult<()> {
        if rows.len() != keys.len() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "timeshift: the read answered for fewer keys than it was given",
            )));
        }
        let mut write = redis::pipe();
        let mut changes = 0;
        for (key, row) in keys.iter().zip(rows) {
            let pttl = row.first().copied().unwrap_or(-2);
            let left = row.get(1).map(|expiry| expiry - now);
            match decide(pttl, left, dv) {
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
}

impl fmt::Debug for TimeShift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeShift")
            .field("prefix", &self.prefix)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
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

    fn set(key: String, ttl: Option<i64>) -> redis::Cmd {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg("v");
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(ttl);
        }
        cmd
    }

    /// Raw keys in each shape, through jumps of the clock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sync_moves_raw_keys() {
        let server = RedisServer::start();
        let mut con = server.async_connection().await;
        let clock = ManualClock::starting_now();
        let t0 = ms(clock.now().0);
        // `[1]` in the prefix: "t1:stranger" matches it unescaped.
        let p = "t[1]:";
        let key = |s: &str| format!("{p}{s}");
        let exp = key("~exp");
        let mut setup = redis::pipe();
        // The store's layout: TTL = expiry = score.
        setup.add_command(set(key("exact"), Some(100_000)));
        // Its TTL drifted (set 500 ms of real time ago): corrected to the score.
        setup.add_command(set(key("drifted"), Some(99_500)));
        // Pinned at 1.5 s left, then its store moves the expiry to 200 s (keeping no TTL).
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
            .arg("drifted")
            .arg(t0 + 101_500)
            .arg("moved")
            .arg(t0 + 120_000)
            .arg("refreshed");
        // A user index: its expiry is its latest member's `~exp` score; "gone" has none.
        setup
            .cmd("ZADD")
            .arg(key("~user:61"))
            .arg(t0 + 100_000)
            .arg("exact")
            .arg(t0 + 150_000)
            .arg("gone");
        setup.cmd("PEXPIRE").arg(key("~user:61")).arg(150_000);
        // Refreshed after its write: the index's score is older than the `~exp` score.
        setup.add_command(set(key("refreshed"), Some(120_000)));
        setup
            .cmd("ZADD")
            .arg(key("~user:62"))
            .arg(t0 + 50_000)
            .arg("refreshed");
        setup.cmd("PEXPIRE").arg(key("~user:62")).arg(120_000);
        // No member with a score: shifted like any key.
        setup
            .cmd("ZADD")
            .arg(key("~user:63"))
            .arg(t0 + 50_000)
            .arg("gone");
        setup.cmd("PEXPIRE").arg(key("~user:63")).arg(70_000);
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
        assert_ttl(&mut con, &key("drifted"), 99_500).await;

        clock.advance(Duration::from_secs(60));
        shift.sync().await;
        assert_ttl(&mut con, &key("exact"), 40_000).await;
        assert_ttl(&mut con, &key("drifted"), 40_000).await;
        assert_ttl(&mut con, &key("foreign"), 30_000).await;
        assert_eq!(pttl(&mut con, &key("forever")).await, -1);
        assert_ttl(&mut con, &key("~user:61"), 40_000).await;
        assert_ttl(&mut con, &key("~user:62"), 60_000).await;
        assert_ttl(&mut con, &key("~user:63"), 10_000).await;
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
        for k in ["exact", "drifted", "moved", "~user:61", "bulk7"] {
            assert_eq!(pttl(&mut con, &key(k)).await, -1, "{k}");
        }
        assert_eq!(pttl(&mut con, &key("foreign")).await, -2);
        assert_eq!(pttl(&mut con, &key("~user:63")).await, -2);
        // Real time passing does not end a pinned key.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pttl(&mut con, &key("exact")).await, -1);

        let _: () = con.zadd(&exp, "moved", t0 + 200_000).await.unwrap();
        clock.advance(Duration::from_millis(1));
        shift.sync().await;
        for k in ["exact", "drifted", "~user:61", "bulk7"] {
            assert_eq!(pttl(&mut con, &key(k)).await, -2, "{k}");
        }
        assert_ttl(&mut con, &key("moved"), 100_000).await;
        assert_ttl(&mut con, &key("refreshed"), 20_000).await;
        assert_ttl(&mut con, &key("~user:62"), 20_000).await;
        assert_eq!(pttl(&mut con, &key("forever")).await, -1);
        // The index's scores are untouched.
        let score: Option<f64> = con.zscore(&exp, "exact").await.unwrap();
        assert_eq!(score, Some((t0 + 100_000) as f64));

        // After a write: keys whose TTL came out under PIN_MS are pinned, others left alone.
        let mut written = redis::pipe();
        written.add_command(set(key("short"), Some(1_500)));
        written.add_command(set(key("long"), Some(PIN_MS + 3_000)));
        written.query_async::<()>(&mut con).await.unwrap();
        let keys = [key("short"), key("long"), key("missing")];
        assert_eq!(shift.pin_short(&keys).await, 1);
        assert_eq!(pttl(&mut con, &key("short")).await, -1);
        assert_ttl(&mut con, &key("long"), PIN_MS + 3_000).await;
        assert_eq!(pttl(&mut con, &key("missing")).await, -2);
    }
}
