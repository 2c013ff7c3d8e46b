//! What the admin page shows: the live session count, the current user's sessions (by handle,
//! never by token) and the users active recently.
//!
//! "Active users" is computed simply: read up to `DEMO_ADMIN_SCAN_LIMIT` sessions through the
//! store's paged `scan`, take each session's user key (`SESSION_USER_KEYS`) and its last
//! activity (idle expiry minus idle timeout: every write and every page view slides the idle
//! expiry), and keep the users with activity in the last `DEMO_ACTIVE_MINUTES`. That is one
//! pass over the store per page view: fine for a demo, not for millions of sessions (a real
//! service would keep a sorted set of last-seen times instead).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt as _;
use session_store::{sessions_of, Clock, Lifetime, Result, SessionSummary, SystemClock, Timestamp};

use crate::state::AppState;

/// Sessions fetched per `scan` page.
const SCAN_PAGE: usize = 500;

/// Everything on the admin page.
#[derive(Debug, Clone)]
pub struct AdminStats {
    /// The backend's name.
    pub backend: &'static str,
    /// Live sessions (`count`).
    pub count: u64,
    /// The current user's sessions, oldest first.
    pub mine: Vec<SessionSummary>,
    /// Users with recent activity, most recent first.
    pub active: Vec<ActiveUser>,
    /// The activity window.
    pub window: Duration,
    /// Sessions read to find active users.
    pub scanned: usize,
    /// Whether reading stopped at the limit.
    pub truncated: bool,
}

/// A user with recent activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveUser {
    /// The user's name (`user.username`, else the user key).
    pub name: String,
    /// How many of their sessions were active in the window.
    pub sessions: usize,
    /// Their latest activity.
    pub last_activity: Timestamp,
}

/// When a session last saw activity: its idle expiry minus its idle timeout.
pub fn last_activity(lifetime: &Lifetime) -> Timestamp {
    let idle_ms = u64::try_from(lifetime.idle_timeout.as_millis()).unwrap_or(u64::MAX);
    Timestamp(lifetime.idle_expires_at.as_millis().saturating_sub(idle_ms))
}

/// Gathers the admin page's figures for the user with key `user_key`.
pub async fn gather(state: &AppState, user_key: &str) -> Result<AdminStats> {
    let store = state.store();
    let config = state.config();
    let count = store.count().await?;
    let mut mine = store.list_user(user_key).await?;
    mine.sort_by_key(|s| s.lifetime.created_at);

    let window = config.active_window;
    let since = Timestamp(
        SystemClock
            .now()
            .as_millis()
            .saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX)),
    );
    let mut users: BTreeMap<String, ActiveUser> = BTreeMap::new();
    let mut scanned = 0;
    let mut stream = sessions_of(store, SCAN_PAGE);
    let mut truncated = false;
    while let Some(record) = stream.next().await {
        if scanned == config.admin_scan_limit {
            truncated = true;
            break;
        }
        let record = record?;
        scanned += 1;
        let Some(key) = state.user_key(&record.data) else {
            continue;
        };
        let seen = last_activity(&record.lifetime);
        if seen < since {
            continue;
        }
        let name = record
            .data
            .get("user")
            .and_then(|u| u.get("username"))
            .and_then(|n| n.as_str())
            .map_or_else(|| key.clone(), str::to_owned);
        let entry = users.entry(key).or_insert(ActiveUser {
            name,
            sessions: 0,
            last_activity: seen,
        });
        entry.sessions += 1;
        entry.last_activity = entry.last_activity.max(seen);
    }
    let mut active: Vec<ActiveUser> = users.into_values().collect();
    active.sort_by(|a, b| {
        b.last_activity
            .cmp(&a.last_activity)
            .then(a.name.cmp(&b.name))
    });
    Ok(AdminStats {
        backend: store.backend(),
        count,
        mine,
        active,
        window,
        scanned,
        truncated,
    })
}
