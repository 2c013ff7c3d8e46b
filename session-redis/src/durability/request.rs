//! A replicated write on the wire: the request with `WAIT` appended, waiting for it, and what
//! its answer means (see the [module docs](super)).

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisError, RedisResult, Value};

/// How long after a `WAIT` is due the first wake-up goes out (a margin for the request's own
/// trip, so the server's deadline has passed when it arrives). See [`wait_waking`].
const NUDGE_AFTER: Duration = Duration::from_millis(5);
/// How often a wake-up is repeated while the `WAIT` has not answered.
const NUDGE_EVERY: Duration = Duration::from_millis(10);

/// One request as [`RedisStore`](crate::RedisStore) hands it to its connection: a command,
/// or a pipeline with the replies it wants.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// One command (`req_packed_command`).
    Cmd(&'a Cmd),
    /// A pipeline (`req_packed_commands`): `offset` replies skipped, `count` kept (what
    /// `Pipeline::query_async` asks for; an atomic pipeline skips `MULTI`'s and the `QUEUED`
    /// replies and keeps `EXEC`'s).
    Pipe {
        /// The pipeline.
        pipe: &'a Pipeline,
        /// Replies skipped.
        offset: usize,
        /// Replies kept.
        count: usize,
    },
}

/// A request with `WAIT` appended (see [`Request::with_wait`]).
#[derive(Debug, Clone)]
pub struct WithWait {
    /// A plain pipeline: the request's commands (a transaction's `MULTI`/`EXEC` spelled
    /// out), then `WAIT`. Every reply is kept.
    pub pipeline: Pipeline,
    /// Where the request's own replies are among the pipeline's.
    pub kept: Range<usize>,
    /// How many replies the pipeline has (`WAIT`'s is the last).
    pub total: usize,
    /// Whether the request is a transaction (see [`aborted_transaction`]).
    pub transaction: bool,
}

impl<'a> Request<'a> {
    /// Sends it as it is on `conn`; the replies the caller asked for.
    pub async fn send<C: ConnectionLike>(&self, conn: &mut C) -> RedisResult<Vec<Value>> {
        match *self {
            Request::Cmd(cmd) => conn.req_packed_command(cmd).await.map(|v| vec![v]),
            Request::Pipe {
                pipe,
                offset,
                count,
            } => conn.req_packed_commands(pipe, offset, count).await,
        }
    }

    /// Its commands (a transaction's without `MULTI`/`EXEC`).
    pub fn commands(&self) -> Box<dyn Iterator<Item = &'a Cmd> + 'a> {
        match *self {
            Request::Cmd(cmd) => Box::new(std::iter::once(cmd)),
            Request::Pipe { pipe, .. } => Box::new(pipe.cmd_iter()),
        }
    }

    /// The same commands followed by `WAIT replicas timeout`, as a plain pipeline whose
    /// every reply is kept (a transaction's `MULTI`/`EXEC` spelled out, since `WAIT` must
    /// follow `EXEC`).
    pub fn with_wait(&self, replicas: u32, timeout: Duration) -> WithWait {
        let mut out = redis::pipe();
        let kept = match *self {
            Request::Cmd(cmd) => {
                out.add_command(cmd.clone());
                0..1
            }
            Request::Pipe {
                pipe,
                offset,
                count,
            } => {
                if pipe.is_transaction() {
                    out.cmd("MULTI");
                }
                for cmd in pipe.cmd_iter() {
                    out.add_command(cmd.clone());
                }
                if pipe.is_transaction() {
                    out.cmd("EXEC");
                }
                offset..offset + count
            }
        };
        out.cmd("WAIT")
            .arg(replicas)
            .arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        let total = out.len();
        WithWait {
            pipeline: out,
            kept,
            total,
            transaction: matches!(self, Request::Pipe { pipe, .. } if pipe.is_transaction()),
        }
    }
}

/// The error a transaction Redis discarded answers with, given a [`WithWait`] pipeline's
/// replies: `EXEC`'s reply (the first kept) is an error where an array was due, and the
/// error returned is the first command refused while queued (`MOVED`, `LOADING`,
/// `READONLY`, …), else `EXEC`'s own. `None` when `EXEC` answered with its replies.
///
/// A plain connection turns such an answer into an error itself; a pipeline sent with
/// every reply kept does not, and the `redis` client cannot parse an error value as a
/// transaction's replies.
pub fn aborted_transaction(values: &[Value], kept: &Range<usize>) -> Option<RedisError> {
    let Some(Value::ServerError(exec)) = values.get(kept.start) else {
        return None;
    };
    let queued = values.get(1..kept.start).unwrap_or_default();
    let refusal = queued.iter().find_map(|v| match v {
        Value::ServerError(e) => Some(e),
        _ => None,
    });
    Some(RedisError::from(refusal.unwrap_or(exec).clone()))
}

/// Whether any reply says something was done. A server error means that command did
/// nothing (`NOSCRIPT`, `EXECABORT`, `MOVED`), so no `WAIT` is due for it; a script's own
/// error reply aside, which callers treat as a failure anyway.
pub fn wrote(values: &[Value]) -> bool {
    values.iter().any(|v| !matches!(v, Value::ServerError(_)))
}

/// Awaits `reply`, the answer to a request ending in `WAIT … timeout`, calling `wake` once
/// the `WAIT` is due and then every few milliseconds until it answers. `wake` should send
/// something cheap (a `PING`) to the same server on another connection.
///
/// Redis notices a blocked command's timeout when its event loop wakes: a busy server at
/// once, an idle one at its next cron tick (up to 1/`hz`, 100 ms at the default `hz 10`;
/// measured on 7.0: `WAIT 1 250` answered after 290–300 ms on an idle server, 252 ms when
/// another client sent a command at 252 ms). Waking it keeps a write that cannot be
/// confirmed failing within its `WAIT` timeout plus a round trip or two.
pub async fn wait_waking<F: Future>(
    reply: F,
    timeout: Duration,
    mut wake: impl FnMut(),
) -> F::Output {
    tokio::pin!(reply);
    let due = tokio::time::sleep(timeout + NUDGE_AFTER);
    tokio::pin!(due);
    loop {
        tokio::select! {
            result = &mut reply => return result,
            () = &mut due => {
                wake();
                due.as_mut().reset(tokio::time::Instant::now() + NUDGE_EVERY);
            }
        }
    }
}

/// A replicated write was applied on the primary but fewer replicas than asked confirmed it
/// before the `WAIT` timeout. It is **not** rolled back: it may survive a failover or
/// vanish. Retrying later is safe for idempotent writes.
///
/// The Cluster backend returns it as the source of a retryable
/// [`Error::Unavailable`](session_core::Error::Unavailable); the Sentinel backend as `SentinelError::NotReplicated`, with the
/// same fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotReplicated {
    /// Replicas that confirmed.
    pub acked: i64,
    /// Replicas asked for.
    pub wanted: u32,
    /// The `WAIT` timeout.
    pub timeout: Duration,
}

impl fmt::Display for NotReplicated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "write applied on the primary but confirmed by {} of {} replicas within {} ms; it may be lost in a failover",
            self.acked,
            self.wanted,
            self.timeout.as_millis()
        )
    }
}

impl StdError for NotReplicated {}

/// What a request ending in `WAIT replicas …` answered, given its replies (`WAIT`'s last):
/// the request's own replies ([`WithWait::kept`]) when it wrote nothing or `replicas`
/// confirmed; [`NotReplicated`] when fewer did; `Err(None)` when `WAIT` did not answer with
/// a number (refused, as on a replica: the caller decides what that means).
///
/// # Errors
/// As above.
pub fn confirmed(
    mut values: Vec<Value>,
    kept: Range<usize>,
    replicas: u32,
    timeout: Duration,
) -> std::result::Result<Vec<Value>, Option<NotReplicated>> {
    let waited = values.pop();
    let values: Vec<Value> = values.drain(kept).collect();
    if !wrote(&values) {
        return Ok(values);
    }
    match waited {
        Some(Value::Int(n)) if n >= i64::from(replicas) => Ok(values),
        Some(Value::Int(acked)) => Err(Some(NotReplicated {
            acked,
            wanted: replicas,
            timeout,
        })),
        _ => Err(None),
    }
}

/// Every connection for replicated writes was busy for the wait bound: the write was **not
/// sent**, so repeating any operation is safe. The Cluster backend returns it as the source
/// of a retryable [`Error::Unavailable`](session_core::Error::Unavailable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saturated {
    /// The pool's size.
    pub limit: usize,
}

impl fmt::Display for Saturated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "all {} connections for replicated writes are busy; the write was not sent",
            self.limit
        )
    }
}

impl StdError for Saturated {}

/// Carries a backend's own error through the `redis` client's error type (as an I/O error,
/// which [`to_store_error`](crate::error::to_store_error) maps to a retryable
/// `Error::Unavailable`), so it survives the trip through [`RedisStore`](crate::RedisStore)
/// and can be found again with [`find`].
pub fn carry<E: StdError + Send + Sync + 'static>(error: E) -> RedisError {
    RedisError::from(std::io::Error::other(error))
}

/// Finds an error of type `T` anywhere in an error's source chain, including inside the
/// `redis` client's I/O error wrapping (whose `source` skips the wrapped error) and behind
/// an `Arc`.
pub fn find<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|i| i.downcast_ref::<T>())
        {
            return Some(inner);
        }
        if let Some(arc) = e.downcast_ref::<Arc<dyn StdError + Send + Sync>>() {
            let inner: &'a (dyn StdError + 'static) = &**arc;
            next = Some(inner);
            continue;
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::simple_args;
    use crate::durability::DEFAULT_WAIT_TIMEOUT;

    #[test]
    fn wait_follows_exec_and_the_callers_replies_are_located() {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg("k")
            .arg("v")
            .cmd("ZADD")
            .arg("i")
            .arg(1)
            .arg("k");
        let request = Request::Pipe {
            pipe: &pipe,
            offset: 3,
            count: 1,
        };
        let out = request.with_wait(1, Duration::from_millis(250));
        let names: Vec<Vec<u8>> = out
            .pipeline
            .cmd_iter()
            .map(|c| simple_args(c).next().unwrap_or_default().to_vec())
            .collect();
        let names: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
        assert_eq!(names, [&b"MULTI"[..], b"SET", b"ZADD", b"EXEC", b"WAIT"]);
        assert_eq!(out.kept, 3..4); // EXEC's reply
        assert_eq!(out.total, 5);
        assert!(!out.pipeline.is_transaction());
        assert!(out.transaction);

        let cmd = redis::cmd("DEL");
        let out = Request::Cmd(&cmd).with_wait(2, Duration::from_millis(10));
        assert_eq!((out.pipeline.len(), out.kept, out.total), (2, 0..1, 2));
        assert!(!out.transaction);
    }

    fn server_error(reply: &[u8]) -> Value {
        let value = redis::parse_redis_value(reply).unwrap();
        assert!(matches!(value, Value::ServerError(_)));
        value
    }

    #[test]
    fn a_discarded_transaction_answers_with_its_first_refusal() {
        let queued = || Value::SimpleString("QUEUED".to_owned());
        let moved = server_error(b"-MOVED 12 127.0.0.1:7001\r\n");
        let abort = server_error(b"-EXECABORT Transaction discarded\r\n");
        // MULTI, SET (queued), ZADD (refused), EXEC (aborted), WAIT.
        let values = [Value::Okay, queued(), moved, abort.clone(), Value::Int(0)];
        let err = aborted_transaction(&values, &(3..4)).unwrap();
        assert_eq!(err.code(), Some("MOVED"));
        // No queued refusal among the replies: EXEC's own error.
        let values = [Value::Okay, queued(), queued(), abort, Value::Int(0)];
        let err = aborted_transaction(&values, &(3..4)).unwrap();
        assert_eq!(err.code(), Some("EXECABORT"));
        // EXEC answered with its replies.
        let exec = Value::Array(vec![Value::Okay, Value::Int(1)]);
        let values = [Value::Okay, queued(), queued(), exec, Value::Int(1)];
        assert!(aborted_transaction(&values, &(3..4)).is_none());
    }

    #[test]
    fn confirmation_reads_the_wait_reply() {
        let ok = Value::Okay;
        let noscript = redis::make_extension_error("NOSCRIPT".to_owned(), None);
        let refused = Value::ServerError(redis::ServerError::try_from(noscript).unwrap());
        let t = Duration::from_millis(250);
        assert_eq!(
            confirmed(vec![ok.clone(), Value::Int(1)], 0..1, 1, t),
            Ok(vec![ok.clone()])
        );
        assert_eq!(
            confirmed(vec![ok.clone(), Value::Int(0)], 0..1, 1, t),
            Err(Some(NotReplicated {
                acked: 0,
                wanted: 1,
                timeout: t
            }))
        );
        // Nothing written: no WAIT due, the caller gets its error reply.
        assert!(matches!(
            confirmed(vec![refused, Value::Int(0)], 0..1, 1, t).as_deref(),
            Ok([Value::ServerError(_)])
        ));
        assert_eq!(confirmed(vec![ok, Value::Nil], 0..1, 1, t), Err(None));
    }

    #[test]
    fn carried_errors_are_found_through_the_store_error() {
        let carried = carry(NotReplicated {
            acked: 0,
            wanted: 1,
            timeout: DEFAULT_WAIT_TIMEOUT,
        });
        let err = crate::error::to_store_error("cluster", carried);
        assert!(err.is_retryable());
        let found = find::<NotReplicated>(&err).expect("found in the chain");
        assert_eq!(found.wanted, 1);
        assert!(find::<Saturated>(&err).is_none());
    }
}
