//! `RedisConfig`: connection settings and key mode, from the environment.

use std::fmt;
use std::path::PathBuf;
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
/// | `tls` | `REDIS_TLS` (`true`/`false`; the URL's scheme wins) | off |
/// | `tls_ca_file` | `REDIS_TLS_CA_FILE` (PEM; trusted instead of the public roots) | none |
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
/// # TLS
///
/// `rediss://` (or `REDIS_TLS=true`) connects with TLS, through rustls; it needs the crate's
/// `tls` feature. The server's certificate must name the host connected to and chain to a
/// trusted root: by default the public web PKI roots built into the client (`webpki-roots`),
/// which is what managed services (ElastiCache, Memorystore, Azure Cache, Upstash, …) use.
/// For a server whose certificate a private CA signed, set `tls_ca_file`
/// (`REDIS_TLS_CA_FILE`) to that CA's certificate (PEM, one or more): it is then the only
/// root trusted. A certificate that does not verify fails the connection with a
/// non-retryable [`Error::Backend`] whose source, [`TlsRejected`](crate::error::TlsRejected),
/// names the certificate problem; an unreadable CA file, or one without a PEM certificate,
/// is an [`Error::Config`] naming `REDIS_TLS_CA_FILE`. Client certificates (mutual TLS) are
/// not supported. The first TLS connection installs rustls's *ring* crypto provider as the
/// process default, unless the application installed one before.
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
    /// The CA certificate(s) (PEM file) to trust for TLS instead of the public roots: for
    /// servers whose certificate a private CA signed. Only with `tls`.
    pub tls_ca_file: Option<PathBuf>,
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
            tls_ca_file: None,
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
            .field("tls_ca_file", &self.tls_ca_file)
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
        if let Some(tls) = parse_var::<bool>(&lookup, "REDIS_TLS")? {
            c.tls = tls;
        }
        c.tls_ca_file = lookup("REDIS_TLS_CA_FILE")
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from);
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

    /// What the `redis` client connects to; with `tls_ca_file`, it carries that CA as the
    /// only trusted root (`redis::Client::open` keeps it).
    ///
    /// # Errors
    /// [`Error::Config`]: `rediss://` without the `tls` feature, a CA file without TLS, or a
    /// CA file that cannot be read or holds no PEM certificate.
    pub fn connection_info(&self) -> Result<ConnectionInfo> {
        if self.tls && !cfg!(feature = "tls") {
            return Err(Error::config(
                "REDIS_URL",
                "rediss:// needs session-redis built with its `tls` feature",
            ));
        }
        if self.tls_ca_file.is_some() && !self.tls {
            return Err(Error::config(
                "REDIS_TLS_CA_FILE",
                "set, but the connection is not TLS: use rediss:// (or REDIS_TLS=true)",
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
        #[cfg(feature = "tls")]
        if self.tls {
            info = tls::with_roots(info, self.tls_ca_file.as_deref())?;
        }
        Ok(info)
    }
}

#[cfg(feature = "tls")]
mod tls {
    use std::path::Path;

    use redis::ConnectionInfo;
    use session_core::{Error, Result};

    const VARIABLE: &str = "REDIS_TLS_CA_FILE";

    /// `info` with `ca_file` as its only trusted root (none: the client's built-in roots).
    /// Also makes sure rustls has a crypto provider.
    pub(super) fn with_roots(
        info: ConnectionInfo,
        ca_file: Option<&Path>,
    ) -> Result<ConnectionInfo> {
        install_crypto_provider();
        let Some(path) = ca_file else {
            return Ok(info);
        };
        let shown = path.display();
        let pem = std::fs::read(path)
            .map_err(|e| Error::config(VARIABLE, format!("cannot read {shown}: {e}")))?;
        // rustls skips what is not a certificate: a file without one would silently trust
        // nothing, and every server would fail as "unknown issuer".
        if !pem
            .windows(CERT_HEADER.len())
            .any(|w| w == CERT_HEADER.as_bytes())
        {
            return Err(Error::config(
                VARIABLE,
                format!("no PEM certificate ({CERT_HEADER}) in {shown}"),
            ));
        }
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        };
        // The client's message names the PEM problem; a CA certificate holds no secret.
        let client = redis::Client::build_with_tls(info, certificates).map_err(|e| {
            Error::config(
                VARIABLE,
                format!("not a usable CA certificate file ({shown}): {e}"),
            )
        })?;
        Ok(client.get_connection_info().clone())
    }

    const CERT_HEADER: &str = "-----BEGIN CERTIFICATE-----";

    /// The `redis` crate builds its rustls config with the process-wide default provider,
    /// and enables none itself: install *ring* unless the application installed one.
    fn install_crypto_provider() {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing a race to another installer is fine: any provider will do.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    }
}

fn positive_ms(variable: &str, ms: u64) -> Result<Duration> {
    if ms == 0 {
        return Err(Error::config(variable, "must be at least 1 ms"));
    }
    Ok(Duration::from_millis(ms))
}

/// Parses `host:port,host:port,…` (IPv6 hosts in brackets, `[::1]:7000`; a missing port is
/// `default_port`), naming `variable` in its errors. For lists of nodes to start from
/// (Sentinels, Cluster seed nodes).
pub fn parse_host_list(
    variable: &str,
    list: &str,
    default_port: u16,
) -> Result<Vec<(String, u16)>> {
    let bad = |what: &str| Error::config(variable, what);
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (host, port) = if let Some(rest) = item.strip_prefix('[') {
            let (host, tail) = rest
                .split_once(']')
                .ok_or_else(|| bad("unclosed [ in an IPv6 address"))?;
            (host, tail.strip_prefix(':'))
        } else {
            match item.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (item, None),
            }
        };
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("expected host:port with a port from 1 to 65535"))?,
        };
        if host.is_empty() {
            return Err(bad("empty host in the list"));
        }
        out.push((host.to_owned(), port));
    }
    if out.is_empty() {
        return Err(bad("required: a comma-separated list of host:port"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_lists_parse() {
        let list = super::parse_host_list("X", "a:1, [::1]:2 ,b", 9).unwrap();
        assert_eq!(
            list,
            vec![("a".into(), 1), ("::1".into(), 2), ("b".into(), 9)]
        );
        for bad in ["", "h:0", "h:x", "[::1:5", ":7"] {
            assert!(super::parse_host_list("X", bad, 9).is_err(), "{bad}");
        }
    }

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
    fn tls_settings() {
        let c = from(&[
            ("REDIS_TLS", "true"),
            ("REDIS_TLS_CA_FILE", "/etc/ssl/private-ca.pem"),
        ])
        .unwrap();
        assert!(c.tls);
        assert_eq!(
            c.tls_ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ssl/private-ca.pem"))
        );
        assert!(format!("{c:?}").contains("private-ca.pem"));
        // The URL's scheme wins over REDIS_TLS.
        let c = from(&[("REDIS_TLS", "true"), ("REDIS_URL", "redis://h:1/0")]).unwrap();
        assert!(!c.tls);
        let err = from(&[("REDIS_TLS", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("REDIS_TLS"), "{err}");

        let c = from(&[("REDIS_TLS_CA_FILE", "/etc/ssl/private-ca.pem")]).unwrap();
        let err = c.connection_info().unwrap_err();
        assert!(
            matches!(&err, Error::Config { variable, .. } if variable == "REDIS_TLS_CA_FILE"),
            "{err:?}"
        );
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn rediss_without_the_feature_is_a_config_error() {
        let c = from(&[("REDIS_URL", "rediss://h:1/0")]).unwrap();
        let err = c.connection_info().unwrap_err();
        assert!(err.to_string().contains("`tls` feature"), "{err}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn unusable_ca_files_are_config_errors() {
        let dir = std::env::temp_dir().join(format!("session-redis-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(
            &empty,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let garbled = dir.join("garbled.pem");
        std::fs::write(
            &garbled,
            "-----BEGIN CERTIFICATE-----\n!!notbase64!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for path in [dir.join("missing.pem"), empty, garbled] {
            let c = RedisConfig {
                tls: true,
                tls_ca_file: Some(path.clone()),
                ..RedisConfig::default()
            };
            let err = c.connection_info().unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(&err, Error::Config { variable, .. } if variable == "REDIS_TLS_CA_FILE"),
                "{path:?}: {err:?}"
            );
            assert!(text.contains(&path.display().to_string()), "{text}");
        }
        let _ = std::fs::remove_dir_all(&dir);
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
