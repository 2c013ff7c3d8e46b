//! Carrying out one request on the current master, by its handling (see
//! `session_redis::durability`):
//!
//! - reads on the shared connection;
//! - asynchronous writes on the shared connection, unless the master is fenced;
//! - replicated writes with `WAIT`, each on a pooled connection of its own (see `durable`),
//!   unless the master is fenced.
//!
//! A write whose connection fails or times out after it was sent is settled before its error
//! is returned (see `settle`) and comes back as [`SentinelError::Interrupted`]. Connection
//! failures and demotion drop the master and start discovery; too few replicas does not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind, Value};
use session_redis::durability::{aborted_transaction, confirmed, wrote, Handling, Request};
use session_redis::error::aborted_transaction_cause;

use super::{Inner, Node};
use crate::error::SentinelError;
use crate::settle::settle;

/// How often writes refused by the fence make the connection ask the Sentinels again.
const FENCED_RECHECK: Duration = Duration::from_millis(250);

impl Node {
    fn interrupted(&self, error: RedisError, settled: bool) -> RedisError {
        SentinelError::Interrupted {
            addr: self.addr(),
            settled,
            source: Arc::new(error),
        }
        .into_redis()
    }
}

impl Inner {
    pub(super) async fn execute(
        self: &Arc<Self>,
        request: Request<'_>,
        handling: Handling,
    ) -> RedisResult<Vec<Value>> {
        let node = self.node().await.map_err(SentinelError::into_redis)?;
        match handling {
            Handling::Read => {
                let mut conn = node.conn.clone();
                let values = self.check(&node, request.send(&mut conn).await)?;
                self.check_values(&node, values)
            }
            Handling::Async => self.write_async(&node, request).await,
            Handling::Replicated { replicas, timeout } => {
                self.write_replicated(&node, request, replicas, timeout)
                    .await
            }
        }
    }

    fn fenced(&self, node: &Node) -> bool {
        self.fence.covers(&node.host, node.port)
    }

    /// A write refused by the fence: the `+switch-master` that moves us on may never come
    /// (Pub/Sub is best effort), so ask the Sentinels again, at most every
    /// [`FENCED_RECHECK`]; they name the new master once the promotion is confirmed.
    fn fenced_write(self: &Arc<Self>, node: &Node) -> RedisError {
        let now = Instant::now();
        let due = {
            let mut last = self.fenced_check.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|t| now.duration_since(t) >= FENCED_RECHECK);
            if due {
                *last = Some(now);
            }
            due
        };
        if due {
            self.invalidate(node.generation, "fenced");
        }
        node.failover_started(false)
    }

    async fn write_async(
        self: &Arc<Self>,
        node: &Arc<Node>,
        request: Request<'_>,
    ) -> RedisResult<Vec<Value>> {
        if self.fenced(node) {
            return Err(self.fenced_write(node));
        }
        let mut conn = node.conn.clone();
        let values = match request.send(&mut conn).await {
            Err(e) if is_connection_failure(&e) => {
                self.invalidate(node.generation, "connection_error");
                let settled = *node
                    .conn_settled
                    .get_or_init(|| settle(&self.config, &node.host, node.port, node.tag.as_ref()))
                    .await;
                return Err(node.interrupted(e, settled));
            }
            other => self.check(node, other)?,
        };
        let values = self.check_values(node, values)?;
        // Answered after the fence went up: the promoted replica may not have it.
        if self.fenced(node) && wrote(&values) {
            return Err(node.failover_started(true));
        }
        Ok(values)
    }

    async fn write_replicated(
        self: &Arc<Self>,
        node: &Arc<Node>,
        request: Request<'_>,
        replicas: u32,
        timeout: Duration,
    ) -> RedisResult<Vec<Value>> {
        if self.fenced(node) {
            return Err(self.fenced_write(node));
        }
        let lease = match node
            .pool
            .checkout(&self.config, &node.host, node.port)
            .await
        {
            Ok(lease) => lease,
            Err(e) => {
                if matches!(e, SentinelError::NotMaster { .. }) {
                    self.invalidate(node.generation, "connection_error");
                }
                return Err(e.into_redis());
            }
        };
        let replies = match lease.send(request, replicas, timeout, &node.conn).await {
            Ok(replies) => replies,
            Err(lost) => {
                self.invalidate(node.generation, "connection_error");
                let settled = settle(&self.config, &node.host, node.port, lost.tag.as_ref()).await;
                return Err(node.interrupted(lost.error, settled));
            }
        };
        let values = self.check_values(node, replies.values)?;
        if replies.transaction {
            // Discarded whole (nothing ran): its refusal is the answer, as on a plain
            // connection.
            if let Some(refusal) = aborted_transaction(&values, &replies.kept) {
                return Err(refusal);
            }
        }
        match confirmed(values, replies.kept, replicas, timeout) {
            // Nothing written (NOSCRIPT, EXECABORT, script error): no WAIT was due.
            Ok(values) if !wrote(&values) => Ok(values),
            // Confirmed (or not), but maybe by a replica that is about to be re-synced from
            // the promoted one.
            Ok(_) | Err(Some(_)) if self.fenced(node) => Err(node.failover_started(true)),
            Ok(values) => Ok(values),
            Err(Some(short)) => Err(SentinelError::from(short).into_redis()),
            // "WAIT cannot be used with replica instances": demoted under us.
            Err(None) => {
                self.invalidate(node.generation, "wait_refused");
                Err(demoted(node))
            }
        }
    }

    /// Reacts to a failed round trip: connection failures and demotion drop the node.
    fn check<T>(self: &Arc<Self>, node: &Node, result: RedisResult<T>) -> RedisResult<T> {
        match result {
            Err(e) if is_readonly(&e) => {
                self.invalidate(node.generation, "readonly");
                Err(demoted(node))
            }
            Err(e) if is_connection_failure(&e) => {
                self.invalidate(node.generation, "connection_error");
                Err(e)
            }
            other => other,
        }
    }

    /// Reacts to server errors among the replies: `READONLY` (demoted: nothing was applied)
    /// fails the request; `MASTERDOWN` drops the node but is the caller's answer.
    fn check_values(self: &Arc<Self>, node: &Node, values: Vec<Value>) -> RedisResult<Vec<Value>> {
        for value in &values {
            match value {
                Value::ServerError(e) if e.kind() == Some(ServerErrorKind::ReadOnly) => {
                    self.invalidate(node.generation, "readonly");
                    return Err(demoted(node));
                }
                Value::ServerError(e) if e.kind() == Some(ServerErrorKind::MasterDown) => {
                    self.invalidate(node.generation, "masterdown");
                }
                _ => {}
            }
        }
        Ok(values)
    }
}

fn demoted(node: &Node) -> RedisError {
    SentinelError::Demoted { addr: node.addr() }.into_redis()
}

/// `READONLY`, for a command or for a transaction it made Redis discard (a native write's
/// `MULTI` sent to a demoted master).
fn is_readonly(e: &RedisError) -> bool {
    let readonly = |e: &RedisError| e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly);
    readonly(e) || aborted_transaction_cause(e).is_some_and(|cause| readonly(&cause))
}

fn is_connection_failure(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}
