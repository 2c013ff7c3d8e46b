//! One operation's connection: every round trip bounded by the deadline, mapped into
//! `session_core::Error`, and counted for the trace.

use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, Pipeline, RedisResult, ScriptInvocation, Value};
use session_core::{Error, Result};
use tracing::Span;

use crate::error::{is_wrong_type, to_store_error, DeadlineExceeded};
use crate::reply::Reply;
use crate::trace;

/// What a plain `GET` found.
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
    trips: u32,
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
            trips: 0,
        }
    }

    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    pub(crate) fn backend(&self) -> &'static str {
        self.backend
    }

    pub(crate) fn finish<T>(&self, result: &Result<T>) {
        trace::finish(&self.span, result, self.trips);
    }

    pub(crate) async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> Result<T> {
        self.trips += 1;
        within(
            self.backend,
            self.deadline,
            cmd.query_async::<T>(&mut self.conn),
        )
        .await?
        .map_err(|e| to_store_error(self.backend, e))
    }

    pub(crate) async fn pipe<T: FromRedisValue>(&mut self, pipe: &Pipeline) -> Result<T> {
        self.trips += 1;
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
        self.trips += 1;
        within(
            self.backend,
            self.deadline,
            invocation.invoke_async::<T>(&mut self.conn),
        )
        .await?
        .map_err(|e| to_store_error(self.backend, e))
    }

    /// A plain `GET`, telling a wrong-type key apart from other errors.
    pub(crate) async fn get(&mut self, key: &str) -> Result<Fetched> {
        self.trips += 1;
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        match within(
            self.backend,
            self.deadline,
            cmd.query_async::<Option<Vec<u8>>>(&mut self.conn),
        )
        .await?
        {
            Ok(Some(bytes)) => Ok(Fetched::Value(bytes)),
            Ok(None) => Ok(Fetched::Missing),
            Err(e) if is_wrong_type(&e) => Ok(Fetched::WrongType),
            Err(e) => Err(to_store_error(self.backend, e)),
        }
    }
}
