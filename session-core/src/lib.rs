//! # session-core: the contract every session store meets
//!
//! A web service keeps login sessions somewhere: a process-local map (lost on restart), one
//! Redis, or Redis behind Sentinel. This crate defines what all of them promise, so a service
//! can move between them by configuration alone:
//!
//! - [`SessionId`]: the cookie token, 32 random bytes in URL-safe base64 (43 characters),
//!   validated before any store sees it and never printed in full.
//! - [`Session`]: a JSON object of data (`serde_json::Map`) with its [`Lifetime`] (idle
//!   timeout slid by activity, optional absolute lifetime) and a [`Version`] for optimistic
//!   concurrency.
//! - [`SessionStore`]: the ten primitives every backend implements atomically, with one write,
//!   [`put`](SessionStore::put), whose [`PutMode`] states its precondition (`Create`,
//!   `Upsert`, `IfLive`, `IfVersion`); its `# Behavior` lists are the specification, each
//!   bullet checked on every backend by the `conformance-tests` crate. [`SessionStoreExt`]
//!   adds `create`, `get`, `set`, `save`, `update` (retrying on conflict), `import` and
//!   streaming iteration, once, for all stores.
//! - [`Clock`]: injectable time, so expiry is deterministic in tests on every backend.
//! - [`SessionConfig`]: `SESSION_TTL`, `SESSION_KEY_PREFIX`, … from the environment.
//! - [`Error`]: one `#[non_exhaustive]` enum of things a caller can act on.
//!
//! Why optimistic concurrency: the service this library replaces loaded a session, changed
//! one key and wrote the whole object back, so two requests changing different keys lost one
//! change. Here a stale save (a [`PutMode::IfVersion`] put) fails with [`Error::Conflict`] and
//! `update` re-applies the change to the fresh session.
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::json;
//! use session_core::{Error, SessionId, SessionStore, SessionStoreExt};
//!
//! async fn current_user(store: &dyn SessionStore, cookie: &str) -> Result<Option<String>, Error> {
//!     let id: SessionId = match cookie.parse() {
//!         Ok(id) => id,
//!         Err(_) => return Ok(None), // malformed: never looked up
//!     };
//!     let Some(session) = store.get(&id).await? else { return Ok(None) };
//!     store.refresh(&id).await?; // sliding expiry on activity
//!     Ok(session.get::<serde_json::Value>("user")?.and_then(|u| u["username"].as_str().map(String::from)))
//! }
//! ```
#![deny(missing_docs)]

mod config;
mod data;
mod error;
mod ext;
mod id;
mod session;
mod store;
mod time;

pub use config::{
    parse_var, SessionConfig, DEFAULT_IDLE_TIMEOUT, DEFAULT_KEY_PREFIX, DEFAULT_MAX_SESSION_BYTES,
};
pub use data::{
    encode_data, encoded_len, user_of, user_ref, validate_data, SessionData, RESERVED_KEY,
};
pub use error::{BoxError, Error, Result};
pub use ext::{sessions_of, SessionStoreExt, DEFAULT_SCAN_PAGE, DEFAULT_UPDATE_ATTEMPTS};
pub use id::{SessionHandle, SessionId, SESSION_ID_BYTES, SESSION_ID_LEN};
pub use session::{
    CleanupReport, ImportOutcome, Lifetime, PutMode, ScanCursor, ScanPage, Session, SessionRecord,
    SessionSummary, Version, WriteOptions,
};
pub use store::{Capabilities, SessionStore};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
