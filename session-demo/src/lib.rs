//! # session-demo: a small web service on the session store
//!
//! A login demo modelled on the existing ops back end: sessions are JSON objects with
//! `"user"` (`username`, `email`, `role`, `sub`, `preferred_username`), `"csrf_token"` and
//! `"created"`, kept in whichever store `SESSION_BACKEND` names (memory by default, `redis`,
//! `sentinel`). Run it with `cargo run -p session-demo`; the routes are listed in [`routes`],
//! the settings in [`DemoConfig`] and `session_store::BackendConfig`, the users in [`users`].
//!
//! What it shows:
//! - **Cookie** `demo_session` = the [`SessionId`](session_store::SessionId) token,
//!   `HttpOnly; SameSite=Lax; Path=/`, `Secure` with `DEMO_SECURE_COOKIE=1`. A cookie whose id
//!   is malformed, unknown or expired is never adopted: the request gets a fresh session
//!   under a freshly minted id.
//! - **CSRF**: a token per session, required in every POST form (login, logout, log out
//!   everywhere); without it, or with a wrong one, the answer is a 403 page.
//! - **Login** rotates the session id (`rotate`), **logout** deletes the session, **log out
//!   everywhere** is `delete_user` for the user key `SESSION_USER_KEYS` picks (default
//!   `user.sub`, then `user.username`).
//! - **Admin page** (role `admin`): live session `count`, a chart of live sessions and logins
//!   per minute over the last hour (inline SVG drawn on the server, see [`chart`]), one row per
//!   user with live sessions (see [`analytics`]), and your sessions from `list_user` (handles
//!   and lifetimes, never tokens) (see [`admin`]).
//! - **Metrics**: the binary meters its store (`session_store::metered`), installs the
//!   Prometheus recorder and serves `GET /metrics` (see [`metrics`]); a periodic cleanup
//!   (`DEMO_CLEANUP_SECONDS`) purges expired sessions and sets the live-sessions gauge.
//!
//! The app can also run in-process, on any store:
//!
//! ```
//! use std::sync::Arc;
//! use axum::body::Body;
//! use axum::http::{header, Request, StatusCode};
//! use session_demo::{app, AppState, DemoConfig};
//! use session_store::{memory::MemoryStore, SessionConfig, SessionStore};
//! use tower::ServiceExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
//! let state = AppState::new(store.clone(), &SessionConfig::default(), DemoConfig::default());
//! let response = app(state)
//!     .oneshot(Request::get("/").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! // The first visit gets a fresh anonymous session (holding its CSRF token) and its cookie.
//! assert!(response.headers()[header::SET_COOKIE].to_str().unwrap().contains("HttpOnly"));
//! assert_eq!(store.count().await.unwrap(), 1);
//! # }
//! ```
#![deny(missing_docs)]

pub mod actix;
pub mod admin;
pub mod analytics;
pub mod chart;
pub mod config;
pub mod cookies;
pub mod csrf;
mod error;
pub mod metrics;
mod pages;
pub mod routes;
mod server;
pub mod state;
pub mod users;

pub use config::DemoConfig;
pub use error::AppError;
pub use routes::router as app;
pub use server::{connect, run_from_env, serve, shutdown_signal, ServeError};
pub use state::AppState;
