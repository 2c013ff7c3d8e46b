//! What a bulk copy needs from a value another writer stored, without decoding all of it:
//! whether it is a JSON object without our metadata, its user and its `created` time. Only
//! the members those come from are parsed into values; the rest are checked and skipped, so
//! the value can be copied byte for byte.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
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
///
/// The whole value is checked as JSON (as `serde_json` parses it into a map), but only the
/// members named by `user_keys` and `created` are kept, as raw slices, and only those are
/// parsed into values: the others are skipped without allocating. A member named twice
/// counts with its last value, as in a map.
pub fn probe_foreign(
    bytes: &[u8],
    user_keys: &[String],
) -> Result<Option<ForeignProbe>, DecodeError> {
    let wanted: Vec<&str> = user_keys
        .iter()
        .map(|path| path.split('.').next().unwrap_or(path))
        .chain(["created"])
        .collect();
    let mut seed = Members {
        wanted: &wanted,
        found: Vec::with_capacity(wanted.len()),
        reserved: false,
    };
    let failed = |source: Option<serde_json::Error>| DecodeError {
        reason: if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            "not JSON"
        } else {
            "JSON that is not an object"
        },
        source,
    };
    // Skipped strings are not checked for UTF-8 by the parser: the whole value is, first.
    let text = std::str::from_utf8(bytes)
        .map_err(|_| failed(serde_json::from_slice::<&RawValue>(bytes).err()))?;
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(&mut seed)
        .and_then(|()| de.end())
        .map_err(|e| failed(Some(e)))?;
    if seed.reserved {
        return Ok(None);
    }
    let mut members = Map::new();
    for name in &wanted {
        if members.contains_key(*name) {
            continue;
        }
        if let Some((_, value)) = seed.found.iter().rev().find(|(n, _)| n == name) {
            let value: Value = serde_json::from_str(value.get()).map_err(|e| DecodeError {
                reason: "not JSON",
                source: Some(e),
            })?;
            members.insert((*name).to_owned(), value);
        }
    }
    let user = user_ref(&members, user_keys).map(Cow::into_owned);
    Ok(Some(ForeignProbe { user, members }))
}

/// The top-level members [`probe_foreign`] keeps: the wanted ones as raw slices, and whether
/// the reserved member is there.
struct Members<'w, 'de> {
    wanted: &'w [&'w str],
    found: Vec<(Cow<'de, str>, &'de RawValue)>,
    reserved: bool,
}

impl<'de> Visitor<'de> for &mut Members<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(name)) = map.next_key()? {
            self.reserved |= name == RESERVED_KEY;
            if self.wanted.contains(&name.as_ref()) {
                let value: &'de RawValue = map.next_value()?;
                self.found.push((name, value));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// A member name, borrowed from the input unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
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

    /// The probe as it was first written (the whole object into a map of raw members): the
    /// visitor must answer the same, errors included.
    fn probe_by_map(bytes: &[u8], user_keys: &[String]) -> Option<Option<ForeignProbe>> {
        use std::collections::HashMap;
        let raw: HashMap<Cow<'_, str>, &RawValue> = serde_json::from_slice(bytes).ok()?;
        if raw.contains_key(RESERVED_KEY) {
            return Some(None);
        }
        let mut members = Map::new();
        let wanted = user_keys
            .iter()
            .map(|path| path.split('.').next().unwrap_or(path))
            .chain(["created"]);
        for name in wanted {
            if let (false, Some(value)) = (members.contains_key(name), raw.get(name)) {
                members.insert(name.to_owned(), serde_json::from_str(value.get()).ok()?);
            }
        }
        let user = user_ref(&members, user_keys).map(Cow::into_owned);
        Some(Some(ForeignProbe { user, members }))
    }

    #[test]
    fn agrees_with_a_probe_through_a_map() {
        let values: [&[u8]; 14] = [
            br#"{"user": {"sub": "a"}, "user": {"sub": "b"}, "created": 1, "created": 2.5}"#,
            br#"{"us\u0065r": {"username": 7}, "x": {"__session__": 1}}"#,
            br#"{"\u005f_session__": {"c": 1}, "user": {"sub": "a"}}"#,
            br#"{"a": [1, {"b": "\ud83d\ude00"}], "created": "1717171717"}"#,
            br#"  {} "#,
            br#"{"user": {"sub": ""}, "created": null}"#,
            b"{\"a\": \"\xff\"}",
            b"{\"a\": \"\xc3\xa9\"}",
            br#"{"a": "\x"}"#,
            br#"{"a": 1} x"#,
            br#"{"a": 01}"#,
            br#"{"a": "b",}"#,
            br#"[{"user": {"sub": "a"}}]"#,
            b"{\"a\": \"\x01\"}",
        ];
        for value in values {
            let probe = probe_foreign(value, &paths());
            assert_eq!(
                probe.as_ref().ok().cloned(),
                probe_by_map(value, &paths()),
                "{}",
                String::from_utf8_lossy(value)
            );
            if let Err(e) = probe {
                let first = value.iter().find(|b| !b.is_ascii_whitespace());
                let reason = if first == Some(&b'{') {
                    "not JSON"
                } else {
                    "JSON that is not an object"
                };
                assert_eq!(e.reason(), reason);
            }
        }
    }
}
