//! Replicated writes with `WAIT`, as the Sentinel and Cluster backends carry them out: which
//! requests are writes and which [`Durability`] covers them ([`Classifier`],
//! [`DurabilityPolicy`]), the request with `WAIT` appended ([`Request::with_wait`]), waiting
//! for it ([`wait_waking`]), and what a short answer means ([`NotReplicated`]).
//!
//! The backends keep what depends on how they reach a primary: where the write goes, the
//! connections it goes on (`WAIT` blocks its connection on the server, so each replicated
//! write in flight has one to itself), and what a failover does to it.
//!
//! # Which requests are writes
//! Decided by command name, so that a native write path (`MULTI`/`SET`/`ZADD`/`EXEC`,
//! `SET NX`) is covered as surely as this crate's [scripts](crate::scripts):
//!
//! - **Reads** are a known list (`GET`, `MGET`, `PTTL`, `ZSCORE`, `ZRANGE…`, `SCAN`, …, and
//!   the `_RO` script commands). **Connection and script-cache commands** (`SCRIPT LOAD`,
//!   `CLIENT`, `HELLO`, `SELECT`, the `MULTI`/`EXEC` brackets, `WAIT`) change no data.
//!   Both are [`Class::Other`].
//! - **Revocations** delete keys: `DEL`, `UNLINK`, `GETDEL`, `RENAME`, and the backend's
//!   `delete`, `delete_user` and `rotate` scripts ([`Class::Revoke`]).
//! - **Maintenance**: the scripts that only repair an index or settle due entries (losing
//!   one in a failover costs nothing the next `cleanup` does not redo; [`Class::Maintenance`]).
//! - **Everything else is a save** ([`Class::Save`]): any other command, and any script not
//!   known (`EVALSHA`/`EVAL`/`FCALL` of something this list does not name).
//!
//! A pipeline is covered by the strongest durability any of its commands needs.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Arg, Cmd, Pipeline, RedisError, RedisResult, Value};
use session_core::{parse_var, Error, Result};

use crate::command::{first_key, simple_args};

/// Default `WAIT` timeout of replicated writes (`REDIS_WAIT_TIMEOUT_MS`).
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_millis(250);

/// How long after a `WAIT` is due the first wake-up goes out (a margin for the request's own
/// trip, so the server's deadline has passed when it arrives). See [`wait_waking`].
const NUDGE_AFTER: Duration = Duration::from_millis(5);
/// How often a wake-up is repeated while the `WAIT` has not answered.
const NUDGE_EVERY: Duration = Duration::from_millis(10);

/// How many replicas must confirm a write before the store acknowledges it.
///
/// `Replicated` sends `WAIT replicas timeout` right after the write, on a connection that
/// carries only that write, and fails the call with [`NotReplicated`] (a retryable
/// `Error::Unavailable`) when fewer confirm in time. What that guarantees depends on how the
/// deployment fails over: see the Sentinel and Cluster backends' docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge once the primary applied the write (Redis's default, asynchronous
    /// replication): a failover can lose the last writes.
    Async,
    /// Acknowledge once `replicas` replicas confirmed the write, waiting at most `timeout`.
    Replicated {
        /// Replicas that must confirm (at least 1).
        replicas: u32,
        /// How long to wait for them.
        timeout: Duration,
    },
}

impl Durability {
    /// `Replicated` with `replicas` and `timeout`, or `Async` for 0 replicas (what
    /// `REDIS_WAIT_REPLICAS=0` means).
    pub fn replicas(replicas: u32, timeout: Duration) -> Self {
        match replicas {
            0 => Durability::Async,
            replicas => Durability::Replicated { replicas, timeout },
        }
    }

    /// The `WAIT` timeout (zero for `Async`).
    pub fn wait(&self) -> Duration {
        match self {
            Durability::Async => Duration::ZERO,
            Durability::Replicated { timeout, .. } => *timeout,
        }
    }
}

/// The two durability settings: one for saves, one for revocations (whose loss brings a
/// logged-out session back).
///
/// | field | variable | default |
/// |---|---|---|
/// | `save` | `REDIS_WAIT_REPLICAS` (0 = async) | async |
/// | `revoke` | `REDIS_WAIT_REPLICAS_REVOKE` (0 = async) | 1 replica |
/// | both `WAIT` timeouts | `REDIS_WAIT_TIMEOUT_MS` | 250 |
///
/// ```
/// use session_redis::durability::{Durability, DurabilityPolicy};
///
/// let policy = DurabilityPolicy::from_lookup(&|name: &str| match name {
///     "REDIS_WAIT_REPLICAS" => Some("1".into()),
///     _ => None,
/// })?;
/// assert!(matches!(policy.save, Durability::Replicated { replicas: 1, .. }));
/// assert_eq!(policy, DurabilityPolicy { save: policy.save, ..DurabilityPolicy::default() });
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurabilityPolicy {
    /// Covers every [`Class::Save`]: every `put` (`create`, `set`, `save`, `import`) and
    /// `refresh`, and any write not known to be something else.
    pub save: Durability,
    /// Covers every [`Class::Revoke`]: `delete`, `delete_user`, `rotate`, any `DEL`/`UNLINK`.
    pub revoke: Durability,
}

impl Default for DurabilityPolicy {
    fn default() -> Self {
        DurabilityPolicy {
            save: Durability::Async,
            revoke: Durability::Replicated {
                replicas: 1,
                timeout: DEFAULT_WAIT_TIMEOUT,
            },
        }
    }
}

impl DurabilityPolicy {
    /// Reads `REDIS_WAIT_REPLICAS`, `REDIS_WAIT_REPLICAS_REVOKE` and `REDIS_WAIT_TIMEOUT_MS`
    /// through `lookup` (see the table above); unset ones keep their defaults.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable: not a number, or a timeout of 0.
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self> {
        let timeout = match parse_var::<u64>(lookup, "REDIS_WAIT_TIMEOUT_MS")? {
            Some(0) => {
                return Err(Error::config(
                    "REDIS_WAIT_TIMEOUT_MS",
                    "must be at least 1 ms",
                ))
            }
            Some(ms) => Duration::from_millis(ms),
            None => DEFAULT_WAIT_TIMEOUT,
        };
        Ok(DurabilityPolicy {
            save: Durability::replicas(
                parse_var(lookup, "REDIS_WAIT_REPLICAS")?.unwrap_or(0),
                timeout,
            ),
            revoke: Durability::replicas(
                parse_var(lookup, "REDIS_WAIT_REPLICAS_REVOKE")?.unwrap_or(1),
                timeout,
            ),
        })
    }

    /// The longest `WAIT` timeout configured (zero when both are async).
    pub fn max_wait(&self) -> Duration {
        self.save.wait().max(self.revoke.wait())
    }

    /// Whether any write waits for replicas.
    pub fn any_replicated(&self) -> bool {
        self.max_wait() > Duration::ZERO
    }

    /// How a request made of commands of these classes is carried out: the strongest
    /// handling any of them needs.
    pub fn handling(&self, classes: impl IntoIterator<Item = Class>) -> Handling {
        classes
            .into_iter()
            .map(|class| match class {
                Class::Other => Handling::Read,
                Class::Maintenance => Handling::Async,
                Class::Save => self.save.into(),
                Class::Revoke => self.revoke.into(),
            })
            .fold(Handling::Read, Handling::stronger)
    }
}

/// `REDIS_WAIT_POOL_SIZE` (how many connections replicated writes use at most), if set.
///
/// # Errors
/// [`Error::Config`] naming the variable: not a number, or 0.
pub fn pool_size_from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<usize>> {
    match parse_var::<usize>(lookup, "REDIS_WAIT_POOL_SIZE")? {
        Some(0) => Err(Error::config("REDIS_WAIT_POOL_SIZE", "must be at least 1")),
        other => Ok(other),
    }
}

/// What one command does, for the durability that covers it (see the [module](self) docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Changes no data (a read, a connection or script-cache command): never waited for.
    Other,
    /// An index repair: a write, never waited for.
    Maintenance,
    /// Covered by [`DurabilityPolicy::save`].
    Save,
    /// Covered by [`DurabilityPolicy::revoke`].
    Revoke,
}

/// How a request is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Not a write.
    Read,
    /// A write, acknowledged as the primary answers.
    Async,
    /// A write followed by `WAIT replicas timeout` on a connection of its own.
    Replicated {
        /// Replicas that must confirm.
        replicas: u32,
        /// The `WAIT` timeout.
        timeout: Duration,
    },
}

impl Handling {
    /// The stronger of two: a write over a read, a replicated write over an async one, more
    /// replicas, then the longer timeout.
    pub fn stronger(self, other: Handling) -> Handling {
        let rank = |h: &Handling| match h {
            Handling::Read => (0, 0, Duration::ZERO),
            Handling::Async => (1, 0, Duration::ZERO),
            Handling::Replicated { replicas, timeout } => (2, *replicas, *timeout),
        };
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }
}

impl From<Durability> for Handling {
    fn from(durability: Durability) -> Self {
        match durability {
            Durability::Async => Handling::Async,
            Durability::Replicated { replicas, timeout } => {
                Handling::Replicated { replicas, timeout }
            }
        }
    }
}

/// Commands that read (or only report) and never change data.
const READS: &[&str] = &[
    "GET",
    "MGET",
    "PTTL",
    "TTL",
    "PEXPIRETIME",
    "EXPIRETIME",
    "EXISTS",
    "TYPE",
    "STRLEN",
    "GETRANGE",
    "ZSCORE",
    "ZMSCORE",
    "ZCARD",
    "ZCOUNT",
    "ZRANK",
    "ZREVRANK",
    "ZSCAN",
    "SCAN",
    "PING",
    "ECHO",
    "INFO",
    "ROLE",
    "TIME",
    "DBSIZE",
    "EVAL_RO",
    "EVALSHA_RO",
    "FCALL_RO",
];

/// Commands about the connection, the script cache or the cluster: they change no session
/// data, and waiting for a replica after them would only fail a `NOSCRIPT` reload on a
/// degraded primary.
const NOT_DATA: &[&str] = &[
    "SCRIPT",
    "CLIENT",
    "HELLO",
    "AUTH",
    "SELECT",
    "QUIT",
    "RESET",
    "WAIT",
    "WAITAOF",
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    "READONLY",
    "READWRITE",
    "COMMAND",
    "ASKING",
    "CLUSTER",
];

/// Commands that delete keys: what a lost revocation brings back.
const DELETES: &[&str] = &[
    "DEL", "UNLINK", "GETDEL", "RENAME", "RENAMENX", "FLUSHDB", "FLUSHALL",
];

/// Tells which commands are writes and which durability setting covers them (see the
/// [module](self) docs). Knows this crate's scripts by SHA1; build one per connection.
///
/// ```
/// use session_redis::durability::{Class, Classifier, DurabilityPolicy, Handling};
///
/// let classifier = Classifier::new();
/// assert_eq!(classifier.command(redis::cmd("GET").arg("k")), Class::Other);
/// assert_eq!(classifier.command(redis::cmd("UNLINK").arg("k")), Class::Revoke);
/// let policy = DurabilityPolicy::default(); // saves async, revocations 1 replica
/// let mut rotate = redis::pipe();
/// rotate.atomic().set("new", "v").del("old");
/// assert!(matches!(
///     classifier.handling_of_pipeline(&policy, &rotate),
///     Handling::Replicated { replicas: 1, .. }
/// ));
/// ```
#[derive(Debug, Clone)]
pub struct Classifier {
    /// Script SHA1 (lowercase hex) to class, for this crate's scripts.
    scripts: std::collections::HashMap<String, Class>,
}

impl Default for Classifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Classifier {
    /// A classifier knowing this crate's scripts.
    pub fn new() -> Self {
        let s = crate::scripts::scripts();
        let known = [
            (&s.write, Class::Save),
            (&s.refresh, Class::Save),
            (&s.import_batch, Class::Save),
            (&s.replace_score, Class::Maintenance),
            (&s.delete, Class::Revoke),
            (&s.delete_user, Class::Revoke),
            (&s.rotate, Class::Revoke),
            (&s.drop_gone, Class::Maintenance),
            // count's and cleanup's settling of due entries and pruning of user indexes
            (&s.settle, Class::Maintenance),
            (&s.prune_user, Class::Maintenance),
            // list_user's check of its entries; count's walk over per-slot indexes
            (&s.user_sessions, Class::Other),
            (&s.index_sizes, Class::Other),
        ];
        Classifier {
            scripts: known
                .into_iter()
                .map(|(script, class)| (script.get_hash().to_owned(), class))
                .collect(),
        }
    }

    /// The class of one command.
    pub fn command(&self, cmd: &Cmd) -> Class {
        let mut args = simple_args(cmd);
        let Some(name) = args.next() else {
            return Class::Other;
        };
        let is = |list: &[&str]| list.iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes()));
        let starts = |prefix: &str| {
            name.len() >= prefix.len()
                && name[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        };
        if is(READS) || is(NOT_DATA) {
            return Class::Other;
        }
        // ZRANGE, ZRANGEBYSCORE, ZREVRANGEBYLEX, …; ZRANGESTORE writes.
        if (starts("ZRANGE") || starts("ZREVRANGE")) && !name.eq_ignore_ascii_case(b"ZRANGESTORE") {
            return Class::Other;
        }
        if is(DELETES) {
            return Class::Revoke;
        }
        if name.eq_ignore_ascii_case(b"EVALSHA") {
            return self.script(args.next().and_then(|sha| std::str::from_utf8(sha).ok()));
        }
        if name.eq_ignore_ascii_case(b"EVAL") {
            let sha = args
                .next()
                .and_then(|body| std::str::from_utf8(body).ok())
                .map(|body| redis::Script::new(body).get_hash().to_owned());
            return self.script(sha.as_deref());
        }
        Class::Save
    }

    fn script(&self, sha: Option<&str>) -> Class {
        sha.and_then(|sha| self.scripts.get(&sha.to_ascii_lowercase()))
            .copied()
            .unwrap_or(Class::Save)
    }

    /// The class of each command of a pipeline, in order.
    pub fn pipeline<'a>(&'a self, pipe: &'a Pipeline) -> impl Iterator<Item = Class> + 'a {
        pipe.cmd_iter().map(|c| self.command(c))
    }

    /// How a single command is carried out under `policy`.
    pub fn handling_of_command(&self, policy: &DurabilityPolicy, cmd: &Cmd) -> Handling {
        policy.handling([self.command(cmd)])
    }

    /// How a pipeline is carried out: the strongest handling any command in it needs.
    pub fn handling_of_pipeline(&self, policy: &DurabilityPolicy, pipe: &Pipeline) -> Handling {
        policy.handling(self.pipeline(pipe))
    }

    /// How a request is carried out under `policy`.
    pub fn handling(&self, policy: &DurabilityPolicy, request: Request<'_>) -> Handling {
        match request {
            Request::Cmd(cmd) => self.handling_of_command(policy, cmd),
            Request::Pipe { pipe, .. } => self.handling_of_pipeline(policy, pipe),
        }
    }

    /// The first key of the first command in `request` that changes data: the key whose
    /// slot a replicated write goes to on a cluster (the first key, or a script's first
    /// `KEYS` entry). `None` when no write names a key.
    pub fn written_key<'a>(&self, request: Request<'a>) -> Option<&'a [u8]> {
        request
            .commands()
            .filter(|cmd| self.command(cmd) != Class::Other)
            .find_map(first_key)
    }
}

/// The body of a `SCRIPT LOAD`, if `cmd` is one.
pub fn script_load_body(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter();
    let mut next = || match args.next() {
        Some(Arg::Simple(bytes)) => Some(bytes),
        _ => None,
    };
    let (script, load, body) = (next()?, next()?, next()?);
    (script.eq_ignore_ascii_case(b"SCRIPT") && load.eq_ignore_ascii_case(b"LOAD")).then_some(body)
}

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
/// [`Error::Unavailable`]; the Sentinel backend as `SentinelError::NotReplicated`, with the
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
/// of a retryable [`Error::Unavailable`].
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

    const ONE: Durability = Durability::Replicated {
        replicas: 1,
        timeout: Duration::from_millis(250),
    };
    const TWO: Durability = Durability::Replicated {
        replicas: 2,
        timeout: Duration::from_millis(100),
    };

    fn policy(save: Durability, revoke: Durability) -> DurabilityPolicy {
        DurabilityPolicy { save, revoke }
    }

    fn cmd(parts: &[&str]) -> Cmd {
        let mut c = redis::cmd(parts[0]);
        for p in &parts[1..] {
            c.arg(*p);
        }
        c
    }

    fn from(pairs: &[(&str, &str)]) -> Result<DurabilityPolicy> {
        DurabilityPolicy::from_lookup(&|name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn reads_the_variables_with_their_defaults() {
        assert_eq!(from(&[]).unwrap(), DurabilityPolicy::default());
        let p = from(&[
            ("REDIS_WAIT_REPLICAS", "2"),
            ("REDIS_WAIT_REPLICAS_REVOKE", "0"),
            ("REDIS_WAIT_TIMEOUT_MS", "50"),
        ])
        .unwrap();
        assert_eq!(
            p.save,
            Durability::Replicated {
                replicas: 2,
                timeout: Duration::from_millis(50)
            }
        );
        assert_eq!(p.revoke, Durability::Async);
        assert_eq!(p.max_wait(), Duration::from_millis(50));
        for (name, value) in [
            ("REDIS_WAIT_REPLICAS", "-1"),
            ("REDIS_WAIT_REPLICAS_REVOKE", "one"),
            ("REDIS_WAIT_TIMEOUT_MS", "0"),
        ] {
            let err = from(&[(name, value)]).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        let size = |v: &str| pool_size_from_lookup(&|_: &str| Some(v.to_string()));
        assert_eq!(size("8").unwrap(), Some(8));
        assert!(size("0").is_err());
    }

    #[test]
    fn reads_and_connection_commands_are_not_writes() {
        let k = Classifier::new();
        for parts in [
            &["GET", "k"][..],
            &["mget", "a", "b"],
            &["PTTL", "k"],
            &["ZRANGEBYSCORE", "i", "0", "1"],
            &["ZREVRANGE", "i", "0", "1"],
            &["ZSCAN", "i", "0"],
            &["SCAN", "0"],
            &["SCRIPT", "LOAD", "return 1"],
            &["CLIENT", "INFO"],
            &["CLUSTER", "SLOTS"],
            &["MULTI"],
            &["EVALSHA_RO", "abc", "0"],
        ] {
            assert_eq!(k.command(&cmd(parts)), Class::Other, "{parts:?}");
        }
    }

    #[test]
    fn native_writes_are_saves_and_deletes_are_revocations() {
        let k = Classifier::new();
        for parts in [
            &["SET", "k", "v", "NX"][..],
            &["ZADD", "i", "1", "m"],
            &["PEXPIRE", "k", "10"],
            &["ZRANGESTORE", "d", "s", "0", "1"],
            &["ZREM", "i", "m"],
            &["SOMETHING_NEW", "k"],
        ] {
            assert_eq!(k.command(&cmd(parts)), Class::Save, "{parts:?}");
        }
        for parts in [
            &["DEL", "k"][..],
            &["unlink", "k"],
            &["GETDEL", "k"],
            &["RENAME", "a", "b"],
        ] {
            assert_eq!(k.command(&cmd(parts)), Class::Revoke, "{parts:?}");
        }
    }

    #[test]
    fn scripts_are_known_by_hash_and_unknown_ones_are_saves() {
        let k = Classifier::new();
        let s = crate::scripts::scripts();
        let evalsha = |script: &redis::Script| cmd(&["EVALSHA", script.get_hash(), "1", "k"]);
        assert_eq!(k.command(&evalsha(&s.write)), Class::Save);
        assert_eq!(k.command(&evalsha(&s.refresh)), Class::Save);
        assert_eq!(k.command(&evalsha(&s.delete)), Class::Revoke);
        assert_eq!(k.command(&evalsha(&s.delete_user)), Class::Revoke);
        assert_eq!(k.command(&evalsha(&s.rotate)), Class::Revoke);
        assert_eq!(k.command(&evalsha(&s.drop_gone)), Class::Maintenance);
        let upper = s.delete.get_hash().to_ascii_uppercase();
        assert_eq!(k.command(&cmd(&["EVALSHA", &upper, "0"])), Class::Revoke);
        assert_eq!(k.command(&cmd(&["EVALSHA", "0123", "0"])), Class::Save);
        assert_eq!(
            k.command(&cmd(&[
                "EVAL",
                "return redis.call('DEL', KEYS[1])",
                "1",
                "k"
            ])),
            Class::Save
        );
        assert_eq!(k.command(&cmd(&["FCALL", "f", "0"])), Class::Save);
    }

    #[test]
    fn script_loads_are_recognised() {
        let load = cmd(&["script", "LOAD", "return 1"]);
        assert_eq!(script_load_body(&load), Some(&b"return 1"[..]));
        assert_eq!(script_load_body(&cmd(&["SCRIPT", "FLUSH"])), None);
        assert_eq!(script_load_body(&cmd(&["GET", "LOAD", "x"])), None);
    }

    #[test]
    fn handling_follows_the_two_durability_settings() {
        let k = Classifier::new();
        let p = policy(Durability::Async, ONE);
        assert_eq!(
            k.handling_of_command(&p, &cmd(&["GET", "k"])),
            Handling::Read
        );
        assert_eq!(
            k.handling_of_command(&p, &cmd(&["SET", "k", "v"])),
            Handling::Async
        );
        assert!(matches!(
            k.handling_of_command(&p, &cmd(&["DEL", "k"])),
            Handling::Replicated { replicas: 1, .. }
        ));
        let drop_gone = crate::scripts::scripts().drop_gone.get_hash().to_owned();
        let p = policy(ONE, ONE);
        assert_eq!(
            k.handling_of_command(&p, &cmd(&["EVALSHA", &drop_gone, "0"])),
            Handling::Async
        );
    }

    #[test]
    fn a_pipeline_takes_the_strongest_handling_in_it() {
        let k = Classifier::new();
        let p = policy(TWO, ONE);
        let mut reads = redis::pipe();
        reads.cmd("GET").arg("k").cmd("PTTL").arg("k");
        assert_eq!(k.handling_of_pipeline(&p, &reads), Handling::Read);
        // A native rotate: a save and a delete in one transaction.
        let mut rotate = redis::pipe();
        rotate
            .atomic()
            .cmd("SET")
            .arg("new")
            .arg("v")
            .cmd("DEL")
            .arg("old");
        assert!(matches!(
            k.handling_of_pipeline(&p, &rotate),
            Handling::Replicated { replicas: 2, .. }
        ));
        let p = policy(Durability::Async, ONE);
        assert!(matches!(
            k.handling_of_pipeline(&p, &rotate),
            Handling::Replicated { replicas: 1, .. }
        ));
        let mut save = redis::pipe();
        save.atomic()
            .cmd("SET")
            .arg("k")
            .arg("v")
            .cmd("ZADD")
            .arg("i")
            .arg(1)
            .arg("m");
        assert_eq!(k.handling_of_pipeline(&p, &save), Handling::Async);
    }

    #[test]
    fn the_written_key_is_the_first_write_s_first_key() {
        let k = Classifier::new();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("GET")
            .arg("read")
            .cmd("ZADD")
            .arg("index")
            .arg(1)
            .arg("m");
        let request = Request::Pipe {
            pipe: &pipe,
            offset: 3,
            count: 1,
        };
        assert_eq!(k.written_key(request), Some(&b"index"[..]));
        let write = crate::scripts::scripts().write.get_hash().to_owned();
        let script = cmd(&["EVALSHA", &write, "2", "session:x", "idx", "arg"]);
        assert_eq!(
            k.written_key(Request::Cmd(&script)),
            Some(&b"session:x"[..])
        );
        let keyless = cmd(&["EVALSHA", &write, "0", "arg"]);
        assert_eq!(k.written_key(Request::Cmd(&keyless)), None);
        assert_eq!(k.written_key(Request::Cmd(&cmd(&["GET", "k"]))), None);
    }

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
