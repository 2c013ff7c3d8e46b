//! What a bulk copy needs from a value another writer stored, without decoding all of it:
//! whether it is a JSON object without our metadata, its user and its `created` time. Only
//! the members those come from are parsed into values; the rest are checked and skipped, so
//! the value can be copied byte for byte.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use session_core::{user_ref, RESERVED_KEY};

use super::DecodeError;

/// A foreign value's user (as [`user_ref`] finds it) and its `created` member, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignProbe {
    /// The user the configured `user_keys` name, if any.
    pub user: Option<String>,
    /// Just the members the lifetime rules read (`created`), as a small object.
    pub members: Map<String, Value>,
}

/// Probes `bytes`: `Ok(None)` when the value holds our metadata member (decode it fully),
/// an error when it is not a JSON object.
pub fn probe_foreign(
    bytes: &[u8],
    user_keys: &[String],
) -> Result<Option<ForeignProbe>, DecodeError> {
    let raw: HashMap<Cow<'_, str>, &RawValue> =
        serde_json::from_slice(bytes).map_err(|e| DecodeError {
            reason: if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                "not JSON"
            } else {
                "JSON that is not an object"
            },
            source: Some(e),
        })?;
    if raw.contains_key(RESERVED_KEY) {
        return Ok(None);
    }
    let mut members = Map::new();
    let wanted = user_keys
        .iter()
        .map(|path| path.split('.').next().unwrap_or(path))
        .chain(["created"]);
    for name in wanted {
        if members.contains_key(name) {
            continue;
        }
        if let Some(value) = raw.get(name) {
            let value: Value = serde_json::from_str(value.get()).map_err(|e| DecodeError {
                reason: "not JSON",
                source: Some(e),
            })?;
            members.insert(name.to_owned(), value);
        }
    }
    let user = user_ref(&members, user_keys).map(Cow::into_owned);
    Ok(Some(ForeignProbe { user, members }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, Stored};

    fn paths() -> Vec<String> {
        vec!["user.sub".into(), "user.username".into()]
    }

    #[test]
    fn agrees_with_the_full_decode() {
        let value = br#"{"user": {"sub": "u-7", "x": [1, 2.50]}, "created": 1717171717.25, "n": 18446744073709551617}"#;
        let probe = probe_foreign(value, &paths()).unwrap().unwrap();
        let Ok(Stored::Foreign { data }) = decode(value) else {
            panic!("foreign")
        };
        assert_eq!(probe.user.as_deref(), Some("u-7"));
        assert_eq!(user_ref(&data, &paths()).map(Cow::into_owned), probe.user);
        assert_eq!(probe.members["created"], data["created"]);
    }

    #[test]
    fn ours_and_bad_values_are_told_apart() {
        let ours = br#"{"__session__":{"c":1,"t":2,"e":3,"a":0,"w":1,"u":""}}"#;
        assert_eq!(probe_foreign(ours, &paths()).unwrap(), None);
        for bad in [&b"not json {"[..], b"[1, 2]", b"\"s\"", b"{\"a\": }"] {
            assert!(probe_foreign(bad, &paths()).is_err(), "{bad:?}");
        }
        let none = probe_foreign(b"{\"csrf\": \"t\"}", &paths())
            .unwrap()
            .unwrap();
        assert_eq!(none.user, None);
    }
}
