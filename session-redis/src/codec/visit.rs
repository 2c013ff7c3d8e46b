//! The one-pass decoder behind [`super::decode`]: parses a stored value straight into the
//! metadata and the data map, with no intermediate `Value` for the whole object and no
//! map for the metadata. Anything unusual (metadata out of order or out of range, escaped
//! keys, a duplicate reserved member, not an object, not JSON) makes it give up, and the
//! full decoder then judges the value and names the reason.

use std::fmt;
use std::time::Duration;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::{Map, Value};
use session_core::{Timestamp, RESERVED_KEY};

use super::{Meta, Stored, FIELDS, LEGACY_FIELD, MAX_EXACT_MS};

/// Decodes `bytes` in one pass, or `None` when the full decoder must decide.
pub(super) fn decode_one_pass(bytes: &[u8]) -> Option<Stored> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let stored = de::Deserializer::deserialize_map(&mut de, StoredVisitor).ok()?;
    de.end().ok()?;
    Some(stored)
}

/// Gives up: the full decoder will say why.
fn give_up<E: de::Error>() -> E {
    E::custom("not on the one-pass path")
}

struct StoredVisitor;

impl<'de> Visitor<'de> for StoredVisitor {
    type Value = Stored;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Stored, A::Error> {
        let Some(first) = access.next_key::<String>()? else {
            return Ok(Stored::Foreign { data: Map::new() });
        };
        let mut data = Map::new();
        let meta = if first == RESERVED_KEY {
            Some(access.next_value_seed(MetaSeed)?)
        } else {
            data.insert(first, access.next_value::<Value>()?);
            None
        };
        while let Some(key) = access.next_key::<String>()? {
            if key == RESERVED_KEY {
                return Err(give_up());
            }
            let value = access.next_value::<Value>()?;
            // A duplicate key: JSON allows it, the full decoder keeps the last one.
            if data.insert(key, value).is_some() {
                return Err(give_up());
            }
        }
        Ok(match meta {
            Some(meta) => Stored::Ours { meta, data },
            None => Stored::Foreign { data },
        })
    }
}

/// The metadata member: exactly its fields, in their stored order.
struct MetaSeed;

impl<'de> DeserializeSeed<'de> for MetaSeed {
    type Value = Meta;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Meta, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MetaSeed {
    type Value = Meta;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the metadata member")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Meta, A::Error> {
        let mut ms = [0u64; 4];
        let mut key = access.next_key::<&str>()?;
        for (i, (slot, field)) in ms.iter_mut().zip(FIELDS).enumerate() {
            if key != Some(field) {
                return Err(give_up());
            }
            let n: u64 = access.next_value()?;
            if n >= MAX_EXACT_MS {
                return Err(give_up());
            }
            *slot = n;
            key = access.next_key::<&str>()?;
            // A value from before layout v2: its idle expiry after `t`, ignored.
            if i == 1 && key == Some(LEGACY_FIELD) {
                let _: u64 = access.next_value()?;
                key = access.next_key::<&str>()?;
            }
        }
        if key != Some(FIELDS[4]) {
            return Err(give_up());
        }
        let user_hex: String = access.next_value()?;
        if !user_hex.bytes().all(|b| b.is_ascii_hexdigit()) || access.next_key::<&str>()?.is_some()
        {
            return Err(give_up());
        }
        let [c, t, a, w] = ms;
        Ok(Meta {
            created_at: Timestamp(c),
            idle_timeout: Duration::from_millis(t),
            absolute_expires_at: (a > 0).then_some(Timestamp(a)),
            writes: w,
            user_hex,
        })
    }
}
