//! The connections replicated writes go on: per node, each carrying one write and its `WAIT`
//! at a time, kept for reuse once the `WAIT` answered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo, RedisError, RedisResult};
use session_redis::durability::{carry, Saturated};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::{timeout_at, Instant};

/// A node, as `CLUSTER SLOTS` and redirections name it.
pub(super) use crate::router::NodeAddr as Node;

/// One connection to one node.
pub(super) struct Conn {
    pub(super) conn: MultiplexedConnection,
    /// Set once the connection's driver stopped (the node closed it, or it failed): an idle
    /// connection whose node was restarted is dropped here rather than fail the next write.
    closed: Arc<AtomicBool>,
}

/// The pool: at most `limit` writes in flight, over every node.
pub(super) struct Pool {
    idle: Mutex<HashMap<Node, Vec<Conn>>>,
    permits: Semaphore,
    pub(super) limit: usize,
    /// Credentials, protocol and database for every node (the seeds' settings).
    settings: RedisConnectionInfo,
    connect_timeout: Duration,
    /// Covers a request with its `WAIT`.
    response_timeout: Duration,
}

impl Pool {
    pub(super) fn new(
        limit: usize,
        settings: RedisConnectionInfo,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Self {
        let limit = limit.max(1);
        Pool {
            idle: Mutex::new(HashMap::new()),
            permits: Semaphore::new(limit),
            limit,
            settings,
            connect_timeout,
            response_timeout,
        }
    }

    /// A place for one write in flight, waited for until `deadline`.
    ///
    /// # Errors
    /// [`Saturated`] when none frees up in time. Nothing was sent.
    pub(super) async fn permit(&self, deadline: Instant) -> RedisResult<SemaphorePermit<'_>> {
        timeout_at(deadline, self.permits.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| carry(Saturated { limit: self.limit }))
    }

    /// A connection to `node` nobody else uses: an idle one, or a new one opened by
    /// `deadline`.
    ///
    /// # Errors
    /// The connection's error, or a timeout. Nothing was sent.
    pub(super) async fn take(&self, node: &Node, deadline: Instant) -> RedisResult<Conn> {
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(node)
                .and_then(Vec::pop);
            match idle {
                Some(conn) if conn.closed.load(Ordering::Acquire) => continue,
                Some(conn) => return Ok(conn),
                None => break,
            }
        }
        match timeout_at(deadline, self.open(node)).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection for a replicated write to {node} could be opened in time"),
            ))),
        }
    }

    /// Back for the next write to `node`: only once every reply it was waiting for came.
    pub(super) fn give_back(&self, node: Node, conn: Conn) {
        if conn.closed.load(Ordering::Acquire) {
            return;
        }
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(node)
            .or_default()
            .push(conn);
    }

    /// Drops the idle connections to `node`, after one of them failed: a node that stopped
    /// answering one connection is not answering the others, so the next write opens a new
    /// one within its bound rather than wait out the response timeout on an old one.
    pub(super) fn forget(&self, node: &Node) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node);
    }

    /// Opens a connection to `node` (cluster nodes take no TLS here: `ClusterConfig::check`
    /// refuses it), its driver on a task of its own that marks it closed when it stops.
    async fn open(&self, node: &Node) -> RedisResult<Conn> {
        let stream = TcpStream::connect((&*node.host, node.port)).await?;
        stream.set_nodelay(true)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout));
        let (conn, driver) =
            MultiplexedConnection::new_with_config(&self.settings, stream, config).await?;
        let closed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&closed);
        tokio::spawn(async move {
            driver.await;
            flag.store(true, Ordering::Release);
        });
        Ok(Conn { conn, closed })
    }
}
