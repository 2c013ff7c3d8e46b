//! What the generated tests write: data and write options, as small shrinkable values.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;
use session_core::{SessionData, WriteOptions};

use crate::ctx::data;
use crate::model::Life;
use crate::observe::lifetime_of;

/// Users the generated data belongs to.
pub const USERS: [&str; 3] = ["alice", "bob", "carol"];

/// Data a generated write stores.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Which user, and whether under `user.sub` (true) or `user.username`.
    user: Option<(usize, bool)>,
    n: i64,
    text: Option<String>,
}

impl Seed {
    /// A seed with just a number and maybe a user.
    pub fn small(n: i64, user: Option<usize>) -> Self {
        Seed {
            user: user.map(|u| (u % USERS.len(), true)),
            n,
            text: None,
        }
    }

    /// The session data.
    pub fn data(&self) -> SessionData {
        let mut d = data(json!({ "n": self.n }));
        if let Some((u, by_sub)) = self.user {
            let key = if by_sub { "sub" } else { "username" };
            d.insert("user".into(), json!({ key: USERS[u] }));
        }
        if let Some(text) = &self.text {
            d.insert("s".into(), json!(text));
        }
        d
    }
}

/// A lifetime to give a write, relative to the clock when the write runs; negative or zero
/// time left makes it already expired.
#[derive(Debug, Clone, Copy)]
pub struct LifeSpec {
    created_ago_s: u64,
    idle_s: u64,
    idle_left_s: i64,
    absolute_left_s: Option<i64>,
}

impl LifeSpec {
    /// The lifetime at `now` (ms).
    pub fn life(&self, now: u64) -> Life {
        let at = |secs: i64| now.saturating_add_signed(secs * 1000);
        Life {
            created: now - self.created_ago_s * 1000,
            idle_ms: self.idle_s * 1000,
            idle_expiry: at(self.idle_left_s),
            absolute_expiry: self.absolute_left_s.map(at),
        }
    }
}

/// Write options as generated: an idle timeout or not, a lifetime or not.
#[derive(Debug, Clone, Copy, Default)]
pub struct Opts {
    /// `WriteOptions::idle_timeout`, in seconds.
    pub idle_s: Option<u64>,
    /// `WriteOptions::lifetime`.
    pub life: Option<LifeSpec>,
}

impl Opts {
    /// The options for a write at `now` (ms), and the model's view of them (idle timeout in
    /// ms, given lifetime).
    pub fn at(&self, now: u64) -> (WriteOptions, Option<u64>, Option<Life>) {
        let mut options = WriteOptions::new();
        if let Some(secs) = self.idle_s {
            options = options.with_idle_timeout(Duration::from_secs(secs));
        }
        let life = self.life.map(|l| l.life(now));
        if let Some(life) = &life {
            options = options.with_lifetime(lifetime_of(life));
        }
        (options, self.idle_s.map(|s| s * 1000), life)
    }
}

/// Seeds with users, numbers and strings that need escaping.
pub fn seed() -> impl Strategy<Value = Seed> {
    (
        proptest::option::weighted(0.8, (0..USERS.len(), any::<bool>())),
        -3i64..1000,
        proptest::option::of("[a-z\"\\\\é ]{0,8}"),
    )
        .prop_map(|(user, n, text)| Seed { user, n, text })
}

/// Lifetimes around the interesting boundaries, about a third of them already over. A live
/// one has at least 30 s left: a Redis store hands the remaining time to the server as a TTL,
/// which real time runs down while the manual clock stands still.
pub fn life_spec() -> impl Strategy<Value = LifeSpec> {
    (
        prop_oneof![Just(0u64), Just(10), Just(5000)],
        prop_oneof![Just(100u64), Just(300), Just(7200)],
        prop_oneof![
            Just(-100i64),
            Just(-1),
            Just(0),
            Just(30),
            Just(50),
            Just(100),
            Just(300)
        ],
        proptest::option::weighted(
            0.4,
            prop_oneof![Just(-10i64), Just(0), Just(30), Just(80), Just(500)],
        ),
    )
        .prop_map(
            |(created_ago_s, idle_s, idle_left_s, absolute_left_s)| LifeSpec {
                created_ago_s,
                idle_s,
                idle_left_s,
                absolute_left_s,
            },
        )
}

/// Mostly the defaults; sometimes an idle timeout, sometimes a whole lifetime.
pub fn opts() -> impl Strategy<Value = Opts> {
    (
        proptest::option::weighted(0.3, prop_oneof![Just(30u64), Just(100), Just(300)]),
        proptest::option::weighted(0.2, life_spec()),
    )
        .prop_map(|(idle_s, life)| Opts { idle_s, life })
}
