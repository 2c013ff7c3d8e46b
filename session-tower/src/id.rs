//! From tower-sessions' `Id` (the cookie value) to our `SessionId` (the storage key).

use session_core::SessionId;
use sha2::{Digest, Sha256};
use tower_sessions_core::session::Id;

/// Domain separation: a SHA-256 of these bytes plus an id can never equal a hash some other
/// part of the system computes over the same 16 bytes (handles, fingerprints, versions).
const DOMAIN: &[u8] = b"session-tower/v1/tower-sessions-id\0";

/// The store id of a tower-sessions id: `SHA-256(DOMAIN || id as 16 little-endian bytes)`.
///
/// Why a hash, not fresh randomness: tower-sessions keeps only its own `Id` (in the cookie)
/// and hands it back on every `load`/`save`/`delete`, so the mapping must be a pure function
/// of it to find the same key each time. Its `i128` already holds 128 random bits from the
/// OS-seeded generator, so the hash adds no guessability; it only stretches them to our 32-byte
/// token shape. Being one-way, a store key (a Redis key in plain mode) does not give back the
/// cookie that opens the session. Little-endian bytes are the ones tower-sessions encodes
/// into the cookie.
pub fn session_id_of(id: &Id) -> SessionId {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(id.0.to_le_bytes());
    SessionId::from_bytes(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_is_deterministic_and_separates_ids() {
        let a = Id(1);
        assert_eq!(session_id_of(&a), session_id_of(&Id(1)));
        assert_ne!(session_id_of(&a), session_id_of(&Id(2)));
        // Not the plain SHA-256 of the bytes: the domain prefix is in.
        let plain: [u8; 32] = Sha256::digest(1i128.to_le_bytes()).into();
        assert_ne!(session_id_of(&a), SessionId::from_bytes(plain));
    }

    #[test]
    fn mapping_is_pinned() {
        // Changing DOMAIN or the byte order would orphan every stored session: pin it (value
        // computed independently with Python's hashlib).
        assert_eq!(
            session_id_of(&Id(42)).expose_token(),
            "eQb0hlkl8va2Jdgx8Dxt7bnmYVxCYynBL47CYajfPQk"
        );
    }
}
