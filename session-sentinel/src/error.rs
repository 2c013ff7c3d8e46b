//! `SentinelError`: what discovery and failover handling add to the Redis backend's errors.
//!
//! Callers meet it as the `source` of a [`session_core::Error`] and can downcast to it:
//!
//! ```
//! use session_sentinel::SentinelError;
//!
//! fn failover_in_progress(err: &session_core::Error) -> bool {
//!     std::error::Error::source(err)
//!         .and_then(|s| s.downcast_ref::<SentinelError>())
//!         .is_some_and(|s| matches!(s, SentinelError::NoSentinelReachable { .. } | SentinelError::NoMaster { .. }))
//! }
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use session_core::Error;
use session_redis::durability;

/// The backend name in errors and traces.
pub const BACKEND: &str = "sentinel";

/// A shared, cloneable error source.
pub type SharedError = Arc<dyn StdError + Send + Sync + 'static>;

/// Failures of Sentinel discovery and failover handling. Every variant except
/// [`MasterNameUnknown`](Self::MasterNameUnknown) becomes a retryable
/// [`Error::Unavailable`]; that one is a configuration error ([`Error::Config`] naming
/// `REDIS_MASTER_NAME`), since no Sentinel knowing the name is not something waiting fixes.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SentinelError {
    /// No Sentinel in the list could be reached (connect or reply timed out or failed).
    #[error("no Sentinel reachable (tried {tried})")]
    NoSentinelReachable {
        /// How many Sentinels were tried.
        tried: usize,
        /// The last connection error.
        #[source]
        last: Option<SharedError>,
    },
    /// Every reachable Sentinel answered that it does not know the master name.
    #[error("no Sentinel knows a master named `{name}` (check REDIS_MASTER_NAME)")]
    MasterNameUnknown {
        /// The master name asked for.
        name: String,
    },
    /// The Sentinels named an address that is not (or not yet) a usable master: `ROLE` said
    /// otherwise, or it could not be reached, until the discovery's time ran out. Usual during
    /// a failover.
    #[error("Sentinels name {addr} as master but it is not usable: {reason}")]
    NotMaster {
        /// The address the Sentinels named.
        addr: String,
        /// What `ROLE` said, or why it could not be reached.
        reason: String,
    },
    /// A request waited for discovery longer than its bound (a failover in progress).
    #[error("no master found within {} ms", waited.as_millis())]
    NoMaster {
        /// How long the request waited.
        waited: Duration,
    },
    /// The master was demoted under the request (`READONLY`, or `WAIT` refused on a
    /// replica): the request was not applied.
    #[error("{addr} is no longer the master")]
    Demoted {
        /// The demoted node.
        addr: String,
    },
    /// A Sentinel announced a failover of this master (`+selected-slave`), so no write is
    /// acknowledged from it: the promoted replica may never receive what the old master
    /// accepts from here on. When `applied` is false the write was not sent (and is retried
    /// across the failover); when true it was applied on the old master and may be lost
    /// (operations safe to repeat are retried on the new master).
    #[error("a failover of {addr} started; write {}", if *applied { "applied there but not acknowledged: it may be lost" } else { "not sent" })]
    FailoverStarted {
        /// The master being failed over.
        addr: String,
        /// Whether the write reached it.
        applied: bool,
    },
    /// A replicated write was applied on the master but fewer replicas than asked confirmed
    /// it before the `WAIT` timeout. It is **not** rolled back: it may survive a failover or
    /// vanish. Retrying later is safe for idempotent writes. Arrives within the `WAIT`
    /// timeout plus a round trip or two; the master stays in use (too few replicas is no
    /// reason to look for another).
    #[error(
        "write applied on the master but confirmed by {acked} of {wanted} replicas within {} ms; it may be lost in a failover",
        timeout.as_millis()
    )]
    NotReplicated {
        /// Replicas that confirmed.
        acked: i64,
        /// Replicas asked for.
        wanted: u32,
        /// The `WAIT` timeout.
        timeout: Duration,
    },
    /// Every connection for replicated writes to this master was busy for the response
    /// timeout (see `SentinelConfig::wait_pool_size`). The write was not sent.
    #[error("all {limit} connections for replicated writes are busy")]
    Saturated {
        /// The pool's size.
        limit: usize,
    },
    /// The connection to the master failed or timed out after the request was sent, so
    /// whether the master applied it is not known. When `settled` is true the server side of
    /// that connection was closed before this error was returned (or its server was found
    /// gone): the request was applied before this error or never will be. See
    /// [`OutcomeUnknown`](Self::OutcomeUnknown) for what that lets a caller conclude.
    #[error("the connection to {addr} failed after the request was sent ({})", if *settled { "settled: it will not be applied later" } else { "not settled: it may still be applied" })]
    Interrupted {
        /// The master the request went to.
        addr: String,
        /// Whether no later moment can apply the request.
        settled: bool,
        /// The failure.
        #[source]
        source: SharedError,
    },
    /// The connection to the master failed after the request was sent, and the operation is
    /// not safe to repeat (`put` in the `Create` and `IfVersion` modes, so `create`, `save`,
    /// `import`; and `rotate`): it may or may not have been applied.
    ///
    /// When `settled` is true (the usual case: a master that crashed, or one that answered
    /// the store's `CLIENT KILL` of the connection that carried the write), the write was
    /// applied before this error was returned or never will be. So a `load` after this error
    /// tells what happened, as far as this write goes: the state it shows is not changed by
    /// this write later. (Like any write not confirmed by replicas, an applied one can still
    /// be lost in a later failover.) A `save` shown as not applied can be made again; a
    /// `create` shown as absent left nothing behind.
    ///
    /// When `settled` is false (the master stalled or unreachable, or the data user may not
    /// run `CLIENT KILL`), the master may still apply the write when it reads it (until it is
    /// failed over, or the connection is closed on its side): a load then proves only what
    /// has been applied so far, not that the write will not show up later.
    #[error("`{operation}` may or may not have been applied: the master failed before replying ({})", if *settled { "settled: a load now shows whether it was" } else { "not settled: it may still be applied" })]
    OutcomeUnknown {
        /// The store operation.
        operation: &'static str,
        /// Whether no later moment can apply the write (see above).
        settled: bool,
        /// The failure.
        #[source]
        source: SharedError,
    },
}

impl SentinelError {
    /// Whether the request never reached a master that could apply it, so repeating any
    /// operation is safe.
    pub(crate) fn not_applied(&self) -> bool {
        matches!(
            self,
            SentinelError::NoSentinelReachable { .. }
                | SentinelError::NotMaster { .. }
                | SentinelError::NoMaster { .. }
                | SentinelError::Demoted { .. }
                | SentinelError::FailoverStarted { applied: false, .. }
                | SentinelError::Saturated { .. }
        )
    }

    /// This error as the store's error (see the type docs for the mapping).
    pub fn into_store_error(self) -> Error {
        match self {
            SentinelError::MasterNameUnknown { .. } => Error::config("REDIS_MASTER_NAME", &self),
            other => Error::Unavailable {
                backend: BACKEND,
                source: Box::new(other),
            },
        }
    }

    /// Carries this error through the `redis` client's error type, so it survives the trip
    /// through `RedisStore` and can be recovered by [`find`].
    pub(crate) fn into_redis(self) -> redis::RedisError {
        durability::carry(self)
    }
}

impl From<durability::NotReplicated> for SentinelError {
    fn from(e: durability::NotReplicated) -> Self {
        SentinelError::NotReplicated {
            acked: e.acked,
            wanted: e.wanted,
            timeout: e.timeout,
        }
    }
}

impl From<SentinelError> for Error {
    fn from(e: SentinelError) -> Self {
        e.into_store_error()
    }
}

/// Finds a [`SentinelError`] anywhere in an error's source chain, including inside the
/// `redis` client's I/O error wrapping (whose `source` skips the wrapped error).
pub(crate) fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a SentinelError> {
    durability::find::<SentinelError>(err)
}

/// Shows a socket address (never credentials).
pub(crate) struct Addr<'a>(pub &'a str, pub u16);

impl fmt::Display for Addr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains(':') {
            write!(f, "[{}]:{}", self.0, self.1)
        } else {
            write!(f, "{}:{}", self.0, self.1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_the_trip_through_redis_and_the_store() {
        let original = SentinelError::NoSentinelReachable {
            tried: 3,
            last: None,
        };
        let store_err = session_redis::error::to_store_error("sentinel", original.into_redis());
        assert!(store_err.is_retryable());
        let found = find(&store_err).expect("found in the chain");
        assert!(matches!(
            found,
            SentinelError::NoSentinelReachable { tried: 3, .. }
        ));
    }

    #[test]
    fn unknown_name_is_a_config_error_naming_the_variable() {
        let err = SentinelError::MasterNameUnknown {
            name: "nope".into(),
        }
        .into_store_error();
        assert!(matches!(&err, Error::Config { variable, .. } if variable == "REDIS_MASTER_NAME"));
        assert!(!err.is_retryable());
    }

    #[test]
    fn unavailable_variants_downcast() {
        let err: Error = SentinelError::NoMaster {
            waited: Duration::from_secs(1),
        }
        .into();
        let source = std::error::Error::source(&err).unwrap();
        assert!(source.downcast_ref::<SentinelError>().is_some());
    }
}
