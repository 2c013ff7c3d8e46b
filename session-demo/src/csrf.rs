//! CSRF tokens: one random token per session, required in every state-changing form.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

/// The session key holding the token, as in the existing service.
pub const SESSION_KEY: &str = "csrf_token";
/// The hidden form field carrying it.
pub const FORM_FIELD: &str = "csrf_token";

/// A fresh token: 32 random bytes, URL-safe base64.
///
/// # Panics
/// If the OS random generator fails.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("OS random generator unavailable");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether the submitted token equals the session's. Compared in constant time; a missing or
/// empty token on either side never matches.
///
/// ```
/// use session_demo::csrf;
///
/// let token = csrf::generate();
/// assert!(csrf::matches(Some(&token), Some(&token)));
/// assert!(!csrf::matches(Some(&token), None));
/// assert!(!csrf::matches(Some(""), Some("")));
/// assert!(!csrf::matches(Some(&token), Some(&csrf::generate())));
/// ```
pub fn matches(expected: Option<&str>, submitted: Option<&str>) -> bool {
    match (expected, submitted) {
        (Some(e), Some(s)) if !e.is_empty() => e.as_bytes().ct_eq(s.as_bytes()).into(),
        _ => false,
    }
}
