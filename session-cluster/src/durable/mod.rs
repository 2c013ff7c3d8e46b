//! Replicated writes on a cluster: a write that a [`Durability::Replicated`] setting covers
//! goes out with `WAIT replicas timeout` as one pipeline, to the primary serving the write's
//! slot, on a connection to that node of its own from a small pool.
//!
//! The [`Router`] keeps one multiplexed connection per node, shared by every caller, and
//! `WAIT` blocks the connection it is sent on, on the server: sent there, one caller's `WAIT`
//! would hold up every other caller's commands to that node until it answered. So each
//! replicated write in flight checks out a connection to its node that nobody else uses
//! ([`pool`]), sends `[MULTI …] write [EXEC] WAIT` on it, and gives it back only once the
//! `WAIT` has answered. A connection whose request failed is dropped, not given back (a
//! `WAIT` may still be queued on it), and so are the idle ones to the same node. A write
//! needs a connection to its own node only: while a node is unreachable, only the writes to
//! its slots fail.
//!
//! How the pipeline is routed: to the primary serving the slot of the first key the write
//! names (or to the node a pinned connection names), by the [`Router`]'s slot map (learned
//! again first when it has no node for the slot). What a node answers instead of running it
//! ([`redirect`]) is
//! followed here, the whole pipeline each time, so `WAIT` always runs on the node that ran
//! the write, right after it, on the same connection: `MOVED` (the map takes the new owner,
//! and is learned again off the write's path; the write goes to the new owner at once),
//! `ASK` (`ASKING`, then the pipeline, on a connection to the node named, once),
//! `TRYAGAIN`/`CLUSTERDOWN`/`LOADING`/`MASTERDOWN` (the same node again after a pause,
//! doubling from 10 ms up to a quarter of the request's bound, as [`Follow`](crate::Follow)
//! does for other requests) and `READONLY` (likewise, the map learned again). None of them ran the write.
//!
//! The whole attempt fits the store's deadline (connect + response timeout): getting a
//! connection (waiting for a free one, learning the slot's node if the map has none, opening
//! one) takes at most the connect timeout less the `WAIT` timeout (half the connect timeout
//! at least), the write and its `WAIT` at most the response timeout plus the `WAIT` timeout.
//! A redirected or refused write is sent again within that same total, and only while a
//! `WAIT` still fits in it: else the refusal is the answer (nothing ran; retryable).
//!
//! [`Durability::Replicated`]: session_redis::durability::Durability::Replicated

mod pool;
mod redirect;

use std::sync::Arc;
use std::time::Duration;

use redis::{ConnectionInfo, ErrorKind, Pipeline, RedisError, RedisResult, Value};
use session_core::Error;
use session_redis::durability::{
    aborted_transaction, carry, confirmed, find, wait_waking, Classifier, DurabilityPolicy,
    Handling, NotReplicated, Request, Saturated, WithWait,
};
use session_redis::keys::key_slot;
use tokio::time::{sleep, timeout_at, Instant};

use crate::config::ClusterConfig;
use crate::router::Router;
use pool::{Node, Pool};
use redirect::Redirect;

/// The first pause before a refused write is sent again; pauses double from here.
const MIN_RETRY_WAIT: Duration = Duration::from_millis(10);
/// Redirections one write follows at most (a slot handed back and forth while its
/// migration is fixed up): past them, the last one is the answer.
const MAX_REDIRECTS: u32 = 16;

/// Replicated writes for one [`ClusterConn`](crate::ClusterConn) and its clones: which
/// requests need them, where they go, and the connections they go on.
pub(crate) struct Durable {
    classifier: Classifier,
    policy: DurabilityPolicy,
    pool: Pool,
    /// Bound on getting a connection (see the module docs).
    checkout: Duration,
    /// Bound on a whole attempt, redirections and refusals included.
    total: Duration,
    /// Longest pause before a refused write is sent again.
    max_retry_wait: Duration,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("policy", &self.policy)
            .field("limit", &self.pool.limit)
            .finish_non_exhaustive()
    }
}

impl Durable {
    /// The replicated-write layer for `config`, or `None` when no setting waits for
    /// replicas. `nodes`: the seed nodes with the store's credentials; every node is
    /// reached with the first one's.
    ///
    /// # Errors
    /// When no seed node is given.
    pub(crate) fn new(
        config: &ClusterConfig,
        nodes: Vec<ConnectionInfo>,
    ) -> RedisResult<Option<Self>> {
        let policy = config.durability();
        if !policy.any_replicated() {
            return Ok(None);
        }
        let settings = nodes
            .first()
            .ok_or_else(|| RedisError::from((ErrorKind::InvalidClientConfig, "no seed node")))?
            .redis_settings()
            .clone();
        let redis = &config.redis;
        let response_timeout = redis.response_timeout + policy.max_wait();
        let checkout = redis
            .connect_timeout
            .saturating_sub(policy.max_wait())
            .max(redis.connect_timeout / 2);
        Ok(Some(Durable {
            classifier: Classifier::new(),
            policy,
            pool: Pool::new(
                config.wait_pool_size,
                settings,
                redis.connect_timeout,
                response_timeout,
            ),
            checkout,
            total: checkout + response_timeout,
            max_retry_wait: (response_timeout / 4).max(MIN_RETRY_WAIT),
        }))
    }

    /// How `request` goes out with its `WAIT`, if a replicated setting covers it and it names
    /// where it goes (a key, or the node `pinned` names). `None`: send it as it is on the
    /// shared connection (a read, an async write, a write naming no key).
    pub(crate) fn plan(
        self: &Arc<Self>,
        pinned: Option<(&str, u16)>,
        request: Request<'_>,
    ) -> Option<Plan> {
        let Handling::Replicated { replicas, timeout } =
            self.classifier.handling(&self.policy, request)
        else {
            return None;
        };
        let target = match pinned {
            Some((host, port)) => Target::Node(Node::new(host, port)),
            None => Target::Slot(key_slot(self.classifier.written_key(request)?)),
        };
        Some(Plan {
            durable: Arc::clone(self),
            target,
            replicas,
            timeout,
        })
    }

    /// The node `target` names now (learning the slot map if need be, by `by`).
    async fn node(&self, router: &Router, target: &Target, by: Instant) -> RedisResult<Node> {
        let slot = match target {
            Target::Node(node) => return Ok(node.clone()),
            Target::Slot(slot) => *slot,
        };
        if let Some(node) = router.owner(slot) {
            return Ok(node);
        }
        let learned = timeout_at(by, router.refresh()).await.unwrap_or_else(|_| {
            Err(timed_out(
                "the node serving a replicated write could not be learned in time",
            ))
        });
        learned?;
        router.owner(slot).ok_or_else(|| {
            RedisError::from((
                ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
                "no primary serves the slot of a replicated write",
                slot.to_string(),
            ))
        })
    }
}

/// One replicated write being carried out: what every round trip of it shares.
struct Attempt<'a> {
    durable: &'a Arc<Durable>,
    router: &'a Arc<Router>,
    /// The `WAIT` timeout.
    timeout: Duration,
    /// When the whole attempt is over.
    end: Instant,
}

impl Attempt<'_> {
    /// One round trip: `pipe` (`count` replies, ending in `WAIT`) on a connection to `node`
    /// of its own, got by `by`; every reply.
    ///
    /// # Errors
    /// No connection could be had (nothing was sent), or the request failed or timed out
    /// after it was sent (the connection is dropped, and the node's idle ones with it).
    async fn exchange(
        &self,
        node: &Node,
        pipe: &Pipeline,
        count: usize,
        by: Instant,
    ) -> RedisResult<Vec<Value>> {
        let pool = &self.durable.pool;
        let mut conn = pool.take(node, by.min(self.end)).await?;
        let reply = conn.conn.send_packed_commands(pipe, 0, count);
        let waking = wait_waking(reply, self.timeout, || wake(self.router, node));
        let result = timeout_at(self.end, waking).await.unwrap_or_else(|_| {
            Err(timed_out(
                "a replicated write and its WAIT did not answer in time",
            ))
        });
        match result {
            Ok(values) if values.len() == count => {
                pool.give_back(node.clone(), conn);
                Ok(values)
            }
            Ok(_) => Err(RedisError::from((
                ErrorKind::Client,
                "short reply to a write pipelined with WAIT",
            ))),
            Err(e) => {
                pool.forget(node);
                Err(e)
            }
        }
    }
}

/// Sends a `PING` to `node` on the connection other callers share, to wake it for a due
/// `WAIT` (see `wait_waking`).
fn wake(router: &Arc<Router>, node: &Node) {
    let (router, node) = (Arc::clone(router), node.clone());
    tokio::spawn(async move {
        let _ = router.send_cmd(&node, &redis::cmd("PING")).await;
    });
}

fn timed_out(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}

/// Where a replicated write goes.
#[derive(Debug, Clone)]
enum Target {
    /// The primary serving this slot.
    Slot(u16),
    /// This node (a pinned connection, or a redirection).
    Node(Node),
}

/// A replicated write's destination and `WAIT`, decided before anything is sent.
pub(crate) struct Plan {
    durable: Arc<Durable>,
    target: Target,
    replicas: u32,
    timeout: Duration,
}

impl Plan {
    /// Sends `request` and `WAIT` on a connection of its own to the write's node, following
    /// redirections and refusals (see the module docs), waking the node through the `shared`
    /// connection when the `WAIT` is due (see `wait_waking`).
    pub(crate) async fn send(
        self,
        router: &Arc<Router>,
        request: Request<'_>,
    ) -> RedisResult<Vec<Value>> {
        let Plan {
            durable,
            target,
            replicas,
            timeout,
        } = self;
        let started = Instant::now();
        let end = started + durable.total;
        let first_by = started + durable.checkout;
        let _permit = durable.pool.permit(first_by).await?;
        let WithWait {
            pipeline,
            kept,
            total,
            transaction,
        } = request.with_wait(replicas, timeout);
        let mut asking = redis::pipe();
        asking.cmd("ASKING");
        for cmd in pipeline.cmd_iter() {
            asking.add_command(cmd.clone());
        }

        let attempt = Attempt {
            durable: &durable,
            router,
            timeout,
            end,
        };
        let mut next = target.clone();
        let mut ask = false;
        let mut pause = MIN_RETRY_WAIT;
        let mut redirects = 0;
        let mut by = first_by;
        let values = loop {
            let node = durable.node(router, &next, by).await?;
            let sent = if ask {
                attempt
                    .exchange(&node, &asking, total + 1, by)
                    .await
                    .map(|mut values| {
                        values.remove(0);
                        values
                    })
            } else {
                attempt.exchange(&node, &pipeline, total, by).await
            };
            let values = match sent {
                Ok(values) => values,
                Err(e) => {
                    // The node may be gone for good (failed over): learn where its slots
                    // went, for the next writes.
                    if let Target::Slot(_) = target {
                        router.refresh_soon();
                    }
                    return Err(e);
                }
            };
            let Some(redirect) = Redirect::find(&values[..total - 1], &node) else {
                break values;
            };
            let refused = matches!(redirect, Redirect::Refused | Redirect::Demoted);
            let delay = if refused { pause } else { Duration::ZERO };
            redirects += 1;
            // Sent again only while a WAIT still fits: else this answer is the answer
            // (nothing ran).
            if redirects > MAX_REDIRECTS || Instant::now() + delay + timeout >= end {
                break values;
            }
            ask = false;
            match redirect {
                Redirect::Moved { slot, node } => {
                    router.moved(slot, node.clone());
                    router.refresh_soon();
                    next = Target::Node(node);
                }
                Redirect::Ask(node) => {
                    next = Target::Node(node);
                    ask = true;
                }
                Redirect::Refused | Redirect::Demoted => {
                    if let (Redirect::Demoted, Target::Slot(_)) = (&redirect, &target) {
                        router.refresh_soon();
                    }
                    sleep(delay).await;
                    pause = (pause * 2).min(durable.max_retry_wait);
                    next = target.clone();
                }
            }
            by = (Instant::now() + durable.checkout).min(end);
        };
        if transaction {
            if let Some(refusal) = aborted_transaction(&values, &kept) {
                return Err(refusal);
            }
        }
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
