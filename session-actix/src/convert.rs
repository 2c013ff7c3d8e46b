//! Conversions between actix-session's shapes (state, TTL, errors) and session-core's.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use actix_session::storage::{LoadError, SaveError, UpdateError};
use serde_json::Value;
use session_core::{Error, SessionData};

/// actix-session's session state: each value is the JSON text of what the handler inserted
/// (`Session::insert` serializes with `serde_json::to_string`).
pub type State = HashMap<String, String>;

/// A state value that is not JSON text, so it has no place in a JSON object. Never holds the
/// value itself (session data may be secret), only its key.
#[derive(Debug)]
pub struct NotJson {
    key: String,
    source: serde_json::Error,
}

impl fmt::Display for NotJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session key {:?} does not hold JSON text", self.key)
    }
}

impl std::error::Error for NotJson {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // serde_json's messages name a position and what was expected, never the input.
        Some(&self.source)
    }
}

/// actix-session's state as our data: the same top-level keys, each value decoded from its
/// JSON text, so the existing service reads `user`, `csrf_token`, … as objects and strings
/// where it always did (not as strings of JSON). Keys are written in sorted order: actix's
/// `HashMap` has none, and a fixed one keeps stored records stable.
///
/// With the workspace's `arbitrary_precision`, numbers keep their digits, so
/// `from_data(to_data(s)) == s` for every state `Session::insert` can build (compact JSON).
pub fn to_data(state: &State) -> Result<SessionData, NotJson> {
    let mut entries: Vec<(&String, &String)> = state.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    entries
        .into_iter()
        .map(|(key, text)| match serde_json::from_str::<Value>(text) {
            Ok(value) => Ok((key.clone(), value)),
            Err(source) => Err(NotJson {
                key: key.clone(),
                source,
            }),
        })
        .collect()
}

/// Our data as actix-session's state: each value as compact JSON text, what
/// `Session::get` deserializes.
pub fn from_data(data: &SessionData) -> State {
    data.iter()
        .map(|(key, value)| (key.clone(), value.to_string()))
        .collect()
}

/// actix-session's TTL as our idle timeout, in whole milliseconds (our stores' resolution), or
/// `None` when it is under a millisecond (zero or negative): a session with that TTL is
/// already expired.
pub fn idle_timeout(ttl: &time::Duration) -> Option<Duration> {
    let ms = ttl.whole_milliseconds();
    (ms > 0).then(|| Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)))
}

/// `err` with what failed as context: the backend and the operation. Our errors' messages
/// never hold a token (ids appear as fingerprints) and nothing here adds one.
pub fn context(backend: &str, op: &str, err: impl Into<anyhow::Error>) -> anyhow::Error {
    err.into()
        .context(format!("{backend} session store: {op} failed"))
}

/// Our error from `load`: a stored record that does not read back as a session is
/// `Deserialization` (actix-session then starts an empty session under the same key),
/// everything else `Other` (a 500).
pub fn load_error(backend: &str, err: Error) -> LoadError {
    if matches!(err, Error::Corrupt { .. }) {
        LoadError::Deserialization(context(backend, "load", err))
    } else {
        LoadError::Other(context(backend, "load", err))
    }
}

/// Whether our error says the data cannot be written as given: the reserved `__session__`
/// key, or over the size limit. actix-session calls that a serialization failure.
fn is_encoding(err: &Error) -> bool {
    matches!(err, Error::InvalidData { .. } | Error::TooLarge { .. })
}

/// Our error from `save`: data that cannot be stored is `Serialization`, the rest `Other`.
pub fn save_error(backend: &str, err: Error) -> SaveError {
    if is_encoding(&err) {
        SaveError::Serialization(context(backend, "save", err))
    } else {
        SaveError::Other(context(backend, "save", err))
    }
}

/// Our error from `update`: data that cannot be stored is `Serialization`, the rest `Other`.
pub fn update_error(backend: &str, err: Error) -> UpdateError {
    if is_encoding(&err) {
        UpdateError::Serialization(context(backend, "update", err))
    } else {
        UpdateError::Other(context(backend, "update", err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pairs: &[(&str, &str)]) -> State {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_are_decoded_and_round_trip() {
        let s = state(&[
            ("user", r#"{"sub":"u-1","username":"aaron"}"#),
            ("csrf_token", r#""t""#),
            ("n", "42"),
            ("created", "1717171717.25"),
            ("tiny", "0.1"),
            ("big", "123456789012345678901234567890"),
            ("neg_zero", "-0.0"),
            ("flag", "true"),
            ("nothing", "null"),
            ("list", r#"[1,"two",{"three":3.0}]"#),
            ("text", r#""quote \" and \u00e9""#),
        ]);
        let data = to_data(&s).unwrap();
        assert_eq!(
            data["user"]["sub"], "u-1",
            "an object, not a string of JSON"
        );
        assert_eq!(data["csrf_token"], "t");
        assert_eq!(data["n"], 42);
        // Sorted keys: a stable record whatever the HashMap's order.
        let keys: Vec<_> = data.keys().cloned().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        let back = from_data(&data);
        for key in [
            "user",
            "csrf_token",
            "n",
            "created",
            "tiny",
            "big",
            "neg_zero",
            "list",
        ] {
            assert_eq!(back[key], s[key], "{key}");
        }
        // Escapes come back as serde_json writes them (what `Session::insert` would have).
        assert_eq!(
            back["text"],
            serde_json::to_string("quote \" and é").unwrap()
        );
        assert_eq!(back.len(), s.len());
    }

    #[test]
    fn text_that_is_not_json_is_refused_without_showing_it() {
        let err = to_data(&state(&[("ok", "1"), ("secret", "hunter2")])).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("\"secret\""), "{shown}");
        let chain = format!("{:#}", anyhow::Error::new(err));
        assert!(!chain.contains("hunter2"), "{chain}");
    }

    #[test]
    fn ttl_is_whole_milliseconds_and_refuses_nothing_left() {
        assert_eq!(
            idle_timeout(&time::Duration::hours(1)),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            idle_timeout(&time::Duration::microseconds(1500)),
            Some(Duration::from_millis(1))
        );
        assert_eq!(idle_timeout(&time::Duration::microseconds(999)), None);
        assert_eq!(idle_timeout(&time::Duration::ZERO), None);
        assert_eq!(idle_timeout(&time::Duration::seconds(-1)), None);
        assert_eq!(
            idle_timeout(&time::Duration::MAX),
            Some(Duration::from_millis(u64::MAX))
        );
    }

    #[test]
    fn errors_map_to_their_kind() {
        let corrupt = load_error("redis", Error::corrupt("sid:0123abcd", "bad", None));
        assert!(matches!(corrupt, LoadError::Deserialization(_)));
        let LoadError::Deserialization(inner) = corrupt else {
            unreachable!()
        };
        let chain = format!("{inner:#}");
        assert!(
            chain.starts_with("redis session store: load failed"),
            "{chain}"
        );
        assert!(chain.contains("sid:0123abcd"), "{chain}");
        assert!(matches!(
            load_error("redis", Error::NotFound),
            LoadError::Other(_)
        ));

        let reserved = || Error::InvalidData {
            reason: "the key \"__session__\" is reserved".into(),
        };
        assert!(matches!(
            save_error("memory", reserved()),
            SaveError::Serialization(_)
        ));
        assert!(matches!(
            save_error("memory", Error::TooLarge { size: 9, limit: 1 }),
            SaveError::Serialization(_)
        ));
        assert!(matches!(
            save_error("memory", Error::AlreadyExists),
            SaveError::Other(_)
        ));
        assert!(matches!(
            update_error("memory", reserved()),
            UpdateError::Serialization(_)
        ));
        assert!(matches!(
            update_error("memory", Error::Conflict),
            UpdateError::Other(_)
        ));
    }
}
