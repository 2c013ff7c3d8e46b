//! [`ClusterConfig`]: the seed nodes, and the Redis backend's settings for the rest.

use std::fmt;

use session_core::{Error, Result};
use session_redis::config::parse_host_list;
use session_redis::RedisConfig;

/// Default port of a seed node given without one.
pub const DEFAULT_CLUSTER_PORT: u16 = 6379;

/// Settings of a [`ClusterStore`](crate::ClusterStore).
///
/// | field | variable | default |
/// |---|---|---|
/// | `nodes` | `REDIS_CLUSTER_NODES` (`host:port,host:port,…`, any nodes of the cluster; required) | |
/// | `redis` | `REDIS_USERNAME`, `REDIS_PASSWORD`, `REDIS_TLS`, timeouts, `SESSION_*`, … ([`RedisConfig`]) | |
///
/// Redis Cluster has one database: `REDIS_DB` must be 0. The existing service's key names
/// stay as they are (`session:{token}`, no hash tag), so it keeps reading them through a
/// cluster-aware client.
///
/// ```
/// use session_cluster::ClusterConfig;
///
/// let config = ClusterConfig::from_lookup(|name| match name {
///     "REDIS_CLUSTER_NODES" => Some("10.0.0.1:7000, 10.0.0.2:7000".into()),
///     "REDIS_PASSWORD" => Some("hunter2".into()),
///     _ => None,
/// })?;
/// assert_eq!(config.nodes.len(), 2);
/// assert!(!format!("{config:?}").contains("hunter2"));
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Nodes to learn the cluster from (any of them; the client finds the rest).
    pub nodes: Vec<(String, u16)>,
    /// Credentials, TLS, timeouts, key mode and session settings (host, port: unused).
    pub redis: RedisConfig,
}

impl ClusterConfig {
    /// Settings for these seed nodes with every default.
    pub fn new(nodes: Vec<(String, u16)>) -> Self {
        ClusterConfig {
            nodes,
            redis: RedisConfig::default(),
        }
    }

    /// Reads `REDIS_CLUSTER_NODES` and the Redis settings from the environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let list = lookup("REDIS_CLUSTER_NODES").unwrap_or_default();
        let nodes = parse_host_list("REDIS_CLUSTER_NODES", &list, DEFAULT_CLUSTER_PORT)?;
        let redis = RedisConfig::from_lookup(lookup)?;
        let config = ClusterConfig { nodes, redis };
        config.check()?;
        Ok(config)
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
        Ok(())
    }
}

impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("nodes", &self.nodes)
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
        for bad in [
            vec![],
            vec![("REDIS_CLUSTER_NODES", "a:notaport")],
            vec![("REDIS_CLUSTER_NODES", "a:7000"), ("REDIS_DB", "2")],
        ] {
            let err = from(&bad).unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{bad:?}: {err}");
        }
    }
}
