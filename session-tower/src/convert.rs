//! Conversions between tower-sessions' record shapes and session-core's.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use session_core::{Error, SessionData, Timestamp};
use time::OffsetDateTime;
use tower_sessions_core::session_store;

/// tower-sessions' data (a `HashMap`) as our data (a JSON object): the same top-level keys,
/// so the existing service reads `user`, `csrf_token`, … where it always did.
pub fn to_data(data: &HashMap<String, Value>) -> SessionData {
    data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Our data as tower-sessions' data.
pub fn from_data(data: SessionData) -> HashMap<String, Value> {
    data.into_iter().collect()
}

/// Time left from `now` until `expiry_date`, in whole milliseconds (our stores' resolution),
/// or `None` when the date is not after `now`: such a record is already expired.
pub fn ttl_until(expiry_date: OffsetDateTime, now: Timestamp) -> Option<Duration> {
    let expiry_ms = expiry_date.unix_timestamp_nanos().div_euclid(1_000_000);
    let left = expiry_ms - i128::from(now.as_millis());
    (left > 0).then(|| Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX)))
}

/// Our expiry instant as tower-sessions' `expiry_date`, saturating at the latest date `time`
/// can represent (our timestamps reach far beyond year 9999).
pub fn to_date(at: Timestamp) -> OffsetDateTime {
    let nanos = i128::from(at.as_millis()) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc())
}

/// Maps a store error onto tower-sessions' three string variants.
///
/// Our errors' messages never hold a token (ids appear as fingerprints), and nothing here
/// adds one: the message is the operation, the backend and our error's text.
pub fn to_tower_error(backend: &str, op: &str, err: Error) -> session_store::Error {
    let message = format!("{backend} session store: {op} failed: {err}");
    match err {
        // The data cannot be written as given (reserved `__session__` key, over the size limit).
        Error::InvalidData { .. } | Error::TooLarge { .. } => session_store::Error::Encode(message),
        // A stored record that does not read back as a session.
        Error::Corrupt { .. } => session_store::Error::Decode(message),
        // Preconditions the adapter handles before mapping (`create` retries `AlreadyExists`,
        // `save` drops `NotFound`, nothing here puts `IfVersion`); one reaching a caller is a
        // store failure like any other.
        Error::AlreadyExists | Error::NotFound | Error::Conflict => {
            session_store::Error::Backend(message)
        }
        // Unreachable backend, server errors, capacity, and anything added later.
        _ => session_store::Error::Backend(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_counts_whole_milliseconds_and_refuses_the_past() {
        let now = Timestamp(1_700_000_000_000);
        let date = to_date(now) + time::Duration::milliseconds(1500);
        assert_eq!(ttl_until(date, now), Some(Duration::from_millis(1500)));
        assert_eq!(ttl_until(to_date(now), now), None);
        assert_eq!(ttl_until(OffsetDateTime::UNIX_EPOCH, now), None);
        let before_epoch = OffsetDateTime::UNIX_EPOCH - time::Duration::days(1);
        assert_eq!(ttl_until(before_epoch, now), None);
    }

    #[test]
    fn dates_round_trip_and_saturate() {
        let at = Timestamp(1_700_000_000_123);
        assert_eq!(
            to_date(at).unix_timestamp_nanos(),
            1_700_000_000_123_000_000
        );
        assert_eq!(to_date(Timestamp(u64::MAX)).year(), 9999);
    }

    #[test]
    fn errors_map_to_their_kind() {
        let encode = to_tower_error(
            "memory",
            "save",
            Error::InvalidData {
                reason: "the key \"__session__\" is reserved".into(),
            },
        );
        assert!(matches!(encode, session_store::Error::Encode(ref m) if m.contains("__session__")));
        let too_large = to_tower_error("memory", "save", Error::TooLarge { size: 9, limit: 1 });
        assert!(matches!(too_large, session_store::Error::Encode(_)));
        let corrupt = to_tower_error("redis", "load", Error::corrupt("sid:0123abcd", "bad", None));
        assert!(
            matches!(corrupt, session_store::Error::Decode(ref m) if m.contains("sid:0123abcd"))
        );
        for precondition in [Error::AlreadyExists, Error::NotFound, Error::Conflict] {
            let err = to_tower_error("redis", "save", precondition);
            assert!(matches!(err, session_store::Error::Backend(ref m) if m.starts_with("redis")));
        }
    }
}
