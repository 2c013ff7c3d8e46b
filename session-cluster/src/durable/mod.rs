//! Replicated writes on a cluster: a write that a [`Durability::Replicated`] setting covers
//! goes out with `WAIT replicas timeout` as one pipeline, routed to the write's slot, on a
//! cluster connection of its own from a small pool.
//!
//! The cluster client keeps one multiplexed connection per node, shared by every caller, and
//! `WAIT` blocks the connection it is sent on, on the server: sent there, one caller's `WAIT`
//! would hold up every other caller's commands to that node until it answered. So each
//! replicated write in flight checks out a separate [`ClusterConnection`] (its own socket to
//! each node), sends `[MULTI …] write [EXEC] WAIT` on it, and gives it back only once the
//! `WAIT` has answered. A connection whose request failed is dropped, not given back (a
//! `WAIT` may still be queued on it).
//!
//! How the pipeline is routed: to the primary serving the slot of the first key the write
//! names (or to the node a pinned connection names). The cluster client follows `MOVED` and
//! `ASK` for the whole pipeline, so `WAIT` always runs on the node that ran the write, right
//! after it, on the same connection.
//!
//! The whole attempt fits the store's deadline (connect + response timeout): getting a
//! connection (waiting for a free one, opening one) takes at most the connect timeout less
//! the `WAIT` timeout (half the connect timeout at least), the write and its `WAIT` at most
//! the response timeout plus the `WAIT` timeout.
//!
//! [`Durability::Replicated`]: session_redis::durability::Durability::Replicated

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ConnectionInfo, ErrorKind, RedisError, RedisResult, Value};
use session_core::Error;
use session_redis::durability::{
    carry, confirmed, find, wait_waking, Classifier, DurabilityPolicy, Handling, NotReplicated,
    Request, Saturated, WithWait,
};
use session_redis::keys::key_slot;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::{timeout_at, Instant};

use crate::config::ClusterConfig;

/// Replicated writes for one [`ClusterConn`](crate::ClusterConn) and its clones: which
/// requests need them, and the connections they go on.
pub(crate) struct Durable {
    classifier: Classifier,
    policy: DurabilityPolicy,
    /// Opens the pool's connections: the store's nodes and credentials, with a response
    /// timeout that covers a `WAIT`.
    client: ClusterClient,
    idle: Mutex<Vec<ClusterConnection>>,
    permits: Semaphore,
    limit: usize,
    /// Bound on getting a connection (see the module docs).
    checkout: Duration,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("policy", &self.policy)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// A connection checked out for one write; back in the pool only once its `WAIT` answered.
struct Lease<'a> {
    durable: &'a Durable,
    conn: ClusterConnection,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    fn give_back(self) {
        let Lease { durable, conn, .. } = self;
        durable
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
    }
}

impl Durable {
    /// The replicated-write layer for `config`, or `None` when no setting waits for
    /// replicas. `nodes`: the seed nodes with the store's credentials and TLS.
    ///
    /// # Errors
    /// When the cluster client rejects the settings.
    pub(crate) fn new(
        config: &ClusterConfig,
        nodes: Vec<ConnectionInfo>,
    ) -> RedisResult<Option<Self>> {
        let policy = config.durability();
        if !policy.any_replicated() {
            return Ok(None);
        }
        let redis = &config.redis;
        // Retry waits as the store's own client has them (a TRYAGAIN during a reshard is
        // retried within the response timeout, not after 1.28 s).
        let response_timeout = redis.response_timeout + policy.max_wait();
        let client = crate::store::with_retry_waits(
            ClusterClientBuilder::new(nodes)
                .connection_timeout(redis.connect_timeout)
                .response_timeout(response_timeout),
            response_timeout,
        )
        .build()?;
        let limit = config.wait_pool_size.max(1);
        Ok(Some(Durable {
            classifier: Classifier::new(),
            policy,
            client,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(limit),
            limit,
            checkout: redis
                .connect_timeout
                .saturating_sub(policy.max_wait())
                .max(redis.connect_timeout / 2),
        }))
    }

    /// How `request` goes out with its `WAIT`, if a replicated setting covers it and it names
    /// where it goes (a key, or the node `pinned` names). `None`: send it as it is on the
    /// shared connection (a read, an async write, a write naming no key).
    pub(crate) fn plan(
        self: &Arc<Self>,
        pinned: Option<&(String, u16)>,
        request: Request<'_>,
    ) -> Option<Plan> {
        let Handling::Replicated { replicas, timeout } =
            self.classifier.handling(&self.policy, request)
        else {
            return None;
        };
        let route = match pinned {
            Some((host, port)) => SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port: *port,
            },
            None => {
                let slot = key_slot(self.classifier.written_key(request)?);
                SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master))
            }
        };
        Some(Plan {
            durable: Arc::clone(self),
            route,
            replicas,
            timeout,
        })
    }

    /// A connection of its own for one write: an idle one, or a new one.
    ///
    /// # Errors
    /// [`Saturated`] when none frees up in time; the cluster client's error (or a timeout)
    /// when a new one cannot be opened. Nothing was sent.
    async fn lease(&self) -> RedisResult<Lease<'_>> {
        let deadline = Instant::now() + self.checkout;
        let permit = timeout_at(deadline, self.permits.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| carry(Saturated { limit: self.limit }))?;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => timeout_at(deadline, self.client.get_async_connection())
                .await
                .map_err(|_| {
                    RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no connection for a replicated write could be opened in time",
                    ))
                })??,
        };
        Ok(Lease {
            durable: self,
            conn,
            _permit: permit,
        })
    }
}

/// A replicated write's route and `WAIT`, decided before anything is sent.
pub(crate) struct Plan {
    durable: Arc<Durable>,
    route: SingleNodeRoutingInfo,
    replicas: u32,
    timeout: Duration,
}

impl Plan {
    /// Sends `request` and `WAIT` on a connection of its own, waking the node through the
    /// `shared` connection when the `WAIT` is due (see `wait_waking`).
    pub(crate) async fn send(
        self,
        shared: &ClusterConnection,
        request: Request<'_>,
    ) -> RedisResult<Vec<Value>> {
        let Plan {
            durable,
            route,
            replicas,
            timeout,
        } = self;
        let mut lease = durable.lease().await?;
        let WithWait {
            pipeline,
            kept,
            total,
        } = request.with_wait(replicas, timeout);
        let reply = lease.conn.route_pipeline(pipeline, 0, total, route.clone());
        let result = wait_waking(reply, timeout, || {
            let mut shared = shared.clone();
            let route = RoutingInfo::SingleNode(route.clone());
            tokio::spawn(async move {
                let _ = shared.route_command(redis::cmd("PING"), route).await;
            });
        })
        .await;
        let values = match result {
            Ok(values) if values.len() == total => {
                lease.give_back();
                values
            }
            Ok(_) => {
                return Err(RedisError::from((
                    ErrorKind::Client,
                    "short reply to a write pipelined with WAIT",
                )))
            }
            Err(e) => return Err(e),
        };
        match confirmed(values, kept, replicas, timeout) {
            Ok(values) => Ok(values),
            Err(Some(short)) => Err(carry(short)),
            Err(None) => Err(RedisError::from((
                ErrorKind::Client,
                "WAIT did not answer with a number of replicas",
            ))),
        }
    }
}

/// The store's error with a [`NotReplicated`] or [`Saturated`] carried inside it (through the
/// `redis` client's error type) as its direct source, as the Sentinel backend returns its own.
pub(crate) fn surface(err: Error) -> Error {
    let Error::Unavailable { backend, source } = err else {
        return err;
    };
    let found: Option<Box<dyn std::error::Error + Send + Sync>> =
        if let Some(short) = find::<NotReplicated>(source.as_ref()) {
            Some(Box::new(*short))
        } else {
            find::<Saturated>(source.as_ref()).map(|s| Box::new(*s) as _)
        };
    Error::Unavailable {
        backend,
        source: found.unwrap_or(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carried_errors_become_the_direct_source() {
        let short = NotReplicated {
            acked: 0,
            wanted: 1,
            timeout: Duration::from_millis(250),
        };
        let err = session_redis::error::to_store_error(crate::BACKEND, carry(short));
        let err = surface(err);
        assert!(err.is_retryable());
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(source.downcast_ref::<NotReplicated>(), Some(&short));
        let err = surface(session_redis::error::to_store_error(
            crate::BACKEND,
            carry(Saturated { limit: 8 }),
        ));
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(
            source.downcast_ref::<Saturated>(),
            Some(&Saturated { limit: 8 })
        );
        // Anything else is left as it is.
        let other = RedisError::from((ErrorKind::Client, "other"));
        let err = surface(session_redis::error::to_store_error(crate::BACKEND, other));
        assert!(std::error::Error::source(&err)
            .unwrap()
            .downcast_ref::<RedisError>()
            .is_some());
    }
}
