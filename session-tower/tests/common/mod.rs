//! Shared by the integration tests: one fixture per backend (the stores themselves come from
//! `adapter-testkit`, shared with session-actix), an axum app under tower-sessions'
//! own `SessionManagerLayer`, and a client that drives it in process.
//!
//! In process (`tower::ServiceExt::oneshot`), not over a socket: the request still goes through
//! the whole middleware stack (cookie parsing, session loading, saving, Set-Cookie), while the
//! tests need no port, cannot race a listener, and read every header exactly as sent. The
//! network path belongs to axum and hyper, not to this adapter.
#![allow(dead_code)] // each test file uses a different part

use std::ops::{Deref, DerefMut};
use std::time::Duration;

#[allow(unused_imports)] // not every test file uses it
pub use adapter_testkit::assert_near;
use adapter_testkit::{Backend, Kind};
use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt as _;
use session_core::SessionId;
use session_tower::TowerStore;
use tower::ServiceExt as _;
use tower_sessions::cookie::Cookie;
use tower_sessions::session::Id;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

/// A store for one test (see [`Backend`]), with the adapter and app over it.
pub struct Fixture(Backend);

impl Deref for Fixture {
    type Target = Backend;

    fn deref(&self) -> &Backend {
        &self.0
    }
}

impl DerefMut for Fixture {
    fn deref_mut(&mut self) -> &mut Backend {
        &mut self.0
    }
}

impl Fixture {
    /// A fresh store of `kind` (Redis keys under `tower-<random>:`).
    pub async fn start(kind: Kind) -> Self {
        Fixture(Backend::start(kind, "tower").await)
    }

    /// The adapter over this store.
    pub fn tower(&self) -> TowerStore {
        TowerStore::new(self.store.clone())
    }

    /// The test app under `SessionManagerLayer`, with `expiry` if given.
    pub fn app(&self, expiry: Option<Expiry>) -> Router {
        let mut layer = SessionManagerLayer::new(self.tower()).with_secure(true);
        if let Some(expiry) = expiry {
            layer = layer.with_expiry(expiry);
        }
        routes().layer(layer)
    }

    /// The store id behind a session cookie's value.
    pub fn sid(&self, cookie_value: &str) -> SessionId {
        TowerStore::session_id(&cookie_value.parse::<Id>().expect("a tower-sessions id"))
    }

    /// Whether a live session is stored under the cookie's id.
    pub async fn is_stored(&self, cookie_value: &str) -> bool {
        self.is_stored_id(&self.sid(cookie_value)).await
    }

    /// Time the store will keep the cookie's session, by the store's clock.
    pub async fn store_ttl(&self, cookie_value: &str) -> Duration {
        self.store_ttl_id(&self.sid(cookie_value)).await
    }

    /// The Redis key's own TTL, when the session lives in Redis (plain key mode).
    pub fn redis_pttl(&self, cookie_value: &str) -> Option<Duration> {
        let ms = self.redis_pttl_ms(&self.sid(cookie_value))?;
        assert!(ms > 0, "key has no TTL or is missing: PTTL={ms}");
        Some(Duration::from_millis(ms as u64))
    }
}

fn routes() -> Router {
    Router::new()
        .route("/", get(|_: Session| async move { "hello" }))
        .route(
            "/insert",
            get(|session: Session| async move { session.insert("foo", 42).await.unwrap() }),
        )
        .route(
            "/get",
            get(|session: Session| async move {
                format!("{:?}", session.get::<u64>("foo").await.unwrap())
            }),
        )
        .route(
            "/remove",
            get(|session: Session| async move {
                session.remove::<u64>("foo").await.unwrap();
            }),
        )
        .route(
            "/cycle_id",
            get(|session: Session| async move { session.cycle_id().await.unwrap() }),
        )
        .route(
            "/flush",
            get(|session: Session| async move { session.flush().await.unwrap() }),
        )
        .route(
            "/set_expiry",
            get(|session: Session| async move {
                let at = time::OffsetDateTime::now_utc() + time::Duration::days(1);
                session.set_expiry(Some(Expiry::AtDateTime(at)));
            }),
        )
        .route(
            "/remove_expiry",
            get(|session: Session| async move { session.set_expiry(Some(Expiry::OnSessionEnd)) }),
        )
        .route(
            "/clear_insert",
            get(|session: Session| async move {
                session.clear().await;
                session.insert("foo", 7).await.unwrap();
            }),
        )
        .route(
            "/insert_reserved",
            get(|session: Session| async move {
                session.insert("__session__", 1).await.unwrap();
            }),
        )
}

/// What a response said.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// The one `Set-Cookie`, if any.
    pub cookie: Option<Cookie<'static>>,
    pub body: String,
}

impl Reply {
    /// The value of the session cookie set by this response.
    pub fn cookie_value(&self) -> String {
        self.cookie
            .as_ref()
            .expect("a Set-Cookie header")
            .value()
            .to_owned()
    }
}

/// Sends `GET uri` with `id=<cookie>` if given.
pub async fn send(app: &Router, uri: &str, cookie: Option<&str>) -> Reply {
    let mut req = Request::get(uri);
    if let Some(value) = cookie {
        req = req.header(header::COOKIE, format!("id={value}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let mut set_cookies = res.headers().get_all(header::SET_COOKIE).iter();
    let cookie = set_cookies
        .next()
        .map(|h| Cookie::parse(h.to_str().unwrap().to_owned()).unwrap());
    assert!(set_cookies.next().is_none(), "more than one Set-Cookie");
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        cookie,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}
