//! Mapping `redis` errors into [`session_core::Error`], keeping the source.

use std::fmt;
use std::time::Duration;

use redis::{ErrorKind, RedisError, ServerErrorKind};
use session_core::Error;

/// Server error codes that mean "not now, try again": the server is loading, busy with a
/// script, failing over, or lacks replicas. Listed by code because some have no `ErrorKind`.
const RETRYABLE_CODES: [&str; 7] = [
    "LOADING",
    "BUSY",
    "TRYAGAIN",
    "MASTERDOWN",
    "READONLY",
    "NOREPLICAS",
    "CLUSTERDOWN",
];

/// Maps a client error: unreachable / dropped / timed out / transient server states become
/// [`Error::Unavailable`] (retryable), every other server answer [`Error::Backend`].
pub fn to_store_error(backend: &'static str, err: RedisError) -> Error {
    if is_transient(&err) {
        Error::Unavailable {
            backend,
            source: Box::new(err),
        }
    } else {
        Error::Backend {
            backend,
            source: Box::new(err),
        }
    }
}

/// Whether the error is the server saying a key holds another type (`WRONGTYPE`).
pub fn is_wrong_type(err: &RedisError) -> bool {
    err.code() == Some("WRONGTYPE")
}

fn is_transient(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || matches!(
            err.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::ClusterDown
            )
        )
        || err
            .code()
            .is_some_and(|code| RETRYABLE_CODES.contains(&code))
}

/// A round trip took longer than the store's deadline (connect + response timeout): the
/// source of [`Error::Unavailable`] when the client itself did not time out first.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineExceeded {
    /// The deadline that passed.
    pub after: Duration,
}

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no answer from redis within {} ms",
            self.after.as_millis()
        )
    }
}

impl std::error::Error for DeadlineExceeded {}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: &str) -> RedisError {
        redis::make_extension_error(code.to_owned(), Some("detail".to_owned()))
    }

    #[test]
    fn transient_server_states_are_retryable() {
        for code in RETRYABLE_CODES {
            assert!(
                to_store_error("redis", server(code)).is_retryable(),
                "{code}"
            );
        }
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(to_store_error("redis", io).is_retryable());
    }

    #[test]
    fn other_answers_are_backend_errors_with_source() {
        let err = to_store_error("redis", server("NOPERM"));
        assert!(matches!(err, Error::Backend { .. }));
        assert!(std::error::Error::source(&err).is_some());
        assert!(!err.is_retryable());
    }
}
