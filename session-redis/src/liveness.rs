//! Who decides that a session is live (layout v2): Redis.
//!
//! A session is live while its key exists, as for the existing service, and while its
//! absolute expiry (if any) has not passed. Every write and refresh sets the key's TTL to
//! exactly the session's expiry, so a `SESSION_TTL=7200` session has TTL 7200, and another
//! writer's `EXPIRE` or `SETEX` extends it for this store too.
//!
//! The store's clock only stamps times: `created_at`, and the expiry this store set, which the
//! expiry index keeps as the member's score so reads report it to the millisecond. A read
//! reports that score unless the key's TTL shows another writer moved the expiry (more than
//! [`EXPIRY_JITTER`] later, or more than [`EXPIRY_SLACK`] earlier), then where the TTL ends.
//! `prelude.lua`'s `reported_expiry` is the same rule.

use std::time::Duration;

use session_core::{Lifetime, Timestamp};

/// The shortest TTL a write gives a key, in ms: a session imported or copied with moments left
/// keeps its key long enough for the next operation to see it (its recorded expiry, which
/// reads report, stays exact). Such a session may outlive its expiry by up to this in Redis.
pub const MIN_KEY_TTL_MS: u64 = 1000;

/// How much earlier than the recorded expiry a key's TTL may end before reads report the TTL
/// instead: covers the time between a write and a read (a TTL counts down in real time, a
/// test's manual clock may not).
pub const EXPIRY_SLACK: Duration = Duration::from_secs(10);

/// How much later: the store reads its clock before Redis runs the write, so the key outlives
/// the recorded expiry by the write's own latency (and the two clocks' millisecond ticks).
pub const EXPIRY_JITTER: Duration = Duration::from_secs(1);

/// The expiry a read reports, from the key's `PTTL` (`-2` gone, `-1` no TTL), its expiry
/// index score (if indexed) and the session's idle timeout; `None` when the key is gone.
pub fn reported_expiry(
    pttl: i64,
    score: Option<u64>,
    now: Timestamp,
    idle_timeout: Duration,
) -> Option<Timestamp> {
    match pttl {
        -1 => Some(match score {
            Some(score) if score > now.0 => Timestamp(score),
            _ => now.saturating_add(idle_timeout),
        }),
        ms if ms > 0 => {
            let ends = now.0.saturating_add(ms.unsigned_abs());
            let slack = u64::try_from(EXPIRY_SLACK.as_millis()).unwrap_or(u64::MAX);
            let jitter = u64::try_from(EXPIRY_JITTER.as_millis()).unwrap_or(u64::MAX);
            Some(match score {
                Some(score)
                    if ends <= score.saturating_add(jitter)
                        && ends.saturating_add(slack) >= score =>
                {
                    Timestamp(score)
                }
                _ => Timestamp(ends),
            })
        }
        _ => None,
    }
}

/// The expiry index score that speaks for a session of ours with this `lifetime` (as its
/// metadata gives it): an entry scored before the session was created belongs to an earlier
/// session under the same id (a native create leaves such an entry until the create's next
/// step or `count` puts it right, see `store/native.rs`), and the session then ends where its
/// creation put it. `prelude.lua`'s `expiry_of` is the same rule.
pub fn current_score(score: Option<u64>, lifetime: &Lifetime) -> Option<u64> {
    score.map(|s| {
        if s >= lifetime.created_at.0 {
            return s;
        }
        let idle = lifetime.created_at.saturating_add(lifetime.idle_timeout).0;
        lifetime.absolute_expires_at.map_or(idle, |a| a.0.min(idle))
    })
}

/// `lifetime` with the idle expiry Redis reports, or `None` if the session is not live:
/// gone, or past its absolute expiry.
pub fn live_lifetime(
    mut lifetime: Lifetime,
    pttl: i64,
    score: Option<u64>,
    now: Timestamp,
) -> Option<Lifetime> {
    let expiry = reported_expiry(pttl, score, now, lifetime.idle_timeout)?;
    if lifetime.absolute_expires_at.is_some_and(|a| now >= a) {
        return None;
    }
    lifetime.idle_expires_at = match lifetime.absolute_expires_at {
        Some(a) => expiry.min(a),
        None => expiry,
    };
    Some(lifetime)
}

/// A score as `ZSCORE` answers it (an integer in decimal; Redis may format it as a float).
pub fn parse_score(text: &str) -> Option<u64> {
    text.parse::<u64>().ok().or_else(|| {
        let f = text.parse::<f64>().ok()?;
        (f.is_finite() && f >= 0.0).then_some(f as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(100);

    #[test]
    fn an_entry_older_than_the_session_is_an_earlier_session_s() {
        let lifetime = Lifetime::starting(Timestamp(1_000_000), T, None);
        // Scored at or after creation: the entry speaks for this session.
        assert_eq!(current_score(Some(1_000_000), &lifetime), Some(1_000_000));
        assert_eq!(current_score(Some(1_250_000), &lifetime), Some(1_250_000));
        // Before it: the expiry the creation set, capped by the absolute expiry.
        assert_eq!(current_score(Some(999_999), &lifetime), Some(1_100_000));
        let capped = Lifetime::starting(Timestamp(1_000_000), T, Some(Duration::from_secs(50)));
        assert_eq!(current_score(Some(10), &capped), Some(1_050_000));
        assert_eq!(current_score(None, &lifetime), None);
    }

    #[test]
    fn the_recorded_expiry_is_reported_while_the_ttl_agrees() {
        let now = Timestamp(1_000_000);
        // Written with 100 s, read 3 ms later: the recorded expiry, exactly.
        assert_eq!(
            reported_expiry(99_997, Some(1_100_000), now, T),
            Some(Timestamp(1_100_000))
        );
        // The write reached Redis 5 ms after the store read its clock.
        assert_eq!(
            reported_expiry(100_005, Some(1_100_000), now, T),
            Some(Timestamp(1_100_000))
        );
        // Another writer's EXPIRE 7200: where the TTL ends.
        assert_eq!(
            reported_expiry(7_200_000, Some(1_100_000), now, T),
            Some(Timestamp(8_200_000))
        );
        // Another writer's SETEX with a much shorter TTL.
        assert_eq!(
            reported_expiry(5_000, Some(1_100_000), now, T),
            Some(Timestamp(1_005_000))
        );
        // Not indexed (the existing service's own session).
        assert_eq!(
            reported_expiry(5_000, None, now, T),
            Some(Timestamp(1_005_000))
        );
        assert_eq!(reported_expiry(-2, Some(1_100_000), now, T), None);
        // No TTL: the score while it is ahead, else as if just used.
        assert_eq!(
            reported_expiry(-1, Some(1_000_500), now, T),
            Some(Timestamp(1_000_500))
        );
        assert_eq!(
            reported_expiry(-1, Some(999_000), now, T),
            Some(Timestamp(1_100_000))
        );
    }

    #[test]
    fn absolute_expiry_caps_and_ends_life() {
        let life = Lifetime {
            created_at: Timestamp(0),
            idle_timeout: T,
            idle_expires_at: Timestamp(0),
            absolute_expires_at: Some(Timestamp(1_050_000)),
        };
        let now = Timestamp(1_000_000);
        let live = live_lifetime(life, 7_200_000, None, now).unwrap();
        assert_eq!(live.idle_expires_at, Timestamp(1_050_000));
        assert!(live_lifetime(life, 7_200_000, None, Timestamp(1_050_000)).is_none());
    }

    #[test]
    fn scores_parse_as_redis_prints_them() {
        assert_eq!(parse_score("1795926903302"), Some(1_795_926_903_302));
        assert_eq!(parse_score("1.795926903302e12"), Some(1_795_926_903_302));
        assert_eq!(parse_score("x"), None);
    }
}
