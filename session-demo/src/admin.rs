//! What the admin page shows: the live session count, a chart of live sessions and logins per
//! minute over the last hour, one row per user with live sessions, and the current user's
//! sessions (by handle, never by token).
//!
//! Each view of the page takes a `count` (also sampled into the in-process live-sessions
//! history, see [`crate::analytics`]) and reads up to `DEMO_ADMIN_SCAN_LIMIT` sessions
//! (default 10,000) through the store's paged `scan`, once: each session's user key
//! (`SESSION_USER_KEYS`), last activity (idle expiry minus idle timeout: every write and every
//! page view slides the idle expiry) and login time give the per-user rows and the logins per
//! minute. When the limit stops the scan the page says so, and the rows and logins cover the
//! sessions read only. That is one pass over the store per page view: fine for a demo, not
//! for millions of sessions (a real service would keep a sorted set of last-seen times and a
//! login counter instead).

use std::time::Duration;

use futures::StreamExt as _;
use session_store::{sessions_of, Clock, Result, SessionSummary, SystemClock};

use crate::analytics::Tally;
pub use crate::analytics::{last_activity, HourChart, UserRow};
use crate::state::AppState;

/// Sessions fetched per `scan` page.
const SCAN_PAGE: usize = 500;
/// At most this many users are listed (the most recently active).
pub const MAX_USER_ROWS: usize = 200;

/// Everything on the admin page.
#[derive(Debug, Clone)]
pub struct AdminStats {
    /// The backend's name.
    pub backend: &'static str,
    /// Live sessions (`count`).
    pub count: u64,
    /// The current user's sessions, oldest first.
    pub mine: Vec<SessionSummary>,
    /// Users with live sessions (among those read), most recent activity first, at most
    /// [`MAX_USER_ROWS`].
    pub users: Vec<UserRow>,
    /// Users with live sessions among those read, listed or not.
    pub users_total: usize,
    /// Of those, the users active in the window.
    pub users_active: usize,
    /// The last hour, per minute.
    pub chart: HourChart,
    /// The activity window (`DEMO_ACTIVE_MINUTES`).
    pub window: Duration,
    /// Sessions read.
    pub scanned: usize,
    /// The scan limit (`DEMO_ADMIN_SCAN_LIMIT`).
    pub scan_limit: usize,
    /// Whether reading stopped at the limit.
    pub truncated: bool,
}

/// Gathers the admin page's figures for the user with key `user_key`.
pub async fn gather(state: &AppState, user_key: &str) -> Result<AdminStats> {
    let store = state.store();
    let config = state.config();
    let count = store.count().await?;
    state.record_live(count);
    let mut mine = store.list_user(user_key).await?;
    mine.sort_by_key(|s| s.lifetime.created_at);

    let now = SystemClock.now();
    let window = config.active_window;
    let mut tally = Tally::new(now, window);
    let mut stream = sessions_of(store, SCAN_PAGE);
    let mut truncated = false;
    while let Some(record) = stream.next().await {
        if tally.sessions() == config.admin_scan_limit {
            truncated = true;
            break;
        }
        let record = record?;
        let key = state.user_key(&record.data);
        tally.add(&record, key);
    }
    let scanned = tally.sessions();
    let start = tally.start();
    let (mut users, logins) = tally.finish();
    let users_total = users.len();
    let users_active = users.iter().filter(|u| u.active).count();
    users.truncate(MAX_USER_ROWS);
    let chart = HourChart {
        start,
        live: state.history().per_minute(now),
        logins,
    };
    Ok(AdminStats {
        backend: store.backend(),
        count,
        mine,
        users,
        users_total,
        users_active,
        chart,
        window,
        scanned,
        scan_limit: config.admin_scan_limit,
        truncated,
    })
}
