//! Key layout: where sessions and their indexes live under the configured prefix.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{prefix}{storage id}` | string | the session (see [`codec`](crate::codec)); its TTL ends it |
//! | `{prefix}~exp` | zset | storage id → the expiry (ms) this store last set: counting, cleanup, exact expiry reports |
//! | `{prefix}~user:{tag(user)}` | zset | storage id → expiry at the session's last write, expiring with its last member |
//!
//! The storage id is the token itself (plain mode, the existing service's `session:{token}`)
//! or its SHA-256 handle (hashed mode). Neither alphabet contains `~`, so an index key can
//! never be mistaken for a session key.

use session_core::{SessionHandle, SessionId, SESSION_ID_LEN};

/// Session keys and index keys for one prefix and key mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    prefix: String,
    hashed: bool,
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
        }
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

    /// `{prefix}~exp`: every indexed session scored by its expiry.
    pub fn expiry_index(&self) -> String {
        format!("{}~exp", self.prefix)
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
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!(KeyLayout::new("ct:1:", false).scan_pattern(), "ct:1:*");
    }
}
