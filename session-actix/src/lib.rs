//! # session-actix: our session stores under actix-session
//!
//! [`ActixStore`] implements [`actix_session::storage::SessionStore`] (actix-session 0.11,
//! actix-web 4) over any `Arc<dyn session_core::SessionStore>`, so an actix-web service using
//! actix-session's `SessionMiddleware` gets the memory, Redis and Sentinel backends, and live
//! migration through `MigratingStore`, by swapping one store:
//!
//! ```no_run
//! # // no_run: it reads the process environment, may connect to a real Redis, and serves.
//! use actix_session::{Session, SessionMiddleware};
//! use actix_web::{cookie::Key, web, App, HttpServer};
//! use session_actix::ActixStore;
//!
//! async fn whoami(session: Session) -> actix_web::Result<String> {
//!     let user: Option<serde_json::Value> = session.get("user")?;
//!     Ok(user.map_or("anonymous".into(), |user| user["sub"].to_string()))
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     actix_web::rt::System::new().block_on(async {
//!         let store = session_store::from_env().await?; // SESSION_BACKEND=memory|redis|sentinel
//!         let key = Key::generate(); // in production: one key, shared by every instance
//!         HttpServer::new(move || {
//!             App::new()
//!                 .wrap(SessionMiddleware::new(ActixStore::new(store.clone()), key.clone()))
//!                 .route("/whoami", web::get().to(whoami))
//!         })
//!         .bind(("127.0.0.1", 8080))?
//!         .run()
//!         .await?;
//!         Ok(())
//!     })
//! }
//! ```
//!
//! Lifetimes are actix-session's: `SessionMiddleware::builder(store, key)
//! .session_lifecycle(PersistentSession::default().session_ttl(ttl))` makes `ttl` both the
//! cookie's `Max-Age` and the session's idle timeout in the store;
//! `BrowserSession::default().state_ttl(ttl)` the idle timeout alone (one day by default).
//! [`ActixStore`]'s own docs have an example that runs.
//!
//! ## How actix-session maps onto the store
//!
//! | actix-session | here |
//! |---|---|
//! | `SessionKey` (the cookie's content, signed or encrypted by the middleware) | our [`SessionId`](session_core::SessionId) token itself: 43 URL-safe base64 characters, 32 random bytes ([`ActixStore::session_id`]) |
//! | a key that is not a well-formed `SessionId` | names no session: `load` gives `Ok(None)`, `update`/`update_ttl`/`delete` do nothing; the store is never asked |
//! | session state (`HashMap<String, String>`, each value JSON text) | the session's JSON object: same top-level keys, each value decoded from its JSON text (objects stay objects, readable by the existing service); loaded back as compact JSON text. Text that is not JSON → `SaveError`/`UpdateError::Serialization` |
//! | `ttl` (`state_ttl`; `session_ttl` for `PersistentSession`) | per-session idle timeout: `WriteOptions::with_idle_timeout(ttl)`, whole milliseconds; under 1 ms = already expired |
//! | `load` | `load`: `None` when missing or expired |
//! | `save` (new session) | `put` with `PutMode::Create` under a fresh `SessionId::generate()`; on `AlreadyExists` a new id and retry (at most [`SAVE_ATTEMPTS`]); returns the new key. TTL under 1 ms: nothing stored, an unused key returned |
//! | `update` (state changed) | one `put` with `PutMode::IfLive`: replaces a live session whatever its version (last writer wins). A session that is gone gives `NotFound`: it is **not** recreated, the write is dropped with a warning, and the same (dead) key is returned. TTL under 1 ms: `delete` |
//! | `update_ttl` (`TtlExtensionPolicy::OnEveryRequest`, unchanged state) | `refresh`: the idle expiry slides by the session's stored idle timeout; a gone session stays gone. TTL under 1 ms: `delete` |
//! | `delete` (`Session::purge`) | `delete` (missing is fine) |
//! | `Session::renew` | actix-session `delete`s the old key and `save`s the state: a fresh id, data kept, old id dead |
//! | `LoadError` | a stored record that does not read as a session (`Corrupt`) → `Deserialization` (actix-session goes on with an empty state under the same key); anything else → `Other` (a 500) |
//! | `SaveError` / `UpdateError` | reserved key `__session__` / too large / not JSON → `Serialization`; everything else → `Other` |
//! | `update_ttl` / `delete` errors | `anyhow::Error` |
//!
//! Every error is an `anyhow::Error` over our [`Error`](session_core::Error), with the backend
//! and operation as context (`"redis session store: update failed: …"`). Neither holds a
//! token: our errors name sessions by fingerprint only, and nothing here adds the key.
//!
//! ### Why `update` of a gone session returns the dead key
//! actix-session's `update` must hand back a key for the cookie. Its own `RedisSessionStore`
//! answers a missing session by storing the state under a fresh key: a request that was in
//! flight when the user logged out (or was logged out everywhere, or expired) would then log
//! them back in, under a new cookie, with the `user` it had loaded. Here the state is never
//! stored anywhere, and the key returned is the same one, which names nothing: the cookie the
//! browser ends up with, whichever response it reads last, opens no session, and the next
//! request starts an empty one. So a logout sticks, however the requests interleave. It is
//! what session-tower does when tower-sessions' `save` finds the session gone: the request
//! succeeds, its session writes are dropped (logged at `warn`). An error instead would keep
//! the logout just as sticky, but turn a request whose only fault was racing a logout or an
//! expiry into an opaque 500.
//!
//! ## What actix-session's trait cannot say
//! - **No versions.** `update` receives the whole state with no version from the `load`, so
//!   it is last writer wins: two concurrent requests changing different keys of one session
//!   lose one change (our `PutMode::IfVersion` / `SessionStoreExt::update` exist for this;
//!   call them through [`ActixStore::store`] where it matters).
//! - **`renew` is `delete` then `save`**, two calls, not our atomic `rotate`, and `save` is a
//!   `Create` of whatever state the request holds. A `renew` of a logged-in session racing
//!   "log out everywhere" (loaded before it, renewed after it) stores that state under the new
//!   key: the user stays logged in on that one device. The adapter cannot tell that `save`
//!   from a login. Call `renew` at login (where creating is the point), not on every request.
//! - **A dropped `update` looks like success.** The trait has no "gone" outcome other than an
//!   error; see above. At login call `renew()`: it goes through `save`, so the login is stored
//!   whatever happened to the old session.
//! - **`update_ttl`'s `ttl` is not passed to the store.** Our `refresh` re-arms the idle
//!   timeout the session was stored with. Under `SessionMiddleware` that is the same value
//!   (it passes its one configured TTL to every call); a session written elsewhere (by the
//!   existing service, or `SessionStoreExt::create`) keeps the idle timeout it has in the
//!   store until its first change through actix.
//! - **`LoadError::Deserialization` keeps the key.** For a corrupt record actix-session goes
//!   on with an empty state under the same key; a change is then an `IfLive` put that replaces
//!   the record if the store still counts it live, or is dropped.
//!
//! ## Limitations
//! - The store's absolute lifetime (`SESSION_ABSOLUTE_TTL`) still applies and may end a
//!   session before its TTL; the store's default `SESSION_TTL` does not (actix-session's TTL
//!   decides, one day by default).
//! - Cookies: `SessionMiddleware` encrypts (default) or signs the key with its `Key`, so the
//!   cookie is not the bare token the existing service sets. Both read the same data (same
//!   store, same format, same token as the store key), but a cookie of one is not a cookie of
//!   the other; and a token alone, without the `Key`, opens nothing here.
#![deny(missing_docs)]

mod convert;
mod key;
mod store;

pub use store::{ActixStore, SAVE_ATTEMPTS};
