//! Store-independent settings, read from the environment with the existing service's names.

use std::time::Duration;

use crate::error::{Error, Result};

/// Default idle timeout: the existing service's `SESSION_TTL=7200`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(7200);
/// Default key prefix: the existing service's `SESSION_KEY_PREFIX=session:`.
pub const DEFAULT_KEY_PREFIX: &str = "session:";
/// Default limit on a session's encoded data: 64 KiB. Today's sessions are about 1 KiB; a
/// session growing past this is almost always a bug (a cached page, a list that only grows).
pub const DEFAULT_MAX_SESSION_BYTES: usize = 64 * 1024;

/// Settings every store shares.
///
/// | field | variable | default |
/// |---|---|---|
/// | `idle_timeout` | `SESSION_TTL` (seconds) | 7200 |
/// | `absolute_lifetime` | `SESSION_ABSOLUTE_TTL` (seconds; 0 or unset = none) | none |
/// | `key_prefix` | `SESSION_KEY_PREFIX` | `session:` |
/// | `max_session_bytes` | `SESSION_MAX_BYTES` | 65536 |
/// | `user_keys` | `SESSION_USER_KEYS` (comma-separated dotted paths) | `user.sub,user.username` |
///
/// ```
/// use session_core::SessionConfig;
///
/// let config = SessionConfig::from_lookup(|name| match name {
///     "SESSION_TTL" => Some("600".into()),
///     _ => None,
/// })?;
/// assert_eq!(config.idle_timeout.as_secs(), 600);
/// assert_eq!(config.key_prefix, "session:");
///
/// let err = SessionConfig::from_lookup(|name| (name == "SESSION_TTL").then(|| "2h".into()));
/// assert!(err.unwrap_err().to_string().contains("SESSION_TTL"));
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// How long a session lives without activity.
    pub idle_timeout: Duration,
    /// How long a session may live at most from its creation, whatever its activity.
    pub absolute_lifetime: Option<Duration>,
    /// Prefix of every key a shared backend writes (session keys and indexes).
    pub key_prefix: String,
    /// Largest accepted encoded session data, in bytes.
    pub max_session_bytes: usize,
    /// Dotted paths tried in order to find the user a session belongs to.
    pub user_keys: Vec<String>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            absolute_lifetime: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            max_session_bytes: DEFAULT_MAX_SESSION_BYTES,
            user_keys: vec!["user.sub".to_owned(), "user.username".to_owned()],
        }
    }
}

impl SessionConfig {
    /// Reads the process environment (see the table above).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests and other sources need not touch the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut config = SessionConfig::default();
        if let Some(secs) = parse_var::<u64>(&lookup, "SESSION_TTL")? {
            if secs == 0 {
                return Err(Error::config("SESSION_TTL", "must be at least 1 second"));
            }
            config.idle_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = parse_var::<u64>(&lookup, "SESSION_ABSOLUTE_TTL")? {
            config.absolute_lifetime = (secs > 0).then(|| Duration::from_secs(secs));
        }
        if let Some(prefix) = lookup("SESSION_KEY_PREFIX") {
            config.key_prefix = prefix;
        }
        if let Some(bytes) = parse_var::<usize>(&lookup, "SESSION_MAX_BYTES")? {
            if bytes == 0 {
                return Err(Error::config("SESSION_MAX_BYTES", "must be positive"));
            }
            config.max_session_bytes = bytes;
        }
        if let Some(keys) = lookup("SESSION_USER_KEYS") {
            let keys: Vec<String> = keys
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect();
            if keys.iter().any(|k| k.split('.').any(str::is_empty)) {
                return Err(Error::config(
                    "SESSION_USER_KEYS",
                    "expected dotted paths like user.sub",
                ));
            }
            config.user_keys = keys;
        }
        Ok(config)
    }
}

/// Reads and parses one variable; a bad value is an error naming the variable (the value is
/// not repeated, in case it is a secret pasted into the wrong place).
pub fn parse_var<T: std::str::FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match lookup(name) {
        None => Ok(None),
        Some(raw) if raw.trim().is_empty() => Ok(None),
        Some(raw) => raw.trim().parse::<T>().map(Some).map_err(|e| {
            Error::config(
                name,
                format_args!("expected {}: {e}", std::any::type_name::<T>()),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_match_the_existing_service() {
        let c = SessionConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(c, SessionConfig::default());
        assert_eq!(c.idle_timeout, Duration::from_secs(7200));
        assert_eq!(c.key_prefix, "session:");
    }

    #[test]
    fn every_variable_is_read() {
        let c = SessionConfig::from_lookup(lookup(&[
            ("SESSION_TTL", "60"),
            ("SESSION_ABSOLUTE_TTL", "3600"),
            ("SESSION_KEY_PREFIX", "s:"),
            ("SESSION_MAX_BYTES", "100"),
            ("SESSION_USER_KEYS", "uid, user.email"),
        ]))
        .unwrap();
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.absolute_lifetime, Some(Duration::from_secs(3600)));
        assert_eq!(c.key_prefix, "s:");
        assert_eq!(c.max_session_bytes, 100);
        assert_eq!(c.user_keys, vec!["uid", "user.email"]);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("SESSION_TTL", "abc"),
            ("SESSION_TTL", "0"),
            ("SESSION_ABSOLUTE_TTL", "-1"),
            ("SESSION_MAX_BYTES", "lots"),
            ("SESSION_USER_KEYS", "user..sub"),
        ] {
            let pairs: &'static [(&str, &str)] = Box::leak(Box::new([(name, value)]));
            let err = SessionConfig::from_lookup(lookup(pairs)).unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{name}={value}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
