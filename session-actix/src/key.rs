//! actix-session's `SessionKey` (the cookie's content) is our `SessionId` (the store's key).

use actix_session::storage::SessionKey;
use session_core::SessionId;

/// The store id a key names, or `None` when the key is not a well-formed [`SessionId`] (43
/// URL-safe base64 characters, canonical): such a key was never issued by this adapter and
/// names no session, so it never reaches a store.
pub fn session_id_of(key: &SessionKey) -> Option<SessionId> {
    SessionId::parse(key.as_ref()).ok()
}

/// The key actix-session puts in the cookie for the session stored under `id`: its token.
pub fn key_of(id: &SessionId) -> SessionKey {
    SessionKey::try_from(id.expose_token().to_owned())
        .expect("a 43-character token is within actix-session's 4064-byte key limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_tokens() {
        let id = SessionId::generate();
        let key = key_of(&id);
        assert_eq!(key.as_ref(), id.expose_token());
        assert_eq!(session_id_of(&key), Some(id));
    }

    #[test]
    fn malformed_keys_name_nothing() {
        let actix_style = "a".repeat(64); // what actix-session's own stores mint
        let bad_padding = format!("{}B", "A".repeat(42));
        for bad in [
            "",
            "malformed",
            &actix_style,
            &bad_padding,
            "A/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            let key = SessionKey::try_from(bad.to_owned()).unwrap();
            assert_eq!(session_id_of(&key), None, "{bad:?}");
        }
    }
}
