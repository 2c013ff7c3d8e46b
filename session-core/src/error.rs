//! The one error type every store returns.

use std::fmt;

/// A boxed error kept as the `source` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for `Result<T, session_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a session store, as variants a caller can act on.
///
/// Messages never contain a session token, a password or session data: ids appear only as
/// their fingerprint (see [`SessionId`](crate::SessionId)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A token did not have the shape of a session id. It was never looked up.
    #[error("malformed session id: {reason}")]
    InvalidId {
        /// Why the token was rejected (never the token itself).
        reason: &'static str,
    },
    /// The session was written by someone else since it was loaded. Load it again and retry,
    /// or use [`SessionStoreExt::update`](crate::SessionStoreExt::update), which does.
    #[error("session changed since it was loaded")]
    Conflict,
    /// The session does not exist (any more): deleted, rotated away or expired. A save never
    /// brings it back.
    #[error("session not found or expired")]
    NotFound,
    /// The encoded session data exceeds the configured limit; nothing was written.
    #[error("session data is {size} bytes encoded, over the limit of {limit} bytes")]
    TooLarge {
        /// Encoded size of the rejected data, in bytes.
        size: usize,
        /// The configured limit ([`SessionConfig::max_session_bytes`](crate::SessionConfig)).
        limit: usize,
    },
    /// The store holds as many sessions as its configured capacity allows; nothing was evicted.
    #[error("session store is full (capacity {capacity})")]
    CapacityExceeded {
        /// The configured capacity.
        capacity: usize,
    },
    /// The session data cannot be stored as given (for example it uses the reserved key).
    #[error("invalid session data: {reason}")]
    InvalidData {
        /// What is wrong with it.
        reason: String,
    },
    /// A stored record could not be read as a session (not JSON, not an object, wrong Redis
    /// type, unreadable metadata). Nothing was changed.
    #[error("corrupt session record {fingerprint}: {reason}")]
    Corrupt {
        /// The fingerprint of the session's id (never the token).
        fingerprint: String,
        /// What is wrong with the record.
        reason: String,
        /// The decoding error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The backend could not be reached or did not answer in time. Safe to retry later: see
    /// [`Error::is_retryable`].
    #[error("{backend} backend unavailable: {source}")]
    Unavailable {
        /// Which backend (`"redis"`, `"sentinel"`, …).
        backend: &'static str,
        /// The client error.
        #[source]
        source: BoxError,
    },
    /// The backend answered with an error that retrying will not fix.
    #[error("{backend} backend error: {source}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The client error.
        #[source]
        source: BoxError,
    },
    /// A configuration value is missing or malformed.
    #[error("invalid configuration {variable}: {message}")]
    Config {
        /// The environment variable (or setting) at fault.
        variable: String,
        /// What is wrong with it (never the value of a secret).
        message: String,
    },
    /// The backend cannot do this (for example importing a record without its token into a
    /// store that keys sessions by token).
    #[error("{backend} does not support {operation}")]
    Unsupported {
        /// Which backend.
        backend: &'static str,
        /// What was asked.
        operation: &'static str,
    },
}

impl Error {
    /// True when the same call may succeed if repeated later (backend unavailable, timeouts,
    /// failover in progress) or right away after reloading ([`Error::Conflict`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Conflict)
    }

    /// Builds [`Error::Config`].
    pub fn config(variable: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Config {
            variable: variable.into(),
            message: message.to_string(),
        }
    }

    /// Builds [`Error::Corrupt`] for the session with this fingerprint.
    pub fn corrupt(
        fingerprint: impl Into<String>,
        reason: impl Into<String>,
        source: Option<BoxError>,
    ) -> Self {
        Error::Corrupt {
            fingerprint: fingerprint.into(),
            reason: reason.into(),
            source,
        }
    }
}
