//! The fast path of [`super::decode`] for values this library wrote: their metadata member
//! is in the compact form [`meta_prefix`](super::meta_prefix) writes, so it is read byte by
//! byte here (as `prelude.lua`'s `META_COMPACT` pattern reads it) and only the data members
//! go through `serde_json`. Parsing the metadata through serde cost about a tenth of a load.
//! Anything else (spaces, the legacy `e` field, escapes, numbers out of range, a second
//! reserved member) gives up, and the one-pass decoder then judges the value.

use std::time::Duration;

use serde_json::{Map, Value};
use session_core::{Timestamp, RESERVED_KEY};

use super::{Meta, Stored, MAX_EXACT_MS};

/// Decodes a value whose metadata is in the compact form, or `None`.
pub(super) fn decode_compact(bytes: &[u8]) -> Option<Stored> {
    let (meta, rest) = compact_meta(bytes)?;
    let data = match rest.split_first()? {
        (b'}', after) => after.iter().all(u8::is_ascii_whitespace).then(Map::new)?,
        (b',', members) => data_members(members)?,
        _ => return None,
    };
    Some(Stored::Ours { meta, data })
}

/// The metadata of a value whose metadata member is in the compact form, and the bytes after
/// that member (`,` and the data members, or the closing `}`); `None` for any other value.
pub(crate) fn compact_meta(bytes: &[u8]) -> Option<(Meta, &[u8])> {
    let mut r = Reader { bytes, at: 0 };
    r.literal(b"{\"")?;
    r.literal(RESERVED_KEY.as_bytes())?;
    r.literal(b"\":{\"c\":")?;
    let c = r.ms()?;
    r.literal(b",\"t\":")?;
    let t = r.ms()?;
    r.literal(b",\"a\":")?;
    let a = r.ms()?;
    r.literal(b",\"w\":")?;
    let w = r.ms()?;
    r.literal(b",\"u\":\"")?;
    let user_hex = r.hex()?;
    r.literal(b"\"}")?;
    let meta = Meta {
        created_at: Timestamp(c),
        idle_timeout: Duration::from_millis(t),
        absolute_expires_at: (a > 0).then_some(Timestamp(a)),
        writes: w,
        user_hex,
    };
    Some((meta, &bytes[r.at..]))
}

/// The members after the metadata's comma (`"k":v,…}`), as a map: parsed as the object
/// `{"k":v,…}`, which takes a copy of them (a memcpy, far cheaper than the parse).
fn data_members(rest: &[u8]) -> Option<Map<String, Value>> {
    // `,}` is not JSON, though `{}` is.
    if rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}') {
        return None;
    }
    let mut object = Vec::with_capacity(rest.len() + 1);
    object.push(b'{');
    object.extend_from_slice(rest);
    let data: Map<String, Value> = serde_json::from_slice(&object).ok()?;
    // A second reserved member: the full decoder decides what that means.
    (!data.contains_key(RESERVED_KEY)).then_some(data)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn literal(&mut self, expected: &[u8]) -> Option<()> {
        let end = self.at.checked_add(expected.len())?;
        (self.bytes.get(self.at..end)? == expected).then(|| self.at = end)
    }

    /// A JSON integer below [`MAX_EXACT_MS`]: digits, no sign, no leading zero.
    fn ms(&mut self) -> Option<u64> {
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(&b) = self.bytes.get(self.at) {
            if !b.is_ascii_digit() {
                break;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.bytes[start] == b'0';
        (digits > 0 && !leading_zero && n < MAX_EXACT_MS).then_some(n)
    }

    /// Hex digits up to the closing quote (not consumed).
    fn hex(&mut self) -> Option<String> {
        let start = self.at;
        while self.bytes.get(self.at)?.is_ascii_hexdigit() {
            self.at += 1;
        }
        // Only ASCII hex digits: valid UTF-8.
        std::str::from_utf8(&self.bytes[start..self.at])
            .ok()
            .map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_on_anything_but_the_compact_form() {
        for value in [
            &br#"{"__session__": {"c":1,"t":2,"a":0,"w":5,"u":""}}"#[..],
            br#"{"__session__":{"c":1,"t":2,"e":3,"a":0,"w":5,"u":""}}"#,
            br#"{"__session__":{"c":01,"t":2,"a":0,"w":5,"u":""}}"#,
            br#"{"__session__":{"c":-1,"t":2,"a":0,"w":5,"u":""}}"#,
            br#"{"__session__":{"c":9007199254740992,"t":2,"a":0,"w":5,"u":""}}"#,
            br#"{"__session__":{"c":99999999999999999999999,"t":2,"a":0,"w":5,"u":""}}"#,
            br#"{"__session__":{"c":1,"t":2,"a":0,"w":5,"u":"\u0030"}}"#,
            br#"{"__session__":{"c":1,"t":2,"a":0,"w":5,"u":""},}"#,
            br#"{"__session__":{"c":1,"t":2,"a":0,"w":5,"u":""},"x":1,"__session__":2}"#,
            br#"{"__session__":{"c":1,"t":2,"a":0,"w":5,"u":""}} x"#,
            br#"{"__session__":{"c":1,"t":2,"a":0,"w":5,"u":""},"x":1} x"#,
            br#"{"__session__":{"c":1,"t":2,"a":0,"w":5,"u":""}"#,
            br#"{"x":1}"#,
        ] {
            assert!(
                decode_compact(value).is_none(),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn reads_the_compact_form() {
        let Some(Stored::Ours { meta, data }) = decode_compact(
            br#"{"__session__":{"c":10,"t":0,"a":7,"w":3,"u":"aB09"},"x":[1],"y":{"z":"w"}} "#,
        ) else {
            panic!("ours")
        };
        assert_eq!(meta.created_at, Timestamp(10));
        assert_eq!(meta.idle_timeout, Duration::ZERO);
        assert_eq!(meta.absolute_expires_at, Some(Timestamp(7)));
        assert_eq!((meta.writes, meta.user_hex.as_str()), (3, "aB09"));
        assert_eq!(
            serde_json::to_string(&data).unwrap(),
            r#"{"x":[1],"y":{"z":"w"}}"#
        );
    }
}
