//! [`ClusterConfig`]: the seed nodes, and the Redis backend's settings for the rest.

use std::fmt;

use session_core::{Error, Result};
use session_redis::config::parse_host_list;
use session_redis::durability::{pool_size_from_lookup, Durability, DurabilityPolicy};
use session_redis::RedisConfig;

/// Default port of a seed node given without one.
pub const DEFAULT_CLUSTER_PORT: u16 = 6379;
/// Default number of replicated writes in flight at once (each on a connection of its own to
/// its slot's primary).
pub const DEFAULT_WAIT_POOL_SIZE: usize = 16;

/// Settings of a [`ClusterStore`](crate::ClusterStore).
///
/// | field | variable | default |
/// |---|---|---|
/// | `nodes` | `REDIS_CLUSTER_NODES` (`host:port,host:port,…`, any nodes of the cluster; required) | |
/// | `save_durability` | `REDIS_WAIT_REPLICAS` (0 = async) | async |
/// | `revoke_durability` | `REDIS_WAIT_REPLICAS_REVOKE` (0 = async) | 1 replica |
/// | both `WAIT` timeouts | `REDIS_WAIT_TIMEOUT_MS` | 250 |
/// | `wait_pool_size` | `REDIS_WAIT_POOL_SIZE` | 16 |
/// | `redis` | `REDIS_USERNAME`, `REDIS_PASSWORD`, `REDIS_TLS`, timeouts, `SESSION_*`, … ([`RedisConfig`]) | |
///
/// The durability settings are the Sentinel backend's, with the same variables and defaults
/// ([`DurabilityPolicy`]); on a cluster `WAIT` counts the replicas of the shard that took the
/// write (see the [crate docs](crate#durability)).
///
/// Redis Cluster has one database: `REDIS_DB` must be 0. The existing service's key names
/// stay as they are (`session:{token}`, no hash tag), so it keeps reading them through a
/// cluster-aware client.
///
/// ```
/// use session_cluster::{ClusterConfig, Durability};
///
/// let config = ClusterConfig::from_lookup(|name| match name {
///     "REDIS_CLUSTER_NODES" => Some("10.0.0.1:7000, 10.0.0.2:7000".into()),
///     "REDIS_PASSWORD" => Some("hunter2".into()),
///     _ => None,
/// })?;
/// assert_eq!(config.nodes.len(), 2);
/// assert_eq!(config.save_durability, Durability::Async); // revocations wait for 1 replica
/// assert!(!format!("{config:?}").contains("hunter2"));
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Nodes to learn the cluster from (any of them; the client finds the rest).
    pub nodes: Vec<(String, u16)>,
    /// Durability of every `put` and of `refresh`.
    pub save_durability: Durability,
    /// Durability of `delete`, `delete_user`, `rotate`.
    pub revoke_durability: Durability,
    /// How many replicated writes may be in flight at once, over all primaries: each has a
    /// connection to its slot's primary to itself, since `WAIT` blocks its connection. More
    /// concurrent ones wait for a free place (for the connect timeout less the `WAIT` timeout
    /// at most, then fail with [`Saturated`](crate::Saturated), not sent).
    pub wait_pool_size: usize,
    /// Credentials, TLS, timeouts, key mode and session settings (host, port: unused).
    pub redis: RedisConfig,
}

impl ClusterConfig {
    /// Settings for these seed nodes with every default.
    pub fn new(nodes: Vec<(String, u16)>) -> Self {
        let durability = DurabilityPolicy::default();
        ClusterConfig {
            nodes,
            save_durability: durability.save,
            revoke_durability: durability.revoke,
            wait_pool_size: DEFAULT_WAIT_POOL_SIZE,
            redis: RedisConfig::default(),
        }
    }

    /// Reads `REDIS_CLUSTER_NODES`, the durability settings and the Redis settings from the
    /// environment (see the table above).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let list = lookup("REDIS_CLUSTER_NODES").unwrap_or_default();
        let nodes = parse_host_list("REDIS_CLUSTER_NODES", &list, DEFAULT_CLUSTER_PORT)?;
        let durability = DurabilityPolicy::from_lookup(&lookup)?;
        let wait_pool_size = pool_size_from_lookup(&lookup)?.unwrap_or(DEFAULT_WAIT_POOL_SIZE);
        let redis = RedisConfig::from_lookup(lookup)?;
        let config = ClusterConfig {
            nodes,
            save_durability: durability.save,
            revoke_durability: durability.revoke,
            wait_pool_size,
            redis,
        };
        config.check()?;
        Ok(config)
    }

    /// The two durability settings.
    pub fn durability(&self) -> DurabilityPolicy {
        DurabilityPolicy {
            save: self.save_durability,
            revoke: self.revoke_durability,
        }
    }

    /// Settings that cannot work on a cluster.
    pub(crate) fn check(&self) -> Result<()> {
        if self.nodes.is_empty() {
            return Err(Error::config("REDIS_CLUSTER_NODES", "no node given"));
        }
        if self.redis.db != 0 {
            return Err(Error::config(
                "REDIS_DB",
                "Redis Cluster has only database 0",
            ));
        }
        // The cluster client would need the CA for every node it discovers: not wired yet.
        if self.redis.tls {
            return Err(Error::config(
                "REDIS_TLS",
                "TLS to a Redis Cluster is not supported yet",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("nodes", &self.nodes)
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

    fn from(vars: &[(&str, &str)]) -> Result<ClusterConfig> {
        ClusterConfig::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn reads_nodes_and_rejects_what_a_cluster_cannot_do() {
        let c = from(&[("REDIS_CLUSTER_NODES", "a:7000,[::1]:7001,b")]).unwrap();
        assert_eq!(
            c.nodes,
            vec![("a".into(), 7000), ("::1".into(), 7001), ("b".into(), 6379)]
        );
        assert_eq!(c.save_durability, Durability::Async);
        assert_eq!(c.revoke_durability, DurabilityPolicy::default().revoke);
        assert_eq!(c.wait_pool_size, DEFAULT_WAIT_POOL_SIZE);
        for bad in [
            vec![],
            vec![("REDIS_CLUSTER_NODES", "a:notaport")],
            vec![("REDIS_CLUSTER_NODES", "a:7000"), ("REDIS_DB", "2")],
            vec![("REDIS_CLUSTER_NODES", "a:7000"), ("REDIS_TLS", "true")],
            vec![
                ("REDIS_CLUSTER_NODES", "a:7000"),
                ("REDIS_WAIT_TIMEOUT_MS", "0"),
            ],
            vec![
                ("REDIS_CLUSTER_NODES", "a:7000"),
                ("REDIS_WAIT_POOL_SIZE", "0"),
            ],
        ] {
            let err = from(&bad).unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{bad:?}: {err}");
        }
    }

    #[test]
    fn reads_the_sentinel_backends_durability_variables() {
        let c = from(&[
            ("REDIS_CLUSTER_NODES", "a:7000"),
            ("REDIS_WAIT_REPLICAS", "1"),
            ("REDIS_WAIT_REPLICAS_REVOKE", "2"),
            ("REDIS_WAIT_TIMEOUT_MS", "100"),
            ("REDIS_WAIT_POOL_SIZE", "8"),
        ])
        .unwrap();
        let timeout = std::time::Duration::from_millis(100);
        assert_eq!(
            c.durability(),
            DurabilityPolicy {
                save: Durability::Replicated {
                    replicas: 1,
                    timeout
                },
                revoke: Durability::Replicated {
                    replicas: 2,
                    timeout
                },
            }
        );
        assert_eq!(c.wait_pool_size, 8);
    }
}
