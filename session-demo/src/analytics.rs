//! The admin page's figures over time: live sessions and logins per minute over the last hour,
//! and one row per user.
//!
//! Two sources, with different guarantees:
//!
//! - **Live sessions per minute** need history the store does not keep: `count` answers only
//!   "how many now". The demo keeps it in process, in a [`LiveHistory`]: a ring of
//!   [`MINUTES`] one-minute slots, each holding the latest `count` taken in that minute. Samples
//!   come from the periodic cleanup task (every `DEMO_CLEANUP_SECONDS`, default 60: the same
//!   `count` that sets the live-sessions gauge) and from every admin page view. A minute in
//!   which nothing sampled is a gap in the line. The history is per process: a restart starts
//!   it empty, and two demo processes sharing a Redis store each have their own.
//! - **Logins per minute** come from the sessions themselves, so they are exact and survive a
//!   restart: every live session that has a user is one login, at its `login_at` (float Unix
//!   seconds, written by `POST /login`), or at its `created_at` for a session without one (one
//!   written by another tool; the demo's own sessions are created at the first visit and keep
//!   that `created_at` through the login's `rotate`). A login whose session has since ended
//!   (logout, expiry) is no longer counted.
//!
//! Both, and the per-user rows, come from one paged `scan` per admin page view (see
//! [`crate::admin`]), capped at `DEMO_ADMIN_SCAN_LIMIT` sessions.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use session_store::{Lifetime, SessionHandle, SessionRecord, Timestamp};

/// Minutes shown by the chart, and slots in the [`LiveHistory`] ring.
pub const MINUTES: usize = 60;
/// One minute in milliseconds.
pub const MINUTE_MS: u64 = 60_000;

/// The minute `at` falls in (minutes since the Unix epoch).
fn minute_of(at: Timestamp) -> u64 {
    at.as_millis() / MINUTE_MS
}

/// One reading of the live session count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When `count` answered.
    pub at: Timestamp,
    /// What it answered.
    pub live: u64,
}

/// The live session counts of the last [`MINUTES`] minutes: a fixed ring of one slot per
/// minute (the slot of minute `m` is `m % MINUTES`), each with the latest sample taken in that
/// minute. Recording is O(1) and the memory is fixed, however often samples come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveHistory {
    slots: [Option<Sample>; MINUTES],
}

impl Default for LiveHistory {
    fn default() -> Self {
        LiveHistory {
            slots: [None; MINUTES],
        }
    }
}

impl LiveHistory {
    /// Records `sample` in its minute's slot, unless that slot already holds a later sample of
    /// the same minute. A sample older than the slot's minute is dropped.
    pub fn record(&mut self, sample: Sample) {
        let minute = minute_of(sample.at);
        let slot = &mut self.slots[(minute % MINUTES as u64) as usize];
        let replace = match slot {
            None => true,
            Some(held) => {
                let held_minute = minute_of(held.at);
                minute > held_minute || (minute == held_minute && sample.at >= held.at)
            }
        };
        if replace {
            *slot = Some(sample);
        }
    }

    /// The count of each of the [`MINUTES`] minutes ending with `now`'s, oldest first; `None`
    /// for a minute without a sample.
    pub fn per_minute(&self, now: Timestamp) -> Vec<Option<u64>> {
        let first = first_minute(now);
        (0..MINUTES as u64)
            .map(|i| {
                let minute = first + i;
                self.slots[(minute % MINUTES as u64) as usize]
                    .filter(|s| minute_of(s.at) == minute)
                    .map(|s| s.live)
            })
            .collect()
    }
}

/// The first minute of the chart ending with `now`'s minute.
fn first_minute(now: Timestamp) -> u64 {
    minute_of(now).saturating_sub(MINUTES as u64 - 1)
}

/// A [`LiveHistory`] shared by the app's state, its cleanup task and every request. Cheap to
/// clone; the lock is held only to copy a sample in or the slots out.
#[derive(Debug, Clone, Default)]
pub struct SharedHistory(Arc<Mutex<LiveHistory>>);

impl SharedHistory {
    /// Records that `count` answered `live` at `at`.
    pub fn record(&self, at: Timestamp, live: u64) {
        self.lock().record(Sample { at, live });
    }

    /// See [`LiveHistory::per_minute`].
    pub fn per_minute(&self, now: Timestamp) -> Vec<Option<u64>> {
        self.lock().per_minute(now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LiveHistory> {
        // A panic while holding the lock cannot leave the slots half-written: use them anyway.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the chart draws: [`MINUTES`] one-minute buckets ending with the current minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourChart {
    /// Start of the first (oldest) bucket.
    pub start: Timestamp,
    /// Live sessions per bucket (the minute's latest sample), oldest first; `None`: no sample.
    pub live: Vec<Option<u64>>,
    /// Logins per bucket (live sessions by login minute), oldest first.
    pub logins: Vec<u64>,
}

impl HourChart {
    /// The start of bucket `i`.
    pub fn bucket_start(&self, i: usize) -> Timestamp {
        Timestamp(
            self.start
                .as_millis()
                .saturating_add((i as u64).saturating_mul(MINUTE_MS)),
        )
    }

    /// Buckets drawn: the longer of the two series.
    pub fn buckets(&self) -> usize {
        self.live.len().max(self.logins.len())
    }

    /// Logins over all buckets.
    pub fn total_logins(&self) -> u64 {
        self.logins.iter().fold(0, |sum, n| sum.saturating_add(*n))
    }
}

/// When a session last saw activity: its idle expiry minus its idle timeout (every write and
/// every page view's `refresh` slide the idle expiry).
pub fn last_activity(lifetime: &Lifetime) -> Timestamp {
    let idle_ms = u64::try_from(lifetime.idle_timeout.as_millis()).unwrap_or(u64::MAX);
    Timestamp(lifetime.idle_expires_at.as_millis().saturating_sub(idle_ms))
}

/// When the session's user logged in: its `login_at` (float Unix seconds), else its
/// `created_at`.
pub fn login_time(record: &SessionRecord) -> Timestamp {
    record
        .data
        .get("login_at")
        .and_then(serde_json::Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0)
        // `as` saturates: a login_at beyond u64 milliseconds is a far future, not a panic.
        .map_or(record.lifetime.created_at, |s| {
            Timestamp((s * 1000.0).round() as u64)
        })
}

/// One user with live sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The user's name (`user.username`, else the user key).
    pub name: String,
    /// Their live sessions.
    pub sessions: usize,
    /// The latest activity of any of them.
    pub last_activity: Timestamp,
    /// The earliest login among them.
    pub first_login: Timestamp,
    /// The latest login among them.
    pub last_login: Timestamp,
    /// Whether the last activity falls in the active window (`DEMO_ACTIVE_MINUTES`).
    pub active: bool,
}

/// The per-user rows and the logins per minute, built from one pass over the sessions.
#[derive(Debug)]
pub struct Tally {
    first_minute: u64,
    active_since: Timestamp,
    seen: HashSet<SessionHandle>,
    users: BTreeMap<String, UserRow>,
    logins: Vec<u64>,
}

impl Tally {
    /// An empty tally for the hour ending at `now`; users active within `active_window` of
    /// `now` are marked active.
    pub fn new(now: Timestamp, active_window: Duration) -> Self {
        let window_ms = u64::try_from(active_window.as_millis()).unwrap_or(u64::MAX);
        Tally {
            first_minute: first_minute(now),
            active_since: Timestamp(now.as_millis().saturating_sub(window_ms)),
            seen: HashSet::new(),
            users: BTreeMap::new(),
            logins: vec![0; MINUTES],
        }
    }

    /// Counts `record`, whose user key is `user_key` (`None`: an anonymous session, which
    /// counts for neither logins nor users). Returns `false` for a session already counted
    /// (a Redis `SCAN` may return a key twice).
    pub fn add(&mut self, record: &SessionRecord, user_key: Option<String>) -> bool {
        if !self.seen.insert(record.handle.clone()) {
            return false;
        }
        let Some(key) = user_key else {
            return true;
        };
        let login = login_time(record);
        if let Some(i) = minute_of(login)
            .checked_sub(self.first_minute)
            .filter(|&i| i < MINUTES as u64)
        {
            self.logins[i as usize] += 1;
        }
        let seen = last_activity(&record.lifetime);
        let row = self.users.entry(key).or_insert_with_key(|key| UserRow {
            name: record
                .data
                .get("user")
                .and_then(|u| u.get("username"))
                .and_then(|n| n.as_str())
                .map_or_else(|| key.clone(), str::to_owned),
            sessions: 0,
            last_activity: seen,
            first_login: login,
            last_login: login,
            active: false,
        });
        row.sessions += 1;
        row.last_activity = row.last_activity.max(seen);
        row.first_login = row.first_login.min(login);
        row.last_login = row.last_login.max(login);
        row.active = row.last_activity >= self.active_since;
        true
    }

    /// Sessions counted.
    pub fn sessions(&self) -> usize {
        self.seen.len()
    }

    /// The users, most recent activity first (then by name), and the logins per minute of the
    /// hour, oldest first.
    pub fn finish(self) -> (Vec<UserRow>, Vec<u64>) {
        let mut users: Vec<UserRow> = self.users.into_values().collect();
        users.sort_by(|a, b| {
            b.last_activity
                .cmp(&a.last_activity)
                .then_with(|| a.name.cmp(&b.name))
        });
        (users, self.logins)
    }

    /// The start of the first bucket.
    pub fn start(&self) -> Timestamp {
        Timestamp(self.first_minute.saturating_mul(MINUTE_MS))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use session_store::{SessionData, SessionId};

    use super::*;

    const T0: u64 = 1_800_000_000_000; // a whole minute

    fn at(minute: u64, second: u64) -> Timestamp {
        Timestamp(T0 + minute * MINUTE_MS + second * 1000)
    }

    #[test]
    fn the_ring_keeps_the_latest_sample_of_each_of_the_last_sixty_minutes() {
        let mut history = LiveHistory::default();
        history.record(Sample {
            at: at(0, 10),
            live: 3,
        });
        history.record(Sample {
            at: at(0, 50),
            live: 5,
        });
        // An earlier sample of the same minute, arriving late, loses.
        history.record(Sample {
            at: at(0, 20),
            live: 4,
        });
        history.record(Sample {
            at: at(2, 0),
            live: 7,
        });
        let now = at(2, 30);
        let minutes = history.per_minute(now);
        assert_eq!(minutes.len(), MINUTES);
        assert_eq!(&minutes[57..], &[Some(5), None, Some(7)]);
        assert!(minutes[..57].iter().all(Option::is_none));

        // Sixty minutes on, minute 0's slot is reused by minute 60; minute 2 is still shown
        // until it leaves the window.
        history.record(Sample {
            at: at(60, 0),
            live: 1,
        });
        let minutes = history.per_minute(at(60, 1));
        assert_eq!(minutes[0], None, "minute 1: no sample");
        assert_eq!(minutes[1], Some(7), "minute 2");
        assert_eq!(minutes[59], Some(1), "minute 60");
        // A sample of minute 0 arriving now is older than its slot's minute: dropped.
        history.record(Sample {
            at: at(0, 59),
            live: 9,
        });
        assert_eq!(history.per_minute(at(60, 1))[59], Some(1));
        // An hour without samples: nothing left.
        assert!(history.per_minute(at(125, 0)).iter().all(Option::is_none));
    }

    fn record(login_minute: Option<u64>, user: Option<&str>) -> SessionRecord {
        let mut data = SessionData::new();
        if let Some(user) = user {
            data.insert(
                "user".into(),
                json!({ "username": user, "sub": format!("sub-{user}") }),
            );
        }
        if let Some(minute) = login_minute {
            data.insert(
                "login_at".into(),
                json!(at(minute, 30).as_unix_seconds_f64()),
            );
        }
        let id = SessionId::generate();
        SessionRecord {
            id: Some(id.clone()),
            handle: id.handle(),
            data,
            lifetime: Lifetime::starting(at(0, 0), Duration::from_secs(3600), None),
        }
    }

    #[test]
    fn the_tally_buckets_logins_and_groups_sessions_by_user() {
        let now = at(70, 0);
        let mut tally = Tally::new(now, Duration::from_secs(15 * 60));
        let mut alice = record(Some(65), Some("alice"));
        // Active 2 minutes ago.
        alice.lifetime.idle_expires_at = at(68, 0).saturating_add(Duration::from_secs(3600));
        let alice_again = record(Some(69), Some("alice"));
        let bob = record(Some(5), Some("bob")); // logged in before the hour: no bar
        let anonymous = record(None, None);
        assert!(tally.add(&alice, Some("sub-alice".into())));
        assert!(tally.add(&alice_again, Some("sub-alice".into())));
        assert!(!tally.add(&alice, Some("sub-alice".into())), "counted once");
        assert!(tally.add(&bob, Some("sub-bob".into())));
        assert!(tally.add(&anonymous, None));
        assert_eq!(tally.sessions(), 4);
        assert_eq!(tally.start(), at(11, 0));

        let (users, logins) = tally.finish();
        assert_eq!(logins.len(), MINUTES);
        assert_eq!(logins.iter().sum::<u64>(), 2);
        assert_eq!(logins[65 - 11], 1);
        assert_eq!(logins[69 - 11], 1);
        assert_eq!(users.len(), 2);
        let (first, second) = (&users[0], &users[1]);
        assert_eq!(
            (first.name.as_str(), first.sessions, first.active),
            ("alice", 2, true)
        );
        assert_eq!(first.last_activity, at(68, 0));
        assert_eq!(first.first_login, at(65, 30));
        assert_eq!(first.last_login, at(69, 30));
        assert_eq!((second.name.as_str(), second.active), ("bob", false));
    }

    #[test]
    fn login_time_is_login_at_else_created_at() {
        let with = record(Some(3), Some("alice"));
        assert_eq!(login_time(&with), at(3, 30));
        let without = record(None, Some("alice"));
        assert_eq!(login_time(&without), at(0, 0));
        let mut odd = record(None, Some("alice"));
        odd.data.insert("login_at".into(), json!("yesterday"));
        assert_eq!(login_time(&odd), at(0, 0));
    }
}
