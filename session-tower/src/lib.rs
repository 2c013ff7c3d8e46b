//! # session-tower: our session stores under tower-sessions
//!
//! [`TowerStore`] implements [`tower_sessions::SessionStore`](tower_sessions_core::SessionStore)
//! (tower-sessions 0.15) over any `Arc<dyn session_core::SessionStore>`, so an axum service
//! using tower-sessions' `SessionManagerLayer` gets the memory, Redis and Sentinel backends,
//! and live migration through `MigratingStore`, by swapping one store:
//!
//! ```no_run
//! # // no_run: it reads the process environment and may connect to a real Redis.
//! # async fn demo() -> session_core::Result<()> {
//! use session_tower::TowerStore;
//! use tower_sessions::{Expiry, SessionManagerLayer};
//!
//! let store = session_store::from_env().await?; // SESSION_BACKEND=memory|redis|sentinel
//! let layer = SessionManagerLayer::new(TowerStore::new(store))
//!     .with_expiry(Expiry::OnInactivity(time::Duration::hours(2)));
//! // Router::new().route(…).layer(layer)
//! # Ok(()) }
//! ```
//!
//! ## How tower-sessions maps onto the store
//!
//! | tower-sessions | here |
//! |---|---|
//! | `Id` (an `i128`, the cookie value) | store id `SHA-256("session-tower/v1/tower-sessions-id\0" ‖ id as 16 LE bytes)` via `SessionId::from_bytes` ([`TowerStore::session_id`]) |
//! | `Record::data` (`HashMap<String, Value>`) | the session's JSON object, same top-level keys (readable by the existing service) |
//! | `Record::expiry_date` | per-session idle timeout = `expiry_date − now` (wall clock, as tower-sessions dates records), so the store expires it at that instant; loaded back as the store's `expires_at` |
//! | `create` | `put` with `PutMode::Create` (never overwrites); on `AlreadyExists` (a live session has the id), a new `Id` and retry (at most [`CREATE_ATTEMPTS`]) |
//! | `save` | one `put` with `PutMode::IfLive`: replaces a live session whatever its version (last writer wins, no `Conflict`), checked atomically with the write; a session that is gone gives `NotFound`, is not recreated, and the write is dropped with a warning (`save` still returns `Ok`) |
//! | `load` | `load`: `None` when missing or expired |
//! | `delete` | `delete` (missing is fine) |
//! | `Session::cycle_id` | tower-sessions deletes the old id and `create`s the new one: data kept, old id dead |
//! | errors | reserved key `__session__` / too large → `Encode`; corrupt record → `Decode`; everything else → `Backend`. Messages name the backend and operation, never a token |
//!
//! Expiry variants, as tower-sessions turns them into `expiry_date`:
//! `OnInactivity(d)` → TTL `d`, slid on every modifying request (reads do not slide, as in
//! tower-sessions); `AtDateTime(t)` → TTL until `t`; `OnSessionEnd` (or none) → tower-sessions'
//! two-week default (the cookie itself has no `Max-Age`). A date already past deletes the
//! session (`save`) or stores nothing (`create`).
//!
//! ## Limitations
//! - The store's absolute lifetime (`SESSION_ABSOLUTE_TTL`) still applies and may end a
//!   session before `expiry_date`; the store's default `SESSION_TTL` does not (the middleware's
//!   expiry decides).
//! - A `save` that finds the session gone (a logout, "log out everywhere" or expiry got there
//!   first, or `Session::clear` kept a dead cookie's id, which tower-sessions would otherwise
//!   store the data under) drops the request's writes: tower-sessions' `save` has no way to
//!   say so, so the adapter logs a warning and returns `Ok`. A logout is never undone, however
//!   the two requests interleave. At login call `cycle_id()`: it goes through `create`, so the
//!   new session is stored whatever the old cookie pointed at.
//! - Sessions written through this adapter are keyed by the derived id: the existing service
//!   can read their data (same format) but cannot map its own tokens to tower-sessions
//!   cookies. Sessions created by the existing service are not visible to tower-sessions.
//! - No `ExpiredDeletion`: our stores purge expired sessions themselves (Redis TTLs, the
//!   memory store's eviction, `SessionStore::cleanup`).
#![deny(missing_docs)]

mod convert;
mod id;
mod store;

pub use store::{TowerStore, CREATE_ATTEMPTS};
