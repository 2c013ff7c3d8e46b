//! # session-memory: sessions in process memory
//!
//! [`MemoryStore`] implements the whole [`SessionStore`] contract on a [`DashMap`]: the drop-in
//! replacement for a process-local `HashMap<String, Session>`. Sessions are lost when the
//! process stops; that is what the Redis backends are for, and the same code runs on them.
//!
//! Expired sessions are evicted by a background task (while a Tokio runtime is running; it
//! stops when the store is dropped), on access, and by [`SessionStore::cleanup`]. An optional
//! capacity makes `create` fail with [`Error::CapacityExceeded`] when full: nothing is ever
//! evicted early.
//!
//! ## Switching from a map of sessions
//!
//! Before, with a `DashMap<String, serde_json::Value>` shared by the handlers:
//!
//! ```text
//! let token = random_token();
//! sessions.insert(token.clone(), json!({"user": user}));        // sessions[token] = data
//! if let Some(s) = sessions.get(&token) { /* ... */ }            // sessions.get(token)
//! let live = sessions.contains_key(&token);                      // token in sessions
//! sessions.remove(&token);                                       // del sessions[token]
//! ```
//!
//! After (expiry, size limits, per-user logout and lost-update protection included):
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::json;
//! use session_core::{SessionId, SessionStore, SessionStoreExt};
//! use session_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> session_core::Result<()> {
//! let sessions: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
//! let data = json!({"user": {"username": "aaron", "sub": "u-1"}});
//! let session = sessions.create(data.as_object().unwrap().clone()).await?; // mint + store
//! let token = session.id().expose_token().to_owned();                     // for the cookie
//!
//! let id: SessionId = token.parse()?;                  // validate the cookie first
//! assert!(sessions.get(&id).await?.is_some());         // sessions.get(token)
//! assert!(sessions.exists(&id).await?);                // token in sessions
//! sessions.update(&id, |d| { d.insert("csrf_token".into(), json!("x")); }).await?;
//! assert!(sessions.delete(&id).await?);                // del sessions[token]
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod entry;
mod scan;
mod store;

pub use store::{MemoryStore, MemoryStoreBuilder, DEFAULT_EVICTION_INTERVAL};

#[doc(no_inline)]
pub use dashmap::DashMap;
#[doc(no_inline)]
pub use session_core::{Error, SessionStore};
