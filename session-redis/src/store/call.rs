//! One operation's connection: every round trip bounded by the deadline, mapped into
//! `session_core::Error`, and counted for the trace.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, Pipeline, RedisResult, ScriptInvocation, Value};
use session_core::{Error, Result};
use tracing::Span;

use crate::error::{is_wrong_type, to_store_error, DeadlineExceeded};
use crate::reply::Reply;
use crate::trace;

/// What a `GET` found.
pub(crate) enum Fetched {
    Missing,
    Value(Vec<u8>),
    /// The key holds a hash, list, … (`WRONGTYPE`).
    WrongType,
}

pub(crate) struct Call<C> {
    conn: C,
    backend: &'static str,
    deadline: Duration,
    span: Span,
    /// Round trips of the operation, shared with the calls made [`on`](Self::on) other
    /// connections for it.
    trips: Arc<AtomicU32>,
}

/// Awaits one round trip for at most `deadline`; the outer error is the deadline passing.
async fn within<T>(
    backend: &'static str,
    deadline: Duration,
    fut: impl Future<Output = RedisResult<T>>,
) -> Result<RedisResult<T>> {
    tokio::time::timeout(deadline, fut)
        .await
        .map_err(|_| Error::Unavailable {
            backend,
            source: Box::new(DeadlineExceeded { after: deadline }),
        })
}

impl<C: ConnectionLike + Send> Call<C> {
    pub(crate) fn new(conn: C, backend: &'static str, deadline: Duration, span: Span) -> Self {
        Call {
            conn,
            backend,
            deadline,
            span,
            trips: Arc::default(),
        }
    }

    /// A call on another connection (one primary) within the same operation and span.
    pub(crate) fn on(&self, conn: C) -> Call<C> {
        Call {
            conn,
            backend: self.backend,
            deadline: self.deadline,
            span: self.span.clone(),
            trips: self.trips.clone(),
        }
    }

    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    pub(crate) fn backend(&self) -> &'static str {
        self.backend
    }

    pub(crate) fn finish<T>(&self, result: &Result<T>) {
        trace::finish(&self.span, result, self.trips.load(Ordering::Relaxed));
    }

    pub(crate) async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> Result<T> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        within(
            self.backend,
            self.deadline,
            cmd.query_async::<T>(&mut self.conn),
        )
        .await?
        .map_err(|e| to_store_error(self.backend, e))
    }

    pub(crate) async fn pipe<T: FromRedisValue>(&mut self, pipe: &Pipeline) -> Result<T> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        within(
            self.backend,
            self.deadline,
            pipe.query_async::<T>(&mut self.conn),
        )
        .await?
        .map_err(|e| to_store_error(self.backend, e))
    }

    /// `EVALSHA` (loading the script on `NOSCRIPT`), replying with a status array.
    pub(crate) async fn invoke(&mut self, invocation: &ScriptInvocation<'_>) -> Result<Reply> {
        let value = self.invoke_as::<Value>(invocation).await?;
        Reply::new(self.backend, value)
    }

    /// `EVALSHA` with the reply converted to `T`.
    pub(crate) async fn invoke_as<T: FromRedisValue>(
        &mut self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        within(
            self.backend,
            self.deadline,
            invocation.invoke_async::<T>(&mut self.conn),
        )
        .await?
        .map_err(|e| to_store_error(self.backend, e))
    }

    /// `GET`, `PTTL` and the expiry index score of one session in one round trip, telling a
    /// wrong-type key apart from other errors.
    pub(crate) async fn get_timed(
        &mut self,
        key: &str,
        expiry_index: &str,
        member: &str,
    ) -> Result<(Fetched, i64, Option<String>)> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        let mut pipe = redis::pipe();
        // Errors come back per command, so a wrong-type key is told apart from other errors.
        pipe.ignore_errors()
            .cmd("GET")
            .arg(key)
            .cmd("PTTL")
            .arg(key)
            .cmd("ZSCORE")
            .arg(expiry_index)
            .arg(member);
        let (get, pttl, score) = within(
            self.backend,
            self.deadline,
            pipe.query_async::<(
                RedisResult<Option<Vec<u8>>>,
                RedisResult<i64>,
                RedisResult<Option<String>>,
            )>(&mut self.conn),
        )
        .await?
        .map_err(|e| to_store_error(self.backend, e))?;
        let fetched = match get {
            Ok(Some(bytes)) => Fetched::Value(bytes),
            Ok(None) => Fetched::Missing,
            Err(e) if is_wrong_type(&e) => return Ok((Fetched::WrongType, -2, None)),
            Err(e) => return Err(to_store_error(self.backend, e)),
        };
        let pttl = pttl.map_err(|e| to_store_error(self.backend, e))?;
        let score = score.map_err(|e| to_store_error(self.backend, e))?;
        Ok((fetched, pttl, score))
    }
}
