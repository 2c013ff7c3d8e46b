//! `SentinelConfig`: the Sentinels, the master name, failover and durability settings.

use std::fmt;
use std::time::Duration;

use session_core::{parse_var, Error, Result};
use session_redis::durability::{pool_size_from_lookup, DurabilityPolicy};
use session_redis::RedisConfig;

/// How many replicas must confirm a write (shared with the Cluster backend). `Replicated`
/// fails a call with [`SentinelError::NotReplicated`](crate::SentinelError) when fewer
/// confirm in time; see the [crate docs](crate#durability) for what it does and does not
/// guarantee on Sentinel, and what it costs.
pub use session_redis::durability::Durability;
/// Default `WAIT` timeout of replicated writes.
pub use session_redis::durability::DEFAULT_WAIT_TIMEOUT;

/// Default master name (`REDIS_MASTER_NAME`).
pub const DEFAULT_MASTER_NAME: &str = "mymaster";
/// Default port of a Sentinel given without one.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;
/// Default bound on connecting to one Sentinel and on its reply (the spec's "few hundred ms").
pub const DEFAULT_SENTINEL_TIMEOUT: Duration = Duration::from_millis(300);
/// Default time an operation that is safe to repeat keeps retrying across a failover.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(5);
/// Default number of connections replicated writes use at most, per master.
pub const DEFAULT_WAIT_POOL_SIZE: usize = 64;

/// Settings of a [`SentinelStore`](crate::SentinelStore).
///
/// | field | variable | default |
/// |---|---|---|
/// | `sentinels` | `REDIS_SENTINELS` (`host:port,host:port,…`; required) | |
/// | `master_name` | `REDIS_MASTER_NAME` | `mymaster` |
/// | `sentinel_username` | `REDIS_SENTINEL_USERNAME` | none |
/// | `sentinel_password` | `REDIS_SENTINEL_PASSWORD` | none |
/// | `sentinel_timeout` | `REDIS_SENTINEL_TIMEOUT_MS` | 300 |
/// | `retry_budget` | `REDIS_SENTINEL_RETRY_BUDGET_MS` (0 = no retries) | 5000 |
/// | `save_durability` | `REDIS_WAIT_REPLICAS` (0 = async) | async |
/// | `revoke_durability` | `REDIS_WAIT_REPLICAS_REVOKE` (0 = async) | 1 replica |
/// | both `WAIT` timeouts | `REDIS_WAIT_TIMEOUT_MS` | 250 |
/// | `wait_pool_size` | `REDIS_WAIT_POOL_SIZE` | 64 |
/// | `redis` | everything [`RedisConfig`] reads (`REDIS_DB`, `REDIS_USERNAME`, `REDIS_PASSWORD`, timeouts, `SESSION_*`) except the address, which the Sentinels give | |
/// | `redis.tls`, `redis.tls_ca_file` | `REDIS_TLS`, `REDIS_TLS_CA_FILE` (feature `tls`): TLS to the Sentinels and the data nodes alike | off |
///
/// `save_durability` covers every `put` (so `create`, `set`, `save`, `import`) and `refresh`,
/// and any write the connection does not recognise as a deletion; `revoke_durability` covers
/// `delete`, `delete_user` and `rotate` (and any `DEL`/`UNLINK`), whose loss brings a
/// logged-out session back (see the [crate docs](crate#durability)). `Debug` hides both
/// passwords.
///
/// ```
/// use session_sentinel::{Durability, SentinelConfig};
///
/// let config = SentinelConfig::from_lookup(|name| match name {
///     "REDIS_SENTINELS" => Some("10.0.0.1:26379, 10.0.0.2".into()),
///     "REDIS_SENTINEL_PASSWORD" => Some("s3cret".into()),
///     "REDIS_WAIT_REPLICAS" => Some("1".into()),
///     _ => None,
/// })?;
/// assert_eq!(config.sentinels, vec![("10.0.0.1".to_string(), 26379), ("10.0.0.2".to_string(), 26379)]);
/// assert_eq!(config.master_name, "mymaster");
/// assert!(matches!(config.save_durability, Durability::Replicated { replicas: 1, .. }));
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelConfig {
    /// The Sentinels, tried in this order (the first that answers moves to the front).
    pub sentinels: Vec<(String, u16)>,
    /// The master name the Sentinels monitor.
    pub master_name: String,
    /// ACL user for the Sentinels (separate from the data nodes').
    pub sentinel_username: Option<String>,
    /// Password for the Sentinels (separate from the data nodes').
    pub sentinel_password: Option<String>,
    /// Bound on connecting to one Sentinel, and on its reply.
    pub sentinel_timeout: Duration,
    /// How long operations that are safe to repeat keep retrying across a failover.
    pub retry_budget: Duration,
    /// Durability of every `put` and of `refresh`.
    pub save_durability: Durability,
    /// Durability of `delete`, `delete_user`, `rotate`.
    pub revoke_durability: Durability,
    /// How many connections to the master replicated writes use at most: each in-flight
    /// replicated write has one to itself, since `WAIT` blocks its connection. More
    /// concurrent ones wait for a free connection (for the response timeout at most, then
    /// fail with `SentinelError::Saturated`, and are retried within the budget).
    pub wait_pool_size: usize,
    /// Data-node settings: db, credentials, timeouts, key mode, session settings. Its host
    /// and port are not used.
    pub redis: RedisConfig,
}

impl SentinelConfig {
    /// Settings for these Sentinels with every default.
    pub fn new(sentinels: Vec<(String, u16)>) -> Self {
        SentinelConfig {
            sentinels,
            master_name: DEFAULT_MASTER_NAME.into(),
            sentinel_username: None,
            sentinel_password: None,
            sentinel_timeout: DEFAULT_SENTINEL_TIMEOUT,
            retry_budget: DEFAULT_RETRY_BUDGET,
            save_durability: DurabilityPolicy::default().save,
            revoke_durability: DurabilityPolicy::default().revoke,
            wait_pool_size: DEFAULT_WAIT_POOL_SIZE,
            redis: RedisConfig::default(),
        }
    }

    /// Reads the process environment (see the table above).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let list = lookup("REDIS_SENTINELS").unwrap_or_default();
        let mut c = SentinelConfig::new(parse_sentinels(&list)?);
        c.redis = RedisConfig::from_lookup(&lookup)?;
        if let Some(name) = lookup("REDIS_MASTER_NAME").filter(|n| !n.trim().is_empty()) {
            c.master_name = name.trim().to_owned();
        }
        c.sentinel_username = lookup("REDIS_SENTINEL_USERNAME").filter(|u| !u.is_empty());
        c.sentinel_password = lookup("REDIS_SENTINEL_PASSWORD").filter(|p| !p.is_empty());
        if let Some(ms) = parse_var::<u64>(&lookup, "REDIS_SENTINEL_TIMEOUT_MS")? {
            if ms == 0 {
                return Err(Error::config(
                    "REDIS_SENTINEL_TIMEOUT_MS",
                    "must be at least 1 ms",
                ));
            }
            c.sentinel_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = parse_var::<u64>(&lookup, "REDIS_SENTINEL_RETRY_BUDGET_MS")? {
            c.retry_budget = Duration::from_millis(ms);
        }
        let policy = DurabilityPolicy::from_lookup(&lookup)?;
        c.save_durability = policy.save;
        c.revoke_durability = policy.revoke;
        if let Some(n) = pool_size_from_lookup(&lookup)? {
            c.wait_pool_size = n;
        }
        Ok(c)
    }

    /// The two durability settings, for the classifier.
    pub(crate) fn policy(&self) -> DurabilityPolicy {
        DurabilityPolicy {
            save: self.save_durability,
            revoke: self.revoke_durability,
        }
    }

    /// The longest `WAIT` timeout configured (zero when both are async).
    pub(crate) fn max_wait(&self) -> Duration {
        self.policy().max_wait()
    }
}

/// Parses `host:port,host:port,…` (`[v6]:port`; a missing port is 26379). The value is not
/// repeated in errors.
fn parse_sentinels(list: &str) -> Result<Vec<(String, u16)>> {
    session_redis::config::parse_host_list("REDIS_SENTINELS", list, DEFAULT_SENTINEL_PORT)
}

impl fmt::Debug for SentinelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelConfig")
            .field("sentinels", &self.sentinels)
            .field("master_name", &self.master_name)
            .field("sentinel_username", &self.sentinel_username)
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "<redacted>"),
            )
            .field("sentinel_timeout", &self.sentinel_timeout)
            .field("retry_budget", &self.retry_budget)
            .field("save_durability", &self.save_durability)
            .field("revoke_durability", &self.revoke_durability)
            .field("wait_pool_size", &self.wait_pool_size)
            .field("redis", &self.redis)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<SentinelConfig> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SentinelConfig::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn reads_every_variable() {
        let c = from(&[
            ("REDIS_SENTINELS", "a:1, [::1]:2 ,b"),
            ("REDIS_MASTER_NAME", "sessions"),
            ("REDIS_SENTINEL_USERNAME", "sent"),
            ("REDIS_SENTINEL_PASSWORD", "spw"),
            ("REDIS_PASSWORD", "dpw"),
            ("REDIS_DB", "3"),
            ("REDIS_SENTINEL_TIMEOUT_MS", "100"),
            ("REDIS_SENTINEL_RETRY_BUDGET_MS", "0"),
            ("REDIS_WAIT_REPLICAS", "2"),
            ("REDIS_WAIT_REPLICAS_REVOKE", "0"),
            ("REDIS_WAIT_TIMEOUT_MS", "50"),
            ("REDIS_WAIT_POOL_SIZE", "8"),
            ("SESSION_TTL", "60"),
        ])
        .unwrap();
        assert_eq!(
            c.sentinels,
            vec![("a".into(), 1), ("::1".into(), 2), ("b".into(), 26379)]
        );
        assert_eq!(c.master_name, "sessions");
        assert_eq!(c.sentinel_username.as_deref(), Some("sent"));
        assert_eq!(c.sentinel_password.as_deref(), Some("spw"));
        assert_eq!(c.redis.password.as_deref(), Some("dpw"));
        assert_eq!(c.redis.db, 3);
        assert_eq!(c.sentinel_timeout, Duration::from_millis(100));
        assert_eq!(c.retry_budget, Duration::ZERO);
        let wait = Duration::from_millis(50);
        assert_eq!(
            c.save_durability,
            Durability::Replicated {
                replicas: 2,
                timeout: wait
            }
        );
        assert_eq!(c.revoke_durability, Durability::Async);
        assert_eq!(c.wait_pool_size, 8);
        assert_eq!(c.redis.session.idle_timeout, Duration::from_secs(60));
    }

    #[test]
    fn defaults() {
        let c = from(&[("REDIS_SENTINELS", "s1:26379")]).unwrap();
        assert_eq!(c.master_name, "mymaster");
        assert_eq!(c.save_durability, Durability::Async);
        assert!(matches!(
            c.revoke_durability,
            Durability::Replicated { replicas: 1, .. }
        ));
        assert_eq!(c.retry_budget, DEFAULT_RETRY_BUDGET);
        assert_eq!(c.wait_pool_size, DEFAULT_WAIT_POOL_SIZE);
    }

    #[test]
    fn bad_values_name_the_variable_and_hide_secrets() {
        for (name, value) in [
            ("REDIS_SENTINELS", ""),
            ("REDIS_SENTINELS", "host:notaport"),
            ("REDIS_SENTINELS", "[::1:5"),
            ("REDIS_SENTINEL_TIMEOUT_MS", "0"),
            ("REDIS_SENTINEL_RETRY_BUDGET_MS", "soon"),
            ("REDIS_WAIT_REPLICAS", "-1"),
            ("REDIS_WAIT_TIMEOUT_MS", "0"),
            ("REDIS_WAIT_POOL_SIZE", "0"),
        ] {
            let mut pairs = vec![
                ("REDIS_SENTINELS", "s:1"),
                ("REDIS_SENTINEL_PASSWORD", "topsecret"),
            ];
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, value));
            let err = from(&pairs).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(name), "{text}");
            assert!(!text.contains("topsecret"), "{text}");
        }
    }

    #[test]
    fn debug_hides_both_passwords() {
        let c = from(&[
            ("REDIS_SENTINELS", "s:1"),
            ("REDIS_SENTINEL_PASSWORD", "sentinel-secret"),
            ("REDIS_PASSWORD", "data-secret"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("sentinel-secret") && !shown.contains("data-secret"),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"));
    }
}
