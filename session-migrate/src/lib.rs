//! # session-migrate: move sessions between stores while the service runs
//!
//! [`MigratingStore`] wraps the store a service used until now (`old`, say its in-memory
//! store) and the one it moves to (`new`, say Redis), and is itself a
//! [`SessionStore`](session_core::SessionStore), so the service swaps one `Arc<dyn SessionStore>`
//! and keeps running:
//!
//! - writes go to `new`; a request for a session still in `old` first moves it (import into
//!   `new` with its lifetime, then delete from `old`), so nobody is logged out;
//! - deletes, rotations and per-user revocations reach both stores;
//! - `count` and `list_user` see each live session once; iteration never misses one (a session
//!   moved during an iteration may be yielded twice: dedupe by handle, as the contract allows);
//! - [`MigratingStore::copy_batch`] (or [`MigratingStore::spawn_copier`]) moves the rest in
//!   the background, resumably and idempotently, keeping each session's remaining idle and
//!   absolute lifetime; [`MigratingStore::is_complete`] says when `old` is empty. Its
//!   progress also goes to the `metrics` facade: the counter [`COPIED_TOTAL`]
//!   (`session_migrate_copied_total`) and the gauge [`REMAINING`] (`session_migrate_remaining`),
//!   labelled `store="migrating"`, `from` and `to` (the backends' names).
//!
//! Both stores must read the same clock. Moves are serialised per id inside this process, so
//! run the migration from the process that owns `old` (for an in-memory `old`, that is the
//! only one that can see it). `old` must keep tokens (`Capabilities::keeps_tokens`).
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{SessionStore, SessionStoreExt};
//! use session_memory::MemoryStore;
//! use session_migrate::MigratingStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> session_core::Result<()> {
//! let old = Arc::new(MemoryStore::new());            // where sessions live today
//! let kept = old.create(Default::default()).await?;  // a user logged in before the switch
//! let new = Arc::new(MemoryStore::new());            // in production: a RedisStore
//! let store = MigratingStore::new(old.clone(), new.clone());
//!
//! assert!(store.get(kept.id()).await?.is_some());    // still logged in, now served from `new`
//! let progress = store.copy_batch(500).await?;       // move whatever is left
//! assert!(progress.complete && store.is_complete().await?);
//! assert_eq!(old.count().await?, 0);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod copier;
mod locks;
mod progress;
mod store;

pub use progress::{CopyProgress, COPIED_TOTAL, REMAINING};
pub use store::MigratingStore;
