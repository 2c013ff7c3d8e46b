//! The stored value: the session data as a JSON object at the top level (what the existing
//! service reads and writes), plus one reserved member written first:
//!
//! ```text
//! {"__session__":{"c":C,"t":T,"a":A,"w":W,"u":"TAG"},"user":{...},"csrf_token":"..."}
//! ```
//!
//! `c` created_at ms, `t` idle timeout ms, `a` absolute expiry ms (0 = none), `w` write counter (+1 on every write, so two writes never
//! leave identical bytes and a content-hash version cannot suffer ABA), `u` the user's tag
//! or `""`. The idle expiry is not in the value: the key's TTL and the expiry index hold it
//! (see [`liveness`](crate::liveness)), so a refresh never rewrites the value. Values written
//! before this layout carry it as `e` after `t`; they still decode (`e` is ignored).
//!
//! The service's `json.loads` keeps the member and `json.dumps` writes it back with spaces
//! (`", "`, `": "`), so readers here, in Rust and in Lua, accept any JSON whitespace. Values
//! without the member are *foreign*: written by the existing service with `SETEX`.
//!
//! The [`Version`] of a stored value is the first 16 hex digits of the SHA-1 of its bytes, the
//! same `string.sub(redis.sha1hex(v), 1, 16)` the scripts compare, so a direct rewrite by any
//! writer is seen as a conflict.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use session_core::{Lifetime, SessionData, Timestamp, Version, RESERVED_KEY};
use sha1::{Digest, Sha1};

mod compact;
mod probe;
mod visit;

pub use probe::{probe_foreign, ForeignProbe};

/// The fields of the reserved member, in their stored order.
const FIELDS: [&str; 5] = ["c", "t", "a", "w", "u"];

/// The field values of before layout v2 also had (after `t`), read and ignored.
const LEGACY_FIELD: &str = "e";

/// Largest millisecond value Lua's doubles hold exactly; larger timestamps are refused.
const MAX_EXACT_MS: u64 = 1 << 53;

/// The store's metadata inside a stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// `c`: when the session was created.
    pub created_at: Timestamp,
    /// `t`: idle timeout.
    pub idle_timeout: Duration,
    /// `a`: absolute expiry (stored as 0 when there is none).
    pub absolute_expires_at: Option<Timestamp>,
    /// `w`: write counter.
    pub writes: u64,
    /// `u`: the user's tag ([`user_hex`](crate::keys::user_hex)), empty when the session has no user.
    pub user_hex: String,
}

impl Meta {
    /// The session lifetime this metadata describes, with the idle expiry Redis holds for
    /// it (see [`liveness`](crate::liveness)).
    pub fn lifetime(&self, idle_expires_at: Timestamp) -> Lifetime {
        Lifetime {
            created_at: self.created_at,
            idle_timeout: self.idle_timeout,
            idle_expires_at,
            absolute_expires_at: self.absolute_expires_at,
        }
    }

    /// The metadata a store keeps for `lifetime` (the idle expiry goes to Redis instead).
    pub fn of(lifetime: &Lifetime, writes: u64, user_hex: String) -> Self {
        Meta {
            created_at: lifetime.created_at,
            idle_timeout: lifetime.idle_timeout,
            absolute_expires_at: lifetime.absolute_expires_at,
            writes,
            user_hex,
        }
    }
}

/// A decoded stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// Written by this library: metadata and data.
    Ours {
        /// The reserved member.
        meta: Meta,
        /// The data, without the reserved member.
        data: SessionData,
    },
    /// Written by another writer without metadata (the existing service's `SETEX`).
    Foreign {
        /// The whole object.
        data: SessionData,
    },
}

/// Why a stored value is not a session. Never contains the value itself.
#[derive(Debug)]
pub struct DecodeError {
    reason: &'static str,
    source: Option<serde_json::Error>,
}

impl DecodeError {
    fn new(reason: &'static str) -> Self {
        DecodeError {
            reason,
            source: None,
        }
    }

    /// What is wrong, in a few words.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The JSON error, when the value is not JSON at all.
    pub fn into_source(self) -> Option<serde_json::Error> {
        self.source
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// Decodes a stored value.
///
/// ```
/// use session_redis::codec::{decode, Stored};
///
/// let python = br#"{"__session__": {"c": 1, "t": 100, "e": 101, "a": 0, "w": 3, "u": ""}, "csrf_token": "x"}"#;
/// let Stored::Ours { meta, data } = decode(python)? else { panic!() };
/// assert_eq!(meta.writes, 3);
/// assert_eq!(data.len(), 1);
/// # Ok::<(), session_redis::codec::DecodeError>(())
/// ```
pub fn decode(bytes: &[u8]) -> Result<Stored, DecodeError> {
    // Sessions are read far more often than they are corrupt: try the compact form this
    // library writes, then the one-pass decoder (any spacing, legacy fields, foreign values),
    // and let the full one below judge (and name the fault of) whatever both give up on.
    compact::decode_compact(bytes)
        .or_else(|| visit::decode_one_pass(bytes))
        .map_or_else(|| decode_full(bytes), Ok)
}

/// Decodes through a `Value`: slower, but it tells every kind of bad value apart.
fn decode_full(bytes: &[u8]) -> Result<Stored, DecodeError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| DecodeError {
        reason: "not JSON",
        source: Some(e),
    })?;
    let Value::Object(mut data) = value else {
        return Err(DecodeError::new("JSON that is not an object"));
    };
    if !data.contains_key(RESERVED_KEY) {
        return Ok(Stored::Foreign { data });
    }
    // The scripts find the metadata by matching the start of the value, so it must come first.
    if data.keys().next().map(String::as_str) != Some(RESERVED_KEY) {
        return Err(DecodeError::new("metadata member is not first"));
    }
    let meta = data.shift_remove(RESERVED_KEY).unwrap_or(Value::Null);
    let meta = parse_meta(&meta).ok_or(DecodeError::new("malformed metadata member"))?;
    Ok(Stored::Ours { meta, data })
}

fn parse_meta(value: &Value) -> Option<Meta> {
    let fields = value.as_object()?;
    // Exactly the fields in order; a value from before layout v2 also has `e` after `t`.
    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
    let legacy = [
        FIELDS[0],
        FIELDS[1],
        LEGACY_FIELD,
        FIELDS[2],
        FIELDS[3],
        FIELDS[4],
    ];
    if names != FIELDS && names != legacy {
        return None;
    }
    let ms = |name: &str| fields.get(name)?.as_u64().filter(|&n| n < MAX_EXACT_MS);
    let user_hex = fields.get("u")?.as_str()?;
    if !user_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let absolute = ms("a")?;
    Some(Meta {
        created_at: Timestamp(ms("c")?),
        idle_timeout: Duration::from_millis(ms("t")?),
        absolute_expires_at: (absolute > 0).then_some(Timestamp(absolute)),
        writes: ms("w")?,
        user_hex: user_hex.to_owned(),
    })
}

/// The canonical encoding: compact metadata first, then the data members. The scripts build
/// the same bytes (see `prelude.lua`'s `compose`).
pub fn encode(meta: &Meta, data: &SessionData) -> Vec<u8> {
    compose(meta, &encode_body(data))
}

/// [`encode`] given `body = encode_body(data)`: what a native write stores.
pub fn compose(meta: &Meta, body: &[u8]) -> Vec<u8> {
    let prefix = meta_prefix(meta);
    let (joint, tail) = (joint(body), tail(body));
    let mut out = Vec::with_capacity(prefix.len() + joint.len() + tail.len());
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(joint);
    out.extend_from_slice(tail);
    out
}

/// The version of `encode(meta, data)`, given `body = encode_body(data)`, hashed piecewise so
/// the value is never assembled: write scripts compose the value and return only the
/// metadata, and hashing here keeps that work off the single-threaded server.
pub fn version_of_encoded(meta: &Meta, body: &[u8]) -> Version {
    let mut hasher = Sha1::new();
    hasher.update(meta_prefix(meta).as_bytes());
    hasher.update(joint(body));
    hasher.update(tail(body));
    first_64_bits(&hasher.finalize())
}

/// What write scripts receive: the compact data object without its opening brace, so they
/// can append it to the metadata without copying it first (`}` for no data).
pub fn tail(body: &[u8]) -> &[u8] {
    body.get(1..).unwrap_or(b"}")
}

fn joint(body: &[u8]) -> &'static [u8] {
    if body.len() > 2 {
        b","
    } else {
        b""
    }
}

/// `{"__session__":{...}` without the closing brace or the data.
pub fn meta_prefix(meta: &Meta) -> String {
    format!(
        "{{\"{RESERVED_KEY}\":{{\"c\":{},\"t\":{},\"a\":{},\"w\":{},\"u\":\"{}\"}}",
        meta.created_at.0,
        meta.idle_timeout.as_millis(),
        meta.absolute_expires_at.map_or(0, |a| a.0),
        meta.writes,
        meta.user_hex,
    )
}

/// `object` (a JSON object another writer stored) with `meta` spliced in as its first member,
/// every byte of its own members kept as written (whitespace and number digits included):
/// how a bulk copy gives such a session metadata without re-encoding it. `object` must be
/// a JSON object (checked by the caller, e.g. with [`probe_foreign`]).
pub fn with_meta(meta: &Meta, object: &[u8]) -> Vec<u8> {
    let prefix = meta_prefix(meta);
    let open = object.iter().position(|&b| b == b'{').map_or(0, |i| i + 1);
    let rest = &object[open..];
    let empty = rest
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_none_or(|&b| b == b'}');
    let mut out = Vec::with_capacity(prefix.len() + object.len() + 1);
    out.extend_from_slice(prefix.as_bytes());
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

/// The data alone as compact JSON (`{...}`): what write scripts receive and prefix with the
/// metadata.
pub fn encode_body(data: &SessionData) -> Vec<u8> {
    // Serializing a Map<String, Value> into a Vec cannot fail.
    serde_json::to_vec(data).unwrap_or_else(|_| b"{}".to_vec())
}

/// A fresh write counter for a value that has none yet: microseconds of wall time, strictly
/// increasing within the process. Two incarnations of one id then never share their bytes (so
/// a stale save cannot pass the content-hash check), even when deleted and created again with
/// the same data in the same millisecond. Stays far below 2^53, where Lua's doubles are exact.
pub fn fresh_writes() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(0));
    let previous = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(micros.max(last + 1))
        })
        .unwrap_or(0);
    micros.max(previous + 1)
}

/// The version of stored bytes: the first 64 bits of their SHA-1.
pub fn version_of(bytes: &[u8]) -> Version {
    first_64_bits(&Sha1::digest(bytes))
}

fn first_64_bits(digest: &[u8]) -> Version {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Version(u64::from_be_bytes(first))
}

/// A version as the scripts compare it: 16 lowercase hex digits.
pub fn version_hex(version: Version) -> String {
    format!("{:016x}", version.0)
}

/// Parses [`version_hex`] output.
pub fn parse_version_hex(text: &[u8]) -> Option<Version> {
    let text = std::str::from_utf8(text).ok()?;
    (text.len() == 16)
        .then(|| u64::from_str_radix(text, 16).ok())
        .flatten()
        .map(Version)
}

/// When a foreign session was created: its `"created"` float seconds, if usable. The
/// scripts apply the same rule (`prelude.lua`'s `foreign_created`).
pub fn foreign_created(data: &Map<String, Value>) -> Option<Timestamp> {
    let secs = data.get("created")?.as_f64()?;
    let ms = (secs * 1000.0).floor();
    (ms.is_finite() && ms >= 0.0 && ms < MAX_EXACT_MS as f64).then_some(Timestamp(ms as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn with_meta_keeps_every_byte_of_the_members() {
        let python = br#"{"user": {"sub": "u-1"}, "created": 1795926903.3024395, "n": -0.0}"#;
        let spliced = with_meta(&meta(), python);
        let Ok(Stored::Ours { meta: m, data }) = decode(&spliced) else {
            panic!("ours")
        };
        assert_eq!(m, meta());
        assert!(spliced.ends_with(&python[1..]));
        assert_eq!(data["created"].to_string(), "1795926903.3024395");
        let Ok(Stored::Ours { data, .. }) = decode(&with_meta(&meta(), b" { } ")) else {
            panic!("ours")
        };
        assert!(data.is_empty());
    }

    fn meta() -> Meta {
        Meta {
            created_at: Timestamp(1_700_000_000_000),
            idle_timeout: Duration::from_secs(7200),
            absolute_expires_at: None,
            writes: 1,
            user_hex: "616172".into(),
        }
    }

    #[test]
    fn encode_then_decode_round_trips_with_meta_first() {
        let data = json!({"user": {"sub": "u"}, "n": 1.5})
            .as_object()
            .unwrap()
            .clone();
        let bytes = encode(&meta(), &data);
        assert!(bytes.starts_with(b"{\"__session__\":{\"c\":1700000000000,"));
        assert_eq!(
            decode(&bytes).unwrap(),
            Stored::Ours {
                meta: meta(),
                data: data.clone()
            }
        );
        let empty = encode(&meta(), &Map::new());
        assert_eq!(
            decode(&empty).unwrap(),
            Stored::Ours {
                meta: meta(),
                data: Map::new()
            }
        );
    }

    #[test]
    fn python_spacing_is_accepted() {
        let v = br#"{"__session__": {"c": 1, "t": 2, "e": 3, "a": 4, "w": 5, "u": "ab"}, "x": 1}"#;
        let Stored::Ours { meta, data } = decode(v).unwrap() else {
            panic!()
        };
        assert_eq!(meta.absolute_expires_at, Some(Timestamp(4)));
        assert_eq!(data["x"], 1);
    }

    #[test]
    fn foreign_and_corrupt_values_are_told_apart() {
        assert!(matches!(
            decode(br#"{"user": {}}"#).unwrap(),
            Stored::Foreign { .. }
        ));
        for (bad, why) in [
            (&b"not json"[..], "not JSON"),
            (b"[1,2]", "JSON that is not an object"),
            (b"\"s\"", "JSON that is not an object"),
            (
                br#"{"x":1,"__session__":{"c":1,"t":2,"e":3,"a":4,"w":5,"u":""}}"#,
                "metadata member is not first",
            ),
            (br#"{"__session__":{"c":1}}"#, "malformed metadata member"),
            (
                br#"{"__session__":{"c":-1,"t":2,"e":3,"a":4,"w":5,"u":""}}"#,
                "malformed metadata member",
            ),
            (
                br#"{"__session__":{"c":1,"t":2,"e":3,"a":4,"w":5,"u":"zz"}}"#,
                "malformed metadata member",
            ),
        ] {
            assert_eq!(decode(bad).unwrap_err().reason(), why);
        }
    }

    #[test]
    fn one_pass_and_full_decoders_agree() {
        let ours = encode(
            &meta(),
            &json!({"user": {"sub": "u"}}).as_object().unwrap().clone(),
        );
        let cases: [&[u8]; 18] = [
            &ours,
            br#"{"__session__":{"c":1,"t":2,"a":0,"w":5,"u":"ab"},"x":1,"y":2,"x":3}"#,
            br#"{"__session__":{"c":1,"t":2,"a":0,"w":5,"u":""},"__session__":{}}"#,
            br#"{"__session__":{"c":1,"t":2,"a":0,"w":5,"u":""},"__session__":1}"#,
            br#"{"__session__":{"c":1,"t":2,"a":0,"w":5,"u":""},}"#,
            br#"{"__session__":{"c":1,"t":2,"a":0,"w":5,"u":""}} "#,
            br#"{"__session__":{"c":1,"t":2,"a":0,"w":5,"u":""},"x":} "#,
            br#"{"__session__": {"c": 1, "t": 2, "e": 3, "a": 4, "w": 5, "u": "ab"}, "x": 1}"#,
            br#"{"__session__":{"c":1,"t":2,"e":3,"a":0,"w":5,"u":""}}"#,
            br#"{"user": {"sub": "u"}, "created": 1.5}"#,
            br#"{}"#,
            br#"{"a": 1, "a": 2}"#,
            br#"{"__session__":{"c":1,"t":2,"e":3,"a":0,"w":5,"u":""},"__session__":{}}"#,
            br#"{"__session__":{"t":2,"c":1,"e":3,"a":0,"w":5,"u":""}}"#,
            br#"{"__session__":{"c":1,"t":2,"e":3,"a":0,"w":5,"u":"","x":1}}"#,
            br#"{"__session__":{"c":9007199254740992,"t":2,"e":3,"a":0,"w":5,"u":""}}"#,
            br#"{"\u005f_session__":{"c":1,"t":2,"e":3,"a":0,"w":5,"u":""}}"#,
            br#"{"x":1} trailing"#,
        ];
        for bytes in cases {
            let full = decode_full(bytes).map_err(|e| e.reason());
            if let Some(fast) = visit::decode_one_pass(bytes) {
                assert_eq!(Ok(fast), full, "{}", String::from_utf8_lossy(bytes));
            }
            if let Some(fast) = compact::decode_compact(bytes) {
                assert_eq!(Ok(fast), full, "{}", String::from_utf8_lossy(bytes));
            }
            assert_eq!(decode(bytes).map_err(|e| e.reason()), full);
        }
        assert!(
            visit::decode_one_pass(&ours).is_some() && compact::decode_compact(&ours).is_some(),
            "the compact form takes the fast paths"
        );
    }

    #[test]
    fn versions_are_sha1_prefixes() {
        // sha1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d
        let v = version_of(b"abc");
        assert_eq!(version_hex(v), "a9993e364706816a");
        assert_eq!(parse_version_hex(b"a9993e364706816a"), Some(v));
    }

    #[test]
    fn created_float_becomes_millis() {
        let data = json!({"created": 1234567890.5})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(foreign_created(&data), Some(Timestamp(1_234_567_890_500)));
        let data = json!({"created": "yesterday"}).as_object().unwrap().clone();
        assert_eq!(foreign_created(&data), None);
    }
}
