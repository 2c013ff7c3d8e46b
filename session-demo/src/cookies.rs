//! The session cookie: its attributes, and reading it from a request.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite};
use session_store::SessionId;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "demo_session";

/// What the request's cookie said about the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieId {
    /// No session cookie.
    Missing,
    /// A cookie whose value is not a well-formed session id; never looked up.
    Malformed,
    /// A well-formed id (which may still be unknown or expired).
    Id(SessionId),
}

impl CookieId {
    /// Reads the first `demo_session` cookie of the request.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let value = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| Cookie::split_parse(h.to_owned()))
            .filter_map(|c| c.ok())
            .find(|c| c.name() == COOKIE_NAME)
            .map(|c| c.value().to_owned());
        match value {
            None => CookieId::Missing,
            Some(token) => token.parse().map_or(CookieId::Malformed, CookieId::Id),
        }
    }

    /// The id, when the cookie held a well-formed one.
    pub fn id(&self) -> Option<&SessionId> {
        match self {
            CookieId::Id(id) => Some(id),
            _ => None,
        }
    }
}

/// `Set-Cookie` for a session: `HttpOnly; SameSite=Lax; Path=/`, plus `Secure` if configured.
/// No `Max-Age`: a browser-session cookie; the store decides when the session ends.
pub fn set_session(id: &SessionId, secure: bool) -> HeaderValue {
    let cookie = base(id.expose_token().to_owned(), secure).build();
    header_value(&cookie)
}

/// `Set-Cookie` that removes the session cookie (same attributes, expired).
pub fn clear_session(secure: bool) -> HeaderValue {
    let mut cookie = base(String::new(), secure).build();
    cookie.make_removal();
    header_value(&cookie)
}

fn base(value: String, secure: bool) -> cookie::CookieBuilder<'static> {
    Cookie::build((COOKIE_NAME, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure)
}

fn header_value(cookie: &Cookie<'_>) -> HeaderValue {
    HeaderValue::from_str(&cookie.to_string())
        .expect("a session token and the fixed attributes are valid header text")
}

/// Adds a `Set-Cookie` header.
pub fn append(headers: &mut HeaderMap, value: HeaderValue) {
    headers.append(SET_COOKIE, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(text: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(text).unwrap());
        headers
    }

    #[test]
    fn reads_the_session_cookie_among_others() {
        let id = SessionId::generate();
        let headers = with_cookie(&format!("a=1; {COOKIE_NAME}={}; b=2", id.expose_token()));
        assert_eq!(CookieId::from_headers(&headers), CookieId::Id(id));
        assert_eq!(CookieId::from_headers(&HeaderMap::new()), CookieId::Missing);
        let bad = with_cookie(&format!("{COOKIE_NAME}=forged"));
        assert_eq!(CookieId::from_headers(&bad), CookieId::Malformed);
    }

    #[test]
    fn attributes() {
        let id = SessionId::generate();
        let plain = set_session(&id, false);
        let plain = plain.to_str().unwrap();
        assert!(plain.starts_with(&format!("{COOKIE_NAME}={}", id.expose_token())));
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(plain.contains(attr), "{plain}");
        }
        assert!(!plain.contains("Secure"));
        assert!(set_session(&id, true).to_str().unwrap().contains("Secure"));
        let cleared = clear_session(false);
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
    }
}
