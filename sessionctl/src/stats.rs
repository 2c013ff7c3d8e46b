//! `stats`: the analytics the existing service wished for, from one pass over the store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::{json, Value};
use session_store::{sessions_of, user_of, Clock as _, SessionConfig, SessionStore, SystemClock};

use crate::commands::SCAN_PAGE;
use crate::output::{Failure, Out};
use crate::redis_side::RedisSide;

/// Upper bounds of the TTL buckets, in seconds (the last bucket is open).
const BUCKETS: [(u64, &str); 8] = [
    (60, "< 1m"),
    (5 * 60, "1m-5m"),
    (15 * 60, "5m-15m"),
    (30 * 60, "15m-30m"),
    (60 * 60, "30m-1h"),
    (2 * 60 * 60, "1h-2h"),
    (6 * 60 * 60, "2h-6h"),
    (24 * 60 * 60, "6h-24h"),
];

pub async fn stats(
    store: Arc<dyn SessionStore>,
    redis: Option<Arc<dyn RedisSide>>,
    config: &SessionConfig,
    out: Out,
    active_minutes: u64,
) -> Result<(), Failure> {
    let live = store.count().await?;
    let memory = match &redis {
        Some(redis) => Some(redis.used_memory().await?),
        None => None,
    };
    let now = SystemClock.now();
    let window = Duration::from_secs(active_minutes.saturating_mul(60));
    let since = now.as_millis().saturating_sub(window.as_millis() as u64);

    let mut seen = HashSet::new();
    let mut users = HashSet::new();
    let mut active_users = HashSet::new();
    let (mut scanned, mut without_user, mut active_sessions) = (0u64, 0u64, 0u64);
    let mut buckets = [0u64; BUCKETS.len() + 1];
    let mut sessions = sessions_of(store.as_ref(), SCAN_PAGE);
    while let Some(record) = sessions.next().await {
        let record = record?;
        if !seen.insert(record.handle.clone()) {
            continue;
        }
        scanned += 1;
        let ttl = record.lifetime.remaining(now).as_secs();
        let bucket = BUCKETS
            .iter()
            .position(|(upper, _)| ttl < *upper)
            .unwrap_or(BUCKETS.len());
        buckets[bucket] += 1;
        // Last activity: every write and refresh sets idle expiry = activity + idle timeout.
        let lifetime = &record.lifetime;
        let last_activity = lifetime
            .idle_expires_at
            .as_millis()
            .saturating_sub(lifetime.idle_timeout.as_millis() as u64);
        let active = last_activity >= since;
        active_sessions += u64::from(active);
        match user_of(&record.data, &config.user_keys) {
            Some(user) => {
                if active {
                    active_users.insert(user.clone());
                }
                users.insert(user);
            }
            None => without_user += 1,
        }
    }

    let labels: Vec<&str> = BUCKETS
        .iter()
        .map(|(_, label)| *label)
        .chain(["> 24h"])
        .collect();
    out.print(
        || {
            let mut text = format!(
                "live sessions:        {live}\n\
                 distinct users:       {}\n\
                 sessions without user: {without_user}\n",
                users.len()
            );
            if let Some((bytes, human)) = &memory {
                text.push_str(&format!("redis memory used:    {human} ({bytes} bytes)\n"));
            }
            text.push_str(&format!(
                "active in last {active_minutes} min: {} user(s), {active_sessions} session(s)\n\
                 time to live:\n",
                active_users.len()
            ));
            for (label, n) in labels.iter().zip(buckets) {
                text.push_str(&format!("  {label:>8}  {n}\n"));
            }
            if scanned != live {
                text.push_str(&format!(
                    "(scanned {scanned} sessions; {} not in the count index, e.g. written by the \
                     existing service with SETEX)\n",
                    scanned.saturating_sub(live)
                ));
            }
            text
        },
        || {
            let ttl: Vec<Value> = labels
                .iter()
                .zip(buckets)
                .enumerate()
                .map(|(i, (label, n))| {
                    json!({"bucket": label, "max_seconds": BUCKETS.get(i).map(|b| b.0), "sessions": n})
                })
                .collect();
            json!({
                "ok": true,
                "live_sessions": live,
                "scanned_sessions": scanned,
                "distinct_users": users.len(),
                "sessions_without_user": without_user,
                "redis_used_memory_bytes": memory.as_ref().map(|m| m.0),
                "redis_used_memory_human": memory.as_ref().map(|m| m.1.clone()),
                "ttl_distribution": ttl,
                "active_minutes": active_minutes,
                "active_users": active_users.len(),
                "active_sessions": active_sessions,
            })
        },
    );
    Ok(())
}
