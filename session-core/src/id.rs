//! Session ids: the bearer token in the cookie, and the non-secret handle derived from it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Number of random bytes in a session id (as `secrets.token_urlsafe(32)` issues them).
pub const SESSION_ID_BYTES: usize = 32;
/// Length of a session id's text form: 32 bytes in URL-safe base64 without padding.
pub const SESSION_ID_LEN: usize = 43;

/// A session id: 32 random bytes from the OS generator, written as 43 characters of URL-safe
/// base64 without padding, the same token shape the existing service issues.
///
/// The token is a bearer secret. `Debug` and `Display` print only a short fingerprint (the
/// first 8 hex digits of its SHA-256); reading the token takes an explicit
/// [`SessionId::expose_token`]. Clones share the text (no allocation).
///
/// ```
/// use session_core::SessionId;
///
/// let id = SessionId::generate();
/// let cookie_value = id.expose_token().to_owned();
/// let parsed: SessionId = cookie_value.parse()?;
/// assert_eq!(parsed, id);
/// assert!(!format!("{id:?}").contains(&cookie_value));
/// assert!("not a token".parse::<SessionId>().is_err());
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionId(Arc<str>);

/// Hashes the first `HASHED_PREFIX` (16) characters only: 96 random bits are plenty for a hash
/// table, and in-memory stores hash an id on every operation. Equal ids still hash equal, and
/// the table's keyed hasher still keeps chosen tokens from colliding on purpose.
impl std::hash::Hash for SessionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let bytes = self.0.as_bytes();
        state.write(&bytes[..bytes.len().min(HASHED_PREFIX)]);
    }
}

/// How many characters of a token [`SessionId`]'s `Hash` reads (16 base64 characters: 96 bits).
const HASHED_PREFIX: usize = 16;

impl SessionId {
    /// Mints a fresh id from the operating system's random generator.
    ///
    /// # Panics
    /// If the OS generator fails, which `getrandom` treats as unrecoverable.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SESSION_ID_BYTES];
        getrandom::fill(&mut bytes).expect("OS random generator unavailable");
        Self::from_bytes(bytes)
    }

    /// An id from 32 bytes the caller already holds, for adapters whose framework mints its own
    /// ids (derive the bytes from the framework's id with a hash, never from guessable data).
    ///
    /// ```
    /// use session_core::SessionId;
    ///
    /// let id = SessionId::from_bytes([7; 32]);
    /// assert_eq!(id, SessionId::parse(id.expose_token())?);
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn from_bytes(bytes: [u8; SESSION_ID_BYTES]) -> Self {
        SessionId(URL_SAFE_NO_PAD.encode(bytes).into())
    }

    /// Validates a token from a cookie or header. Anything but 43 URL-safe base64 characters
    /// that decode to exactly 32 bytes is [`Error::InvalidId`], so a malformed token never
    /// reaches a store.
    pub fn parse(token: &str) -> Result<Self> {
        if token.len() != SESSION_ID_LEN {
            return Err(Error::InvalidId {
                reason: "expected 43 characters",
            });
        }
        if !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::InvalidId {
                reason: "expected URL-safe base64 characters",
            });
        }
        // The last character carries 2 padding bits that must be zero; the decoder checks
        // them, so each 32-byte id has exactly one accepted spelling.
        match URL_SAFE_NO_PAD.decode(token) {
            Ok(bytes) if bytes.len() == SESSION_ID_BYTES => Ok(SessionId(token.into())),
            _ => Err(Error::InvalidId {
                reason: "not the canonical encoding of 32 bytes",
            }),
        }
    }

    /// The raw token, for setting a cookie or building a storage key. Treat it as a secret.
    pub fn expose_token(&self) -> &str {
        &self.0
    }

    /// The non-secret handle of this id: the hex SHA-256 of the token.
    pub fn handle(&self) -> SessionHandle {
        SessionHandle(hex::encode(Sha256::digest(self.0.as_bytes())).into_boxed_str())
    }

    /// A short, non-reversible fingerprint for logs: `sid:` and 8 hex digits of the handle.
    pub fn fingerprint(&self) -> String {
        self.handle().fingerprint()
    }
}

impl FromStr for SessionId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        SessionId::parse(s)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.fingerprint())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

/// The non-secret name of a session: the lowercase hex SHA-256 of its token (64 characters).
///
/// Listings return handles rather than tokens, so showing a user "your other devices" never
/// hands out a credential for them. Stores that hash ids at rest key sessions by handle.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle(Box<str>);

impl SessionHandle {
    /// Accepts 64 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(SessionHandle(text.into()))
        } else {
            Err(Error::InvalidId {
                reason: "a session handle is 64 lowercase hex digits",
            })
        }
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `sid:` and the first 8 hex digits, the same fingerprint as [`SessionId::fingerprint`].
    pub fn fingerprint(&self) -> String {
        format!("sid:{}", &self.0[..8])
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({})", self.0)
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_the_token_shape_and_differ() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_eq!(a.expose_token().len(), SESSION_ID_LEN);
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.expose_token()).unwrap(), a);
    }

    #[test]
    fn python_token_urlsafe_output_parses() {
        // secrets.token_urlsafe(32) output shape, with '-' and '_'.
        let token = "Zx3_k9-ab8lJf1mN2oP3qR4sT5uV6wX7yZ8aB9cD0eE";
        assert!(SessionId::parse(token).is_ok());
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in [
            "",
            "short",
            "Zx3_k9-ab8lJf1mN2oP3qR4sT5uV6wX7yZ8aB9cD0eE=",
            "Zx3_k9-ab8lJf1mN2oP3qR4sT5uV6wX7yZ8aB9cD0e+",
            "Zx3_k9-ab8lJf1mN2oP3qR4sT5uV6wX7yZ8aB9cD0e/",
            "Zx3_k9-ab8lJf1mN2oP3qR4sT5uV6wX7yZ8aB9cD0eF", // non-zero padding bits
            "session:Zx3_k9-ab8lJf1mN2oP3qR4sT5uV6wX7yZ8",
            "Zx3_k9-ab8lJf1mN2oP3qR4sT5uV6wX7yZ8aB9cD0é",
        ] {
            let err = SessionId::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidId { .. }), "{bad:?}");
            assert!(bad.is_empty() || !err.to_string().contains(bad));
        }
    }

    #[test]
    fn debug_and_display_hide_the_token() {
        let id = SessionId::generate();
        let token = id.expose_token();
        for shown in [format!("{id:?}"), format!("{id}"), id.fingerprint()] {
            assert!(!shown.contains(token));
            assert!(!shown.contains(&token[..12]));
        }
        assert!(id.fingerprint().starts_with("sid:"));
        assert_eq!(id.handle().fingerprint(), id.fingerprint());
    }

    #[test]
    fn handles_parse_back() {
        let h = SessionId::generate().handle();
        assert_eq!(SessionHandle::parse(h.as_str()).unwrap(), h);
        assert!(SessionHandle::parse("xyz").is_err());
    }
}
