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
    /// The session was written by someone else since it was loaded (a
    /// [`PutMode::IfVersion`](crate::PutMode::IfVersion) put lost the race). Repeating the same
    /// put can never succeed: load again and re-apply the change, as
    /// [`SessionStoreExt::update`](crate::SessionStoreExt::update) does.
    #[error("session changed since it was loaded")]
    Conflict,
    /// A live session already has this id (a [`PutMode::Create`](crate::PutMode::Create) put);
    /// it was left as it was. Create under a fresh id instead.
    #[error("a live session already has this id")]
    AlreadyExists,
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
    /// The backend could not be reached, did not answer in time, or is failing over: the one
    /// [retryable](Error::is_retryable) error.
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
    /// True when the failure is transient: the same call, unchanged, may succeed if repeated
    /// later (the backend was unreachable, timed out or was failing over), so a caller may
    /// retry it with backoff. Only [`Error::Unavailable`] is.
    ///
    /// Everything else fails the same way however often it is repeated: the input is refused
    /// ([`Error::InvalidId`], [`Error::TooLarge`], [`Error::InvalidData`]), the precondition
    /// does not hold ([`Error::NotFound`], [`Error::AlreadyExists`], and [`Error::Conflict`],
    /// whose remedy is to load again and re-apply, not to repeat), or the setup is wrong.
    ///
    /// A write that failed with `Unavailable` may or may not have been applied (the request
    /// may have reached the server before the connection broke). Repeating it is safe for the
    /// idempotent modes ([`PutMode::Upsert`](crate::PutMode::Upsert),
    /// [`PutMode::IfLive`](crate::PutMode::IfLive), `delete`, `refresh`); a repeated
    /// [`PutMode::Create`](crate::PutMode::Create) or
    /// [`PutMode::IfVersion`](crate::PutMode::IfVersion) that was applied the first time
    /// reports [`Error::AlreadyExists`] or [`Error::Conflict`].
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
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
