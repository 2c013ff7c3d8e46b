//! Session data: a JSON object, checked for size and reserved names before any write.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The data of a session: a JSON object, exactly what the existing service stores
/// (`user`, `access_token`, `created`, `csrf_token`, …).
///
/// The workspace builds `serde_json` with `arbitrary_precision`: a number keeps the digits it
/// was parsed from (a `time.time()` float, an integer past 64 bits, `-0.0`), so data another
/// writer stored comes back and goes out again unchanged.
pub type SessionData = Map<String, Value>;

/// The one top-level key stores may use for their own metadata inside a stored record. Data
/// that contains it is refused with [`Error::InvalidData`] by every store, so a record's
/// metadata can never be confused with a caller's data.
pub const RESERVED_KEY: &str = "__session__";

/// Checks data before a write: no [`RESERVED_KEY`], and an encoded size (compact JSON, as
/// `serde_json::to_vec` writes it) of at most `limit` bytes.
///
/// It allocates nothing and usually reads no string's bytes: an upper bound of the encoded
/// size (every string byte counted as its longest escape) settles data well under the limit,
/// and only data that could be near it is measured exactly. Stores call it on every write.
pub fn validate_data(data: &SessionData, limit: usize) -> Result<()> {
    if data.contains_key(RESERVED_KEY) {
        return Err(Error::InvalidData {
            reason: format!("the key {RESERVED_KEY:?} is reserved"),
        });
    }
    if object_len_bound(data) <= limit {
        return Ok(());
    }
    let size = encoded_len(data);
    if size > limit {
        return Err(Error::TooLarge { size, limit });
    }
    Ok(())
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

/// Length in bytes of the compact JSON encoding of `data` (what `serde_json::to_vec` would
/// produce), computed by walking the values without encoding them: the size check every write
/// makes costs a scan of the strings, not a serialization.
pub fn encoded_len(data: &SessionData) -> usize {
    object_len(data)
}

/// At least [`encoded_len`]: each string byte as its longest escape (`\\u00XX`, six bytes).
fn object_len_bound(map: &SessionData) -> usize {
    let members: usize = map
        .iter()
        .map(|(k, v)| 2 + 6 * k.len() + 1 + value_len_bound(v))
        .sum();
    2 + map.len() + members
}

fn value_len_bound(value: &Value) -> usize {
    match value {
        Value::String(s) => 2 + 6 * s.len(),
        Value::Array(items) => 2 + items.len() + items.iter().map(value_len_bound).sum::<usize>(),
        Value::Object(map) => object_len_bound(map),
        // Numbers keep the digits they were written with (`arbitrary_precision`), so they
        // are measured, not bounded.
        other => value_len(other),
    }
}

fn object_len(map: &SessionData) -> usize {
    // `{}` plus a comma between members, and per member `"key":value`.
    let members: usize = map
        .iter()
        .map(|(k, v)| string_len(k) + 1 + value_len(v))
        .sum();
    2 + map.len().saturating_sub(1) + members
}

fn value_len(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(n) => number_len(n),
        Value::String(s) => string_len(s),
        Value::Array(items) => {
            2 + items.len().saturating_sub(1) + items.iter().map(value_len).sum::<usize>()
        }
        Value::Object(map) => object_len(map),
    }
}

/// A number's `Display` is the text serde_json writes for it (itoa / ryu, or the stored digits
/// under `arbitrary_precision`); count it without allocating.
fn number_len(n: &serde_json::Number) -> usize {
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = std::fmt::Write::write_fmt(&mut count, format_args!("{n}"));
    count.0
}

/// A string with its quotes and serde_json's escapes: `"` and `\\` and the short control
/// escapes take two bytes, other control characters six (`\\u00XX`), everything else itself.
fn string_len(s: &str) -> usize {
    if !needs_escape(s.as_bytes()) {
        return 2 + s.len();
    }
    let extra: usize = s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | 0x08 | 0x09 | 0x0A | 0x0C | 0x0D => 1,
            0x00..=0x1F => 5,
            _ => 0,
        })
        .sum();
    2 + s.len() + extra
}

/// Whether any byte needs an escape. Most strings need none, so this is the hot path of every
/// write's size check: 32-byte chunks OR-reduced without branches (vector compares), then the
/// rest eight bytes at a time (SWAR), then at most seven single bytes.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let special = |b: u8| u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\');
    let mut chunks = bytes.chunks_exact(32);
    for chunk in &mut chunks {
        let mut block = [0u8; 32];
        block.copy_from_slice(chunk);
        // A fixed-size block with no early exit: the compiler turns this into vector compares.
        let mut found = 0u8;
        for b in block {
            found |= special(b);
        }
        if found != 0 {
            return true;
        }
    }
    // Non-zero iff a byte of `x` is below `n` (n <= 128), or zero: the classic bit tricks.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGHS;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut words = chunks.remainder().chunks_exact(8);
    for word in &mut words {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        let x = u64::from_le_bytes(le);
        if below(x, 0x20) | zero(x ^ (ONES * 0x22)) | zero(x ^ (ONES * 0x5C)) != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| special(b) != 0)
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
    user_ref(data, paths).map(Cow::into_owned)
}

/// [`user_of`] without copying a string user out of the data (a number is formatted).
pub fn user_ref<'d>(data: &'d SessionData, paths: &[String]) -> Option<Cow<'d, str>> {
    paths.iter().find_map(|path| {
        let mut parts = path.as_str();
        let mut map = data;
        let value = loop {
            match parts.as_bytes().iter().position(|&b| b == b'.') {
                Some(dot) => {
                    map = member(map, &parts[..dot])?.as_object()?;
                    parts = &parts[dot + 1..];
                }
                None => break member(map, parts)?,
            }
        };
        match value {
            Value::String(s) if !s.is_empty() => Some(Cow::Borrowed(s.as_str())),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            _ => None,
        }
    })
}

/// `map[key]`. Session objects are small: comparing a few keys beats hashing the one asked.
fn member<'d>(map: &'d SessionData, key: &str) -> Option<&'d Value> {
    if map.len() <= 16 {
        map.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get(key)
    }
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
        validate_data(&data, size).unwrap();
        assert!(matches!(
            validate_data(&data, size - 1),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn encoded_len_matches_serde_json() {
        let samples = [
            json!({}),
            json!({"a": null, "b": true, "c": false, "d": [], "e": {}, "f": [1, -2, 3.5]}),
            json!({"esc": "q\"b\\s\u{8}\t\n\u{c}\r\u{0}\u{1f}\u{7f}é€😀", "k\"ey": "v"}),
            json!({"f": [1795926903.3024395, -0.0, 1e300, 5e-324, 0.1, u64::MAX, i64::MIN]}),
            json!({"g": [-1.7976931348623157e308, -2.2250738585072014e-308, 123456789012.25]}),
            serde_json::from_str(
                r#"{"big": [18446744073709551617, -0.0, 1.0000000000000000000001e-7]}"#,
            )
            .unwrap(),
            json!({"user": {"sub": "u-1", "roles": ["a", "b"], "n": {"deep": [[], [{}]]}}}),
        ];
        for sample in samples {
            let data = obj(sample);
            assert_eq!(
                encoded_len(&data),
                serde_json::to_vec(&data).unwrap().len(),
                "{data:?}"
            );
            assert!(object_len_bound(&data) >= encoded_len(&data), "{data:?}");
        }
    }

    #[test]
    fn escapes_are_found_at_every_position_and_length() {
        for len in 0..80 {
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1F, b'\n'] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    assert!(needs_escape(&bytes), "{len} {at} {special}");
                }
                let mut bytes = vec![b'a'; len];
                bytes[at] = 0x7F;
                assert!(!needs_escape(&bytes), "{len} {at} DEL");
                bytes[at] = 0xC3;
                assert!(!needs_escape(&bytes), "{len} {at} non-ASCII");
                bytes[at] = b' ';
                assert!(!needs_escape(&bytes), "{len} {at} space");
            }
        }
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
