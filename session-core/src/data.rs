//! Session data: a JSON object, checked for size and reserved names before any write.

use std::io;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The data of a session: a JSON object, exactly what the existing service stores
/// (`user`, `access_token`, `created`, `csrf_token`, …).
pub type SessionData = Map<String, Value>;

/// The one top-level key stores may use for their own metadata inside a stored record. Data
/// that contains it is refused with [`Error::InvalidData`] by every store, so a record's
/// metadata can never be confused with a caller's data.
pub const RESERVED_KEY: &str = "__session__";

/// Checks data before a write: no [`RESERVED_KEY`], and an encoded size (compact JSON, as
/// `serde_json::to_vec` writes it) of at most `limit` bytes. Returns the encoded size.
///
/// Counting uses a sink that allocates nothing, so stores can call it on every write.
pub fn validate_data(data: &SessionData, limit: usize) -> Result<usize> {
    if data.contains_key(RESERVED_KEY) {
        return Err(Error::InvalidData {
            reason: format!("the key {RESERVED_KEY:?} is reserved"),
        });
    }
    let size = encoded_len(data);
    if size > limit {
        return Err(Error::TooLarge { size, limit });
    }
    Ok(size)
}

/// [`validate_data`] for a store that sends the encoding anyway: the same checks and the
/// same errors, with the compact JSON (`serde_json::to_vec`) returned instead of counted, so
/// the data is serialized once per write.
///
/// ```
/// use serde_json::json;
/// use session_core::{encode_data, Error};
///
/// let data = json!({"user": {"sub": "u-1"}}).as_object().unwrap().clone();
/// assert_eq!(encode_data(&data, 1024)?, br#"{"user":{"sub":"u-1"}}"#);
/// assert!(matches!(encode_data(&data, 4), Err(Error::TooLarge { size: 22, limit: 4 })));
/// # Ok::<(), session_core::Error>(())
/// ```
pub fn encode_data(data: &SessionData, limit: usize) -> Result<Vec<u8>> {
    if data.contains_key(RESERVED_KEY) {
        return Err(Error::InvalidData {
            reason: format!("the key {RESERVED_KEY:?} is reserved"),
        });
    }
    // Serializing a Map<String, Value> into a Vec cannot fail.
    let body = serde_json::to_vec(data).unwrap_or_else(|_| b"{}".to_vec());
    if body.len() > limit {
        return Err(Error::TooLarge {
            size: body.len(),
            limit,
        });
    }
    Ok(body)
}

/// Length in bytes of the compact JSON encoding of `data`.
pub fn encoded_len(data: &SessionData) -> usize {
    struct Counter(usize);
    impl io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a Map<String, Value> cannot fail except through the writer, which never fails.
    let _ = serde_json::to_writer(&mut counter, data);
    counter.0
}

/// The user a session belongs to: the first of `paths` (dotted, like `user.sub`) that leads
/// to a non-empty string or a number. Sessions with no user are not indexed by user.
///
/// ```
/// use serde_json::json;
/// use session_core::user_of;
///
/// let data = json!({"user": {"username": "aaron", "sub": "u-1"}});
/// let paths = ["user.sub".to_string(), "user.username".to_string()];
/// assert_eq!(user_of(data.as_object().unwrap(), &paths).as_deref(), Some("u-1"));
/// ```
pub fn user_of(data: &SessionData, paths: &[String]) -> Option<String> {
    paths.iter().find_map(|path| {
        let mut parts = path.split('.');
        let mut value = data.get(parts.next()?)?;
        for part in parts {
            value = value.as_object()?.get(part)?;
        }
        match value {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> SessionData {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn size_limit_counts_compact_json() {
        let data = obj(json!({"a": "xyz"}));
        let size = serde_json::to_vec(&data).unwrap().len();
        assert_eq!(validate_data(&data, size).unwrap(), size);
        assert!(matches!(
            validate_data(&data, size - 1),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn reserved_key_is_refused() {
        let data = obj(json!({ RESERVED_KEY: 1 }));
        assert!(matches!(
            validate_data(&data, 1 << 20),
            Err(Error::InvalidData { .. })
        ));
    }

    #[test]
    fn user_key_falls_back_in_order() {
        let paths = vec!["user.sub".to_string(), "user.username".to_string()];
        assert_eq!(
            user_of(&obj(json!({"user": {"username": "bo"}})), &paths).unwrap(),
            "bo"
        );
        assert_eq!(
            user_of(&obj(json!({"user": {"sub": 7}})), &paths).unwrap(),
            "7"
        );
        assert_eq!(user_of(&obj(json!({"user": {"sub": ""}})), &paths), None);
        assert_eq!(user_of(&obj(json!({"user": "bo"})), &paths), None);
        assert_eq!(user_of(&obj(json!({})), &paths), None);
    }
}
