//! `RedisConfig`: connection settings and key mode, from the environment.

use std::fmt;
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use session_core::{parse_var, Error, Result, SessionConfig};

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default response timeout.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Default number of reconnect attempts behind one failing request.
pub const DEFAULT_RECONNECT_RETRIES: usize = 2;

/// Settings of a [`RedisStore`](crate::RedisStore).
///
/// | field | variable | default |
/// |---|---|---|
/// | `host` | `REDIS_HOST` | `127.0.0.1` |
/// | `port` | `REDIS_PORT` | 6379 |
/// | `db` | `REDIS_DB` | 0 |
/// | `tls`, and the above | `REDIS_URL` (`redis://` or `rediss://`; overrides the parts) | off |
/// | `username` | `REDIS_USERNAME` (ACL user; the URL's wins) | none |
/// | `password` | `REDIS_PASSWORD` (the URL's wins) | none |
/// | `connect_timeout` | `REDIS_CONNECT_TIMEOUT_MS` | 2000 |
/// | `response_timeout` | `REDIS_RESPONSE_TIMEOUT_MS` | 2000 |
/// | `reconnect_retries` | `REDIS_RECONNECT_RETRIES` | 2 |
/// | `hash_ids` | `SESSION_HASH_IDS` (`true`/`false`) | false |
/// | `session` | `SESSION_TTL`, `SESSION_KEY_PREFIX`, … ([`SessionConfig`]) | |
///
/// `Debug` prints `password: <redacted>`; errors name the variable, never a secret.
///
/// ```
/// use session_redis::RedisConfig;
///
/// let config = RedisConfig::from_lookup(|name| match name {
///     "REDIS_URL" => Some("redis://:hunter2@cache.internal:6380/2".into()),
///     "SESSION_HASH_IDS" => Some("true".into()),
///     _ => None,
/// })?;
/// assert_eq!((config.host.as_str(), config.port, config.db), ("cache.internal", 6380, 2));
/// assert!(config.hash_ids);
/// assert!(!format!("{config:?}").contains("hunter2"));
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Database number.
    pub db: i64,
    /// Connect with TLS (`rediss://`); needs the crate's `tls` feature.
    pub tls: bool,
    /// ACL user name.
    pub username: Option<String>,
    /// Password (of `username`, or of the default user).
    pub password: Option<String>,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long the server may take to answer one request.
    pub response_timeout: Duration,
    /// Reconnect attempts behind one request after the connection broke; keeps a dead server
    /// from holding requests much longer than the timeouts.
    pub reconnect_retries: usize,
    /// Key sessions by the SHA-256 of their token instead of the token (no token at rest).
    pub hash_ids: bool,
    /// Store-independent settings.
    pub session: SessionConfig,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            host: "127.0.0.1".into(),
            port: 6379,
            db: 0,
            tls: false,
            username: None,
            password: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            reconnect_retries: DEFAULT_RECONNECT_RETRIES,
            hash_ids: false,
            session: SessionConfig::default(),
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| Redacted))
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("reconnect_retries", &self.reconnect_retries)
            .field("hash_ids", &self.hash_ids)
            .field("session", &self.session)
            .finish()
    }
}

struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl RedisConfig {
    /// Reads the process environment (see the table above).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut c = RedisConfig {
            session: SessionConfig::from_lookup(&lookup)?,
            ..Self::default()
        };
        if let Some(host) = lookup("REDIS_HOST").filter(|h| !h.trim().is_empty()) {
            c.host = host.trim().to_owned();
        }
        if let Some(port) = parse_var::<u16>(&lookup, "REDIS_PORT")? {
            c.port = port;
        }
        if let Some(db) = parse_var::<i64>(&lookup, "REDIS_DB")? {
            c.db = db;
        }
        c.username = lookup("REDIS_USERNAME").filter(|u| !u.is_empty());
        c.password = lookup("REDIS_PASSWORD").filter(|p| !p.is_empty());
        if let Some(ms) = parse_var::<u64>(&lookup, "REDIS_CONNECT_TIMEOUT_MS")? {
            c.connect_timeout = positive_ms("REDIS_CONNECT_TIMEOUT_MS", ms)?;
        }
        if let Some(ms) = parse_var::<u64>(&lookup, "REDIS_RESPONSE_TIMEOUT_MS")? {
            c.response_timeout = positive_ms("REDIS_RESPONSE_TIMEOUT_MS", ms)?;
        }
        if let Some(n) = parse_var::<usize>(&lookup, "REDIS_RECONNECT_RETRIES")? {
            c.reconnect_retries = n;
        }
        if let Some(hash) = parse_var::<bool>(&lookup, "SESSION_HASH_IDS")? {
            c.hash_ids = hash;
        }
        if let Some(url) = lookup("REDIS_URL").filter(|u| !u.trim().is_empty()) {
            c.apply_url(url.trim())?;
        }
        Ok(c)
    }

    /// Takes host, port, db, TLS and credentials from a `redis://` or `rediss://` URL.
    fn apply_url(&mut self, url: &str) -> Result<()> {
        // The parser's messages are fixed strings, but the URL may hold a password: never
        // repeat the value, only what is expected.
        let bad = || {
            Error::config(
                "REDIS_URL",
                "expected redis://[user[:password]@]host[:port][/db] or rediss://…",
            )
        };
        let parsed = redis::parse_redis_url(url).ok_or_else(bad)?;
        self.tls = match parsed.scheme() {
            "redis" => false,
            "rediss" => true,
            _ => return Err(bad()),
        };
        // Let the client's own parser decode the parts; it refuses rediss:// unless built
        // with TLS, and the scheme is already recorded, so parse the plain form.
        let plain = format!("redis{}", &url[parsed.scheme().len()..]);
        let info = plain.as_str().into_connection_info().map_err(|_| bad())?;
        let ConnectionAddr::Tcp(host, port) = info.addr() else {
            return Err(bad());
        };
        self.host = host.clone();
        self.port = *port;
        let settings = info.redis_settings();
        self.db = settings.db();
        if let Some(user) = settings.username() {
            self.username = Some(user.to_owned());
        }
        if let Some(password) = settings.password() {
            self.password = Some(password.to_owned());
        }
        Ok(())
    }

    /// What the `redis` client connects to.
    pub fn connection_info(&self) -> Result<ConnectionInfo> {
        if self.tls && !cfg!(feature = "tls") {
            return Err(Error::config(
                "REDIS_URL",
                "rediss:// needs session-redis built with its `tls` feature",
            ));
        }
        let scheme = if self.tls { "rediss" } else { "redis" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        // No credentials in this URL: they are set below, so they never pass through a string
        // that an error could echo.
        let mut info = format!("{scheme}://{host}:{}/{}", self.port, self.db)
            .into_connection_info()
            .map_err(|_| Error::config("REDIS_HOST", "not a usable host name or address"))?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &self.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        info = info.set_redis_settings(settings);
        Ok(info)
    }
}

fn positive_ms(variable: &str, ms: u64) -> Result<Duration> {
    if ms == 0 {
        return Err(Error::config(variable, "must be at least 1 ms"));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<RedisConfig> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RedisConfig::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_are_the_existing_services() {
        let c = from(&[]).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.db, c.hash_ids),
            ("127.0.0.1", 6379, 0, false)
        );
        assert_eq!(c.session.key_prefix, "session:");
    }

    #[test]
    fn parts_and_url() {
        let c = from(&[
            ("REDIS_HOST", "unicorn-lago-redis"),
            ("REDIS_PORT", "6380"),
            ("REDIS_DB", "3"),
            ("REDIS_USERNAME", "svc"),
            ("REDIS_PASSWORD", "pw"),
            ("REDIS_CONNECT_TIMEOUT_MS", "150"),
            ("SESSION_TTL", "60"),
        ])
        .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.db),
            ("unicorn-lago-redis", 6380, 3)
        );
        assert_eq!(c.username.as_deref(), Some("svc"));
        assert_eq!(c.connect_timeout, Duration::from_millis(150));
        assert_eq!(c.session.idle_timeout, Duration::from_secs(60));

        let c = from(&[
            ("REDIS_PASSWORD", "env"),
            ("REDIS_URL", "rediss://u:p%40ss@[::1]:7000/5"),
        ])
        .unwrap();
        assert!(c.tls);
        assert_eq!((c.host.as_str(), c.port, c.db), ("::1", 7000, 5));
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("u"), Some("p@ss"))
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_hide_secrets() {
        for (name, value) in [
            ("REDIS_PORT", "70000"),
            ("REDIS_DB", "x"),
            ("REDIS_URL", "http://:topsecret@h/"),
            ("REDIS_URL", "redis://:topsecret@h/notadb"),
            ("REDIS_RESPONSE_TIMEOUT_MS", "0"),
            ("SESSION_HASH_IDS", "yes"),
        ] {
            let err = from(&[(name, value)]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(name), "{text}");
            assert!(!text.contains("topsecret"), "{text}");
        }
    }

    #[test]
    fn debug_redacts_the_password() {
        let c = from(&[("REDIS_PASSWORD", "hunter2")]).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("password: Some(<redacted>)"), "{shown}");
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn connection_info_carries_credentials_and_db() {
        let c = from(&[("REDIS_URL", "redis://alice:pw@127.0.0.1:7001/4")]).unwrap();
        let info = c.connection_info().unwrap();
        assert_eq!(info.redis_settings().db(), 4);
        assert_eq!(info.redis_settings().username(), Some("alice"));
        assert_eq!(info.redis_settings().password(), Some("pw"));
    }
}
