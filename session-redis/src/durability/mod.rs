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

use std::time::Duration;

use session_core::{parse_var, Error, Result};

mod classify;
mod request;

pub use classify::{script_load_body, Class, Classifier, Handling};
pub use request::{
    aborted_transaction, carry, confirmed, find, wait_waking, wrote, NotReplicated, Request,
    Saturated, WithWait,
};

/// Default `WAIT` timeout of replicated writes (`REDIS_WAIT_TIMEOUT_MS`).
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_millis(250);

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
