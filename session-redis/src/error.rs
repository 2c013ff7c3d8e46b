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
/// [`Error::Unavailable`] (retryable), every other server answer [`Error::Backend`]. A TLS
/// certificate the client rejected is [`Error::Backend`] too, with [`TlsRejected`] as its
/// source: retrying cannot fix it.
pub fn to_store_error(backend: &'static str, err: RedisError) -> Error {
    if rejected_certificate(&err) {
        return Error::Backend {
            backend,
            source: Box::new(TlsRejected { source: err }),
        };
    }
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

/// The error of the first refused command in a transaction Redis discarded (`EXECABORT`:
/// nothing in it ran, as its commands were refused while queued), as an error of its own:
/// `LOADING`, `READONLY`, `MOVED`, … `None` for any other error.
pub fn aborted_transaction_cause(err: &RedisError) -> Option<RedisError> {
    if err.kind() != ErrorKind::Server(ServerErrorKind::ExecAbort) {
        return None;
    }
    // A bare `EXECABORT` reply (no queued refusals attached) lists itself as its only
    // error: skip it, or a caller judging the cause would judge the same error forever.
    let causes = err.clone().into_server_errors()?;
    causes
        .iter()
        .map(|(_, e)| RedisError::from(e.clone()))
        .find(|cause| cause.kind() != ErrorKind::Server(ServerErrorKind::ExecAbort))
}

fn is_transient(err: &RedisError) -> bool {
    if let Some(cause) = aborted_transaction_cause(err) {
        return is_transient(&cause);
    }
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

/// The server's TLS certificate did not verify (not signed by a trusted CA, not valid for the
/// host name, expired, …). The message says where trust comes from; the source is the client
/// error naming the certificate problem.
#[derive(Debug, Clone)]
pub struct TlsRejected {
    source: RedisError,
}

impl fmt::Display for TlsRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TLS: the server's certificate was rejected ({}); rediss:// trusts the public \
             web roots, or only the CA in REDIS_TLS_CA_FILE when that is set",
            self.source
        )
    }
}

impl std::error::Error for TlsRejected {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Whether rustls refused the server's certificate on this client's own connection. Its
/// error sits inside the `io::Error` the TLS stream failed with, which `redis` keeps behind
/// an `Arc`; neither shows its inner error through `source()`, so each layer is opened by
/// type. Other errors carried inside an `io::Error` (a Sentinel connection's discovery
/// errors) are left alone: they keep their own mapping.
#[cfg(feature = "tls")]
fn rejected_certificate(err: &RedisError) -> bool {
    use std::error::Error as StdError;
    use std::sync::Arc;

    let is_rejection = |e: &(dyn StdError + 'static)| {
        e.downcast_ref::<rustls::Error>()
            .is_some_and(|tls| matches!(tls, rustls::Error::InvalidCertificate(_)))
    };
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(shared) = e.downcast_ref::<Arc<dyn StdError + Send + Sync>>() {
            next = Some(&**shared);
        } else if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.get_ref().is_some_and(|inner| is_rejection(inner));
        } else if is_rejection(e) {
            return true;
        } else {
            next = e.source();
        }
    }
    false
}

#[cfg(not(feature = "tls"))]
fn rejected_certificate(_: &RedisError) -> bool {
    false
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

    #[test]
    fn a_bare_transaction_abort_has_no_cause_and_is_a_backend_error() {
        let reply = redis::parse_redis_value(b"-EXECABORT Transaction discarded\r\n").unwrap();
        let err = reply.extract_error().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server(ServerErrorKind::ExecAbort));
        assert!(aborted_transaction_cause(&err).is_none());
        assert!(matches!(
            to_store_error("redis", err),
            Error::Backend { .. }
        ));
    }
}
