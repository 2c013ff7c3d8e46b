//! Replicated writes: each in-flight one on a connection of its own, from a per-master pool.
//!
//! `WAIT` blocks the connection it is sent on, on the server: a second request on that
//! connection runs only after the first one's `WAIT` returns. With one shared connection and
//! no replica able to confirm, callers queued behind each other's `WAIT`s (seconds, then
//! response timeouts), and a write queued behind a `WAIT` could run after its caller had been
//! told "outcome unknown". Here a write and its `WAIT` go out together on a connection nobody
//! else uses until the `WAIT` has answered, so a caller waits for its own `WAIT` only.
//!
//! Once a `WAIT` is due and has not answered, a `PING` on the master's shared connection
//! wakes the server (see `session_redis::durability::wait_waking`).

use std::ops::Range;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{RedisError, RedisResult, Value};
use session_redis::durability::{wait_waking, Request, WithWait};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::SentinelConfig;
use crate::discovery::{data_info, open};
use crate::error::{Addr, SentinelError};
use crate::settle::ClientTag;

/// A connection for replicated writes and its identity on the server (for settling).
struct Pooled {
    conn: MultiplexedConnection,
    tag: Option<ClientTag>,
}

/// The connections for replicated writes to one master.
pub(crate) struct Pool {
    idle: Mutex<Vec<Pooled>>,
    permits: Semaphore,
    limit: usize,
}

/// A connection checked out for one write; back in the pool only once its `WAIT` answered.
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    pooled: Pooled,
    _permit: SemaphorePermit<'a>,
}

/// A write whose connection failed or timed out after it was sent.
pub(crate) struct Interrupted {
    pub(crate) error: RedisError,
    /// The connection's identity, to settle it.
    pub(crate) tag: Option<ClientTag>,
}

/// What came back: every reply (`WAIT`'s last), and where the caller's are.
pub(crate) struct Replies {
    pub(crate) values: Vec<Value>,
    pub(crate) kept: Range<usize>,
    /// Whether the request was a transaction (its `EXEC` may have been refused).
    pub(crate) transaction: bool,
}

impl Pool {
    pub(crate) fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Pool {
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(limit),
            limit,
        }
    }

    /// A connection of its own for one write: an idle one, or a new one.
    ///
    /// # Errors
    /// [`SentinelError::Saturated`] when none frees up within the response timeout;
    /// [`SentinelError::NotMaster`] when the master cannot be reached. Nothing was sent.
    pub(crate) async fn checkout(
        &self,
        config: &SentinelConfig,
        host: &str,
        port: u16,
    ) -> Result<Lease<'_>, SentinelError> {
        let permit = tokio::time::timeout(config.redis.response_timeout, self.permits.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(SentinelError::Saturated { limit: self.limit })?;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let pooled = match idle {
            Some(pooled) => pooled,
            None => Self::open(config, host, port)
                .await
                .map_err(|e| SentinelError::NotMaster {
                    addr: Addr(host, port).to_string(),
                    reason: format!("unreachable: {e}"),
                })?,
        };
        Ok(Lease {
            pool: self,
            pooled,
            _permit: permit,
        })
    }

    async fn open(config: &SentinelConfig, host: &str, port: u16) -> RedisResult<Pooled> {
        let info = data_info(config, host, port)
            .map_err(|e| RedisError::from((redis::ErrorKind::Client, "bad settings", e)))?;
        // The request includes the `WAIT`, so its bound does too.
        let response = config.redis.response_timeout + config.max_wait();
        let mut conn = open(info, config.redis.connect_timeout, response).await?;
        let tag = ClientTag::of(&mut conn).await;
        Ok(Pooled { conn, tag })
    }
}

impl Lease<'_> {
    /// Sends `request` followed by `WAIT replicas timeout`, waking the server when the `WAIT`
    /// is due (see the module docs). On success the connection goes back to the pool; when it
    /// failed, it is dropped and its identity returned for settling.
    pub(crate) async fn send(
        mut self,
        request: Request<'_>,
        replicas: u32,
        timeout: Duration,
        waker: &MultiplexedConnection,
    ) -> Result<Replies, Interrupted> {
        let WithWait {
            pipeline,
            kept,
            total,
            transaction,
        } = request.with_wait(replicas, timeout);
        let reply = self.pooled.conn.req_packed_commands(&pipeline, 0, total);
        let result = wait_waking(reply, timeout, || {
            let mut waker = waker.clone();
            tokio::spawn(async move {
                let _: RedisResult<Value> = redis::cmd("PING").query_async(&mut waker).await;
            });
        })
        .await;
        match result {
            Ok(values) if values.len() == total => {
                let Lease { pool, pooled, .. } = self;
                pool.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(pooled);
                Ok(Replies {
                    values,
                    kept,
                    transaction,
                })
            }
            Ok(_) => Err(Interrupted {
                error: RedisError::from((
                    redis::ErrorKind::Client,
                    "short reply to a write pipelined with WAIT",
                )),
                tag: self.pooled.tag.take(),
            }),
            Err(error) => Err(Interrupted {
                error,
                tag: self.pooled.tag.take(),
            }),
        }
    }
}
