//! The demo's own settings, from `DEMO_*` variables (the store reads its own, see
//! `session_store::BackendConfig`).

use std::net::SocketAddr;
use std::time::Duration;

use session_store::{parse_var, Error, Result};

/// Default listening address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";
/// Default window in which a user counts as active on the admin page.
pub const DEFAULT_ACTIVE_MINUTES: u64 = 15;
/// Default cap on the sessions the admin page reads (per view).
pub const DEFAULT_ADMIN_SCAN_LIMIT: usize = 10_000;
/// Default period of the cleanup task, in seconds.
pub const DEFAULT_CLEANUP_SECONDS: u64 = 60;

/// Settings of the demo service.
///
/// | field | variable | default |
/// |---|---|---|
/// | `addr` | `DEMO_ADDR` | `127.0.0.1:3000` (`127.0.0.1:0` picks a free port) |
/// | `secure_cookie` | `DEMO_SECURE_COOKIE` (`1`/`true`/`yes`, `0`/`false`/`no`) | off |
/// | `active_window` | `DEMO_ACTIVE_MINUTES` | 15 |
/// | `admin_scan_limit` | `DEMO_ADMIN_SCAN_LIMIT` | 10000 |
/// | `cleanup_interval` | `DEMO_CLEANUP_SECONDS` (`0`: no cleanup task) | 60 |
///
/// ```
/// use session_demo::DemoConfig;
///
/// let config = DemoConfig::from_lookup(|name| match name {
///     "DEMO_ADDR" => Some("127.0.0.1:0".into()),
///     "DEMO_SECURE_COOKIE" => Some("1".into()),
///     _ => None,
/// })?;
/// assert!(config.secure_cookie);
/// assert_eq!(config.addr.port(), 0);
///
/// let err = DemoConfig::from_lookup(|name| (name == "DEMO_ADDR").then(|| "localhost".into()));
/// assert!(err.unwrap_err().to_string().contains("DEMO_ADDR"));
/// # Ok::<(), session_store::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Mark the session cookie `Secure`. The demo itself serves plain HTTP; set this when a
    /// TLS-terminating proxy sits in front of it.
    pub secure_cookie: bool,
    /// A user is "active" on the admin page if one of their sessions saw activity this recently.
    pub active_window: Duration,
    /// At most this many sessions are read per admin page view (for its users and logins);
    /// the page says when it stopped there.
    pub admin_scan_limit: usize,
    /// How often the binary purges expired sessions (`cleanup`) and then sets the
    /// live-sessions gauge from `count`; `None`: never.
    pub cleanup_interval: Option<Duration>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            addr: DEFAULT_ADDR.parse().expect("valid default address"),
            secure_cookie: false,
            active_window: Duration::from_secs(DEFAULT_ACTIVE_MINUTES * 60),
            admin_scan_limit: DEFAULT_ADMIN_SCAN_LIMIT,
            cleanup_interval: Some(Duration::from_secs(DEFAULT_CLEANUP_SECONDS)),
        }
    }
}

impl DemoConfig {
    /// Reads the process environment (see the table above).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable at fault.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut config = DemoConfig::default();
        if let Some(addr) = lookup("DEMO_ADDR").filter(|a| !a.trim().is_empty()) {
            config.addr = addr
                .trim()
                .parse()
                .map_err(|_| Error::config("DEMO_ADDR", "expected IP:PORT, like 127.0.0.1:3000"))?;
        }
        if let Some(flag) = lookup("DEMO_SECURE_COOKIE") {
            config.secure_cookie = parse_flag(&flag)
                .ok_or_else(|| Error::config("DEMO_SECURE_COOKIE", "expected 1 or 0"))?;
        }
        if let Some(minutes) = parse_var::<u64>(&lookup, "DEMO_ACTIVE_MINUTES")? {
            if minutes == 0 {
                return Err(Error::config("DEMO_ACTIVE_MINUTES", "must be at least 1"));
            }
            config.active_window = Duration::from_secs(minutes.saturating_mul(60));
        }
        if let Some(limit) = parse_var::<usize>(&lookup, "DEMO_ADMIN_SCAN_LIMIT")? {
            if limit == 0 {
                return Err(Error::config("DEMO_ADMIN_SCAN_LIMIT", "must be positive"));
            }
            config.admin_scan_limit = limit;
        }
        if let Some(seconds) = parse_var::<u64>(&lookup, "DEMO_CLEANUP_SECONDS")? {
            config.cleanup_interval = (seconds > 0).then(|| Duration::from_secs(seconds));
        }
        Ok(config)
    }
}

fn parse_flag(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "" | "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_variables() {
        let config = DemoConfig::from_lookup(|_| None).unwrap();
        assert_eq!(config, DemoConfig::default());
        assert_eq!(config.addr.to_string(), DEFAULT_ADDR);
        assert!(!config.secure_cookie);
        assert_eq!(config.cleanup_interval, Some(Duration::from_secs(60)));
    }

    #[test]
    fn cleanup_seconds_zero_turns_the_task_off() {
        let config = DemoConfig::from_lookup(|n| (n == "DEMO_CLEANUP_SECONDS").then(|| "0".into()));
        assert_eq!(config.unwrap().cleanup_interval, None);
        let config = DemoConfig::from_lookup(|n| (n == "DEMO_CLEANUP_SECONDS").then(|| "5".into()));
        assert_eq!(
            config.unwrap().cleanup_interval,
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("DEMO_SECURE_COOKIE", "maybe"),
            ("DEMO_ACTIVE_MINUTES", "0"),
            ("DEMO_ACTIVE_MINUTES", "ten"),
            ("DEMO_ADMIN_SCAN_LIMIT", "0"),
            ("DEMO_CLEANUP_SECONDS", "-1"),
        ] {
            let err =
                DemoConfig::from_lookup(|n| (n == name).then(|| value.to_owned())).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
