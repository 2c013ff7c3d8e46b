//! Key layout: where sessions and their indexes live under the configured prefix.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{prefix}{storage id}` | string | the session (see [`codec`](crate::codec)); its TTL ends it |
//! | `{prefix}~exp` (one Redis) or `{prefix}~exp{slot tag}` (Cluster) | zset | storage id → the expiry (ms) this store last set: counting, cleanup, exact expiry reports |
//! | `{prefix}~user:{tag(user)}` | zset | storage id → the session's expiry when it entered the index; no TTL |
//!
//! The storage id is the token itself (plain mode, the existing service's `session:{token}`)
//! or its SHA-256 handle (hashed mode). Neither alphabet contains `~`, so an index key can
//! never be mistaken for a session key.
//!
//! ## Ready for Redis Cluster
//! Every script declares every key it touches, and the keys of one atomic operation share a
//! hash slot: a session key and its expiry index entry. Session keys keep the existing
//! service's names (no hash tag), so each lands in its own slot; under
//! [`IndexPlacement::PerSlot`] the expiry index is split into one key per slot,
//! `{prefix}~exp{t}`, where the hash tag `t` is a short string chosen to hash to that slot
//! ([`slot_tag`]). No key is then touched by every write. A single server (or a Sentinel
//! group) keeps [`IndexPlacement::Single`], one `~exp` key, which makes `count` one `ZCARD`;
//! the code path is the same, only the index key a session's entry lives in differs.
//!
//! A user's index is one key wherever that user's sessions live, so it is never written in the
//! same atomic step as a session. It is written *before* a session names its user (see
//! `write.lua`'s `UNINDEXED` reply), so "log out everywhere" always finds every session; an
//! entry whose session is gone or names another user is ignored by every reader and pruned by
//! `cleanup` once its score (the expiry it was indexed with) has passed, so an entry written
//! for a write still in flight is never pruned.

use session_core::{SessionHandle, SessionId, SESSION_ID_LEN};

/// Session keys and index keys for one prefix and key mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    prefix: String,
    hashed: bool,
    placement: IndexPlacement,
    /// Every slot's expiry index name, made on first use (per-slot layouts walk them often).
    slot_indexes: std::sync::Arc<std::sync::OnceLock<Vec<String>>>,
}

/// Where expiry index entries live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IndexPlacement {
    /// One `{prefix}~exp` key: a single server or a Sentinel group (`count` is one `ZCARD`).
    #[default]
    Single,
    /// One `{prefix}~exp{slot tag}` key per hash slot, next to the sessions of that slot:
    /// Redis Cluster, where the keys of one atomic operation must share a slot.
    PerSlot,
}

/// Redis Cluster's number of hash slots.
pub const SLOTS: u16 = 16384;

/// The hash slot of `key` as Redis Cluster computes it: CRC16 (XMODEM) of the key, or of its
/// hash tag (the text between the first `{` and the next `}`, if not empty), mod 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % SLOTS
}

/// A short hash tag for every slot: `slot_tag(s)` hashes to slot `s`. Found once by walking
/// 1-, 2-, then 3-character strings of `[0-9A-Za-z]` (about 250,000 CRCs, a few ms).
static SLOT_TAGS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut tags: Vec<Option<String>> = vec![None; usize::from(SLOTS)];
    let mut missing = usize::from(SLOTS);
    'lengths: for len in 1u32..=4 {
        for mut n in 0..ALPHABET.len().pow(len) {
            let mut tag = Vec::with_capacity(len as usize);
            for _ in 0..len {
                tag.push(ALPHABET[n % ALPHABET.len()]);
                n /= ALPHABET.len();
            }
            let slot = usize::from(crc16::State::<crc16::XMODEM>::calculate(&tag) % SLOTS);
            if tags[slot].is_none() {
                tags[slot] = Some(String::from_utf8(tag).unwrap_or_default());
                missing -= 1;
                if missing == 0 {
                    break 'lengths;
                }
            }
        }
    }
    tags.into_iter().map(Option::unwrap_or_default).collect()
});

/// A hash tag that puts a key in `slot` (see [`key_slot`]).
pub fn slot_tag(slot: u16) -> &'static str {
    &SLOT_TAGS[usize::from(slot % SLOTS)]
}

/// Whether `prefix` holds a hash tag, which puts every key under it in one slot.
fn has_hash_tag(prefix: &str) -> bool {
    prefix
        .find('{')
        .is_some_and(|open| prefix[open + 1..].find('}').is_some_and(|close| close > 0))
}

/// A session as named inside Redis: its key suffix and index member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageId {
    /// Plain mode: the token (a bearer secret; never log it).
    Token(SessionId),
    /// Hashed mode: the handle.
    Handle(SessionHandle),
}

impl StorageId {
    /// The id's text as stored in keys and index members.
    pub fn as_str(&self) -> &str {
        match self {
            StorageId::Token(id) => id.expose_token(),
            StorageId::Handle(handle) => handle.as_str(),
        }
    }

    /// The non-secret handle.
    pub fn handle(&self) -> SessionHandle {
        match self {
            StorageId::Token(id) => id.handle(),
            StorageId::Handle(handle) => handle.clone(),
        }
    }

    /// The token, when the layout keeps it.
    pub fn token(&self) -> Option<&SessionId> {
        match self {
            StorageId::Token(id) => Some(id),
            StorageId::Handle(_) => None,
        }
    }

    /// Log-safe fingerprint (`sid:` and 8 hex digits of the handle).
    pub fn fingerprint(&self) -> String {
        self.handle().fingerprint()
    }
}

impl KeyLayout {
    /// Keys under `prefix`; `hashed` stores the SHA-256 handle instead of the token.
    pub fn new(prefix: impl Into<String>, hashed: bool) -> Self {
        KeyLayout {
            prefix: prefix.into(),
            hashed,
            placement: IndexPlacement::Single,
            slot_indexes: Default::default(),
        }
    }

    /// The same layout with expiry index entries placed as `placement` says. A prefix with
    /// an unclosed `{` cannot be split per slot (the index keys' tags would not be read as
    /// tags): it keeps one index, and so do prefixes with a hash tag, whose keys all share one
    /// slot anyway.
    pub fn with_placement(mut self, placement: IndexPlacement) -> Self {
        self.slot_indexes = Default::default();
        self.placement = match placement {
            IndexPlacement::PerSlot if self.prefix.contains('{') => IndexPlacement::Single,
            other => other,
        };
        self
    }

    /// Where expiry index entries live.
    pub fn placement(&self) -> IndexPlacement {
        self.placement
    }

    /// Whether this layout keeps one expiry index per slot. (A prefix with a hash tag puts
    /// every key in one slot, so its single index is already slot-local.)
    pub fn per_slot(&self) -> bool {
        self.placement == IndexPlacement::PerSlot && !has_hash_tag(&self.prefix)
    }

    /// The prefix every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether session keys hold handles rather than tokens.
    pub fn hashed(&self) -> bool {
        self.hashed
    }

    /// How `id` is named in Redis.
    pub fn storage_id(&self, id: &SessionId) -> StorageId {
        if self.hashed {
            StorageId::Handle(id.handle())
        } else {
            StorageId::Token(id.clone())
        }
    }

    /// `{prefix}{storage id}`.
    pub fn session_key(&self, sid: &StorageId) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 64);
        key.push_str(&self.prefix);
        key.push_str(sid.as_str());
        key
    }

    /// `{prefix}~exp`: every indexed session scored by its expiry (the one expiry index
    /// under [`IndexPlacement::Single`]).
    pub fn expiry_index(&self) -> String {
        format!("{}~exp", self.prefix)
    }

    /// The expiry index that holds `sid`'s entry: in the session key's slot.
    pub fn expiry_index_of(&self, sid: &StorageId) -> String {
        if self.per_slot() {
            self.slot_expiry_index(key_slot(self.session_key(sid).as_bytes()))
        } else {
            self.expiry_index()
        }
    }

    /// `{prefix}~exp{tag}`: the expiry index of one slot (under [`IndexPlacement::PerSlot`]).
    pub fn slot_expiry_index(&self, slot: u16) -> String {
        format!("{}~exp{{{}}}", self.prefix, slot_tag(slot))
    }

    /// Every expiry index key: one, or one per slot (index `s` for slot `s`).
    pub fn expiry_indexes(&self) -> &[String] {
        self.slot_indexes.get_or_init(|| {
            if self.per_slot() {
                (0..SLOTS).map(|s| self.slot_expiry_index(s)).collect()
            } else {
                vec![self.expiry_index()]
            }
        })
    }

    /// The slot of `sid`'s key (0 when all indexes are one key: grouping by it is then one
    /// group).
    pub fn shard_of(&self, sid: &StorageId) -> u16 {
        if self.per_slot() {
            key_slot(self.session_key(sid).as_bytes())
        } else {
            0
        }
    }

    /// A fresh id whose key shares `sid`'s slot, so `rotate` stays one atomic step on Redis
    /// Cluster (any fresh id on one index). A random token with 4 of its characters (24 bits)
    /// then searched for the slot, about 16,000 candidates: the token keeps 228 random bits,
    /// and an observer learns nothing about it without the old one. With plain keys only the
    /// CRC of the varied tail is computed per candidate; hashed keys need a SHA-256 each.
    pub fn fresh_id_near(&self, sid: &StorageId) -> SessionId {
        const BASE64URL: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        // Characters 38..42 carry 6 whole bits each (the 43rd only 4).
        const VARIED: std::ops::Range<usize> = 38..42;
        if !self.per_slot() {
            return SessionId::generate();
        }
        let target = self.shard_of(sid);
        loop {
            let seed = SessionId::generate();
            let mut token = seed.expose_token().as_bytes().to_vec();
            let mut head = crc16::State::<crc16::XMODEM>::new();
            head.update(self.prefix.as_bytes());
            head.update(&token[..VARIED.start]);
            for n in 0u32..1 << 24 {
                for (i, at) in VARIED.enumerate() {
                    token[at] = BASE64URL[((n >> (6 * i)) & 63) as usize];
                }
                let slot = if self.hashed {
                    let Ok(id) = SessionId::parse(std::str::from_utf8(&token).unwrap_or_default())
                    else {
                        continue;
                    };
                    key_slot(self.session_key(&StorageId::Handle(id.handle())).as_bytes())
                } else {
                    let mut crc = head;
                    crc.update(&token[VARIED.start..]);
                    crc.get() % SLOTS
                };
                if slot == target {
                    if let Ok(id) =
                        SessionId::parse(std::str::from_utf8(&token).unwrap_or_default())
                    {
                        return id;
                    }
                }
            }
        }
    }

    /// Whether `new` may replace `old` in one atomic step (`rotate`): always on one index, the
    /// same slot per slot.
    pub fn same_shard(&self, old: &StorageId, new: &StorageId) -> bool {
        self.shard_of(old) == self.shard_of(new)
    }

    /// `{prefix}~user:` followed by the user's tag (see [`user_hex`]).
    pub fn user_index(&self, user_hex: &str) -> String {
        format!("{}~user:{user_hex}", self.prefix)
    }

    /// `SCAN MATCH` pattern for every key under the prefix.
    pub fn scan_pattern(&self) -> String {
        format!("{}*", glob_escape(&self.prefix))
    }

    /// `SCAN MATCH` pattern for the per-user indexes.
    pub fn user_index_pattern(&self) -> String {
        format!("{}~user:*", glob_escape(&self.prefix))
    }

    /// The storage id of `key` if it is a session key of this layout (a valid token in plain
    /// mode, 64 lowercase hex digits in hashed mode); `None` for index keys and strangers.
    pub fn parse_session_key(&self, key: &[u8]) -> Option<StorageId> {
        let suffix = key.strip_prefix(self.prefix.as_bytes())?;
        let suffix = std::str::from_utf8(suffix).ok()?;
        if self.hashed {
            SessionHandle::parse(suffix).ok().map(StorageId::Handle)
        } else if suffix.len() == SESSION_ID_LEN {
            SessionId::parse(suffix).ok().map(StorageId::Token)
        } else {
            None
        }
    }

    /// The storage id behind an index member (which is the storage id's text).
    pub fn parse_member(&self, member: &str) -> Option<StorageId> {
        if self.hashed {
            SessionHandle::parse(member).ok().map(StorageId::Handle)
        } else {
            SessionId::parse(member).ok().map(StorageId::Token)
        }
    }
}

/// A user's tag as used in user index keys and the metadata's `u` field: the first 24 hex
/// digits (96 bits) of the SHA-256 of the user id. Fixed-size, so a long user id (an e-mail,
/// a UUID) costs every session of that user 24 bytes, not twice its length, and arbitrary user
/// ids stay out of key syntax and glob patterns.
pub fn user_hex(user: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(user.as_bytes());
    hex::encode(&digest[..12])
}

/// Escapes `*`, `?`, `[`, `]` and `\` so `text` matches itself in a `SCAN MATCH` pattern.
pub fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_layout_is_the_existing_services() {
        let layout = KeyLayout::new("session:", false);
        let id = SessionId::generate();
        let sid = layout.storage_id(&id);
        assert_eq!(
            layout.session_key(&sid),
            format!("session:{}", id.expose_token())
        );
        assert_eq!(
            layout.parse_session_key(layout.session_key(&sid).as_bytes()),
            Some(sid)
        );
    }

    #[test]
    fn index_keys_are_never_session_keys() {
        for hashed in [false, true] {
            let layout = KeyLayout::new("session:", hashed);
            for key in [layout.expiry_index(), layout.user_index(&user_hex("aaron"))] {
                assert_eq!(layout.parse_session_key(key.as_bytes()), None, "{key}");
            }
            assert_eq!(layout.parse_session_key(b"other:abc"), None);
        }
    }

    #[test]
    fn hashed_layout_keys_by_handle() {
        let layout = KeyLayout::new("s:", true);
        let id = SessionId::generate();
        let key = layout.session_key(&layout.storage_id(&id));
        assert!(!key.contains(id.expose_token()));
        assert_eq!(key, format!("s:{}", id.handle()));
        assert_eq!(
            layout.parse_session_key(key.as_bytes()).unwrap().handle(),
            id.handle()
        );
    }

    #[test]
    fn slots_match_redis_cluster() {
        // CLUSTER KEYSLOT answers, from a Redis 7.0 server.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(
            key_slot(b"foo{}{bar}"),
            crc16::State::<crc16::XMODEM>::calculate(b"foo{}{bar}") % SLOTS
        );
    }

    #[test]
    fn every_slot_has_a_tag_and_its_index_lives_there() {
        for slot in 0..SLOTS {
            let tag = slot_tag(slot);
            assert!(!tag.is_empty() && tag.len() <= 3, "slot {slot}: {tag:?}");
            assert_eq!(key_slot(tag.as_bytes()), slot);
        }
        let layout = KeyLayout::new("session:", false).with_placement(IndexPlacement::PerSlot);
        for _ in 0..100 {
            let sid = layout.storage_id(&SessionId::generate());
            let index = layout.expiry_index_of(&sid);
            assert_eq!(
                key_slot(index.as_bytes()),
                key_slot(layout.session_key(&sid).as_bytes())
            );
            assert_eq!(layout.parse_session_key(index.as_bytes()), None);
        }
        assert_eq!(layout.expiry_indexes().len(), usize::from(SLOTS));
    }

    #[test]
    fn rotated_ids_stay_in_their_slot() {
        for hashed in [false, true] {
            let layout = KeyLayout::new("session:", hashed).with_placement(IndexPlacement::PerSlot);
            for _ in 0..3 {
                let old = layout.storage_id(&SessionId::generate());
                let new = layout.storage_id(&layout.fresh_id_near(&old));
                assert_ne!(old, new);
                assert!(layout.same_shard(&old, &new), "hashed {hashed}");
            }
        }
    }

    #[test]
    fn a_tagged_prefix_keeps_one_index() {
        let layout = KeyLayout::new("{app}s:", false).with_placement(IndexPlacement::PerSlot);
        assert!(!layout.per_slot());
        assert_eq!(layout.expiry_indexes(), ["{app}s:~exp".to_string()]);
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!(KeyLayout::new("ct:1:", false).scan_pattern(), "ct:1:*");
    }
}
