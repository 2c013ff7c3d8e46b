//! Shared by the integration tests: one fixture per backend, an axum app under tower-sessions'
//! own `SessionManagerLayer`, and a client that drives it in process.
//!
//! In process (`tower::ServiceExt::oneshot`), not over a socket: the request still goes through
//! the whole middleware stack (cookie parsing, session loading, saving, Set-Cookie), while the
//! tests need no port, cannot race a listener, and read every header exactly as sent. The
//! network path belongs to axum and hyper, not to this adapter.
#![allow(dead_code)] // each test file uses a different part

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt as _;
use redis_harness::timeshift::TimeShifted;
use redis_harness::RedisServer;
use session_core::{Clock as _, ManualClock, SessionConfig, SessionId, SessionStore};
use session_memory::MemoryStore;
use session_migrate::MigratingStore;
use session_redis::{RedisConfig, RedisStore};
use session_tower::TowerStore;
use tower::ServiceExt as _;
use tower_sessions::cookie::Cookie;
use tower_sessions::session::Id;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

/// A store for one test, its manual clock, and the Redis server it lives on (if any).
pub struct Fixture {
    pub store: Arc<dyn SessionStore>,
    pub clock: ManualClock,
    /// Held so the server lives as long as the test; read for raw TTL checks.
    pub redis: Option<(RedisServer, String)>,
}

/// How long the fixtures' Redis stores wait for an answer: short, so that a test of an outage
/// fails fast.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// The same for the race tests, which keep dozens of requests in flight, maybe on a busy
/// machine: a slow answer there is no failure, only a hung server is.
const PATIENT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings for a store on `server` under a fresh random key prefix.
fn redis_config(server: &RedisServer, response_timeout: Duration) -> (RedisConfig, String) {
    let prefix = format!(
        "tower-{}:",
        &SessionId::generate().handle().fingerprint()[4..]
    );
    let session = SessionConfig {
        key_prefix: prefix.clone(),
        ..SessionConfig::default()
    };
    let config = RedisConfig {
        port: server.port(),
        connect_timeout: Duration::from_millis(500),
        response_timeout,
        session,
        ..RedisConfig::default()
    };
    (config, prefix)
}

/// A store on `server` whose TTLs follow `clock`'s jumps (Redis's own clock decides
/// liveness, and cannot be moved: the harness moves the TTLs instead, see [`TimeShifted`]).
async fn redis_store(
    server: &RedisServer,
    clock: &ManualClock,
    response_timeout: Duration,
) -> (Arc<dyn SessionStore>, String) {
    let (config, prefix) = redis_config(server, response_timeout);
    let user_keys = config.session.user_keys.clone();
    let store = RedisStore::connect(config)
        .await
        .expect("connect to the test redis")
        .with_clock(Arc::new(clock.clone()));
    let con = server.async_connection().await;
    let shifted = TimeShifted::new(
        Arc::new(store),
        con,
        prefix.clone(),
        Arc::new(clock.clone()),
    )
    .with_user_keys(user_keys);
    (Arc::new(shifted), prefix)
}

impl Fixture {
    /// The in-process memory store.
    pub async fn memory() -> Self {
        let clock = ManualClock::starting_now();
        let store = MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build();
        Fixture {
            store: Arc::new(store),
            clock,
            redis: None,
        }
    }

    /// A RedisStore on a real redis-server of its own.
    pub async fn redis() -> Self {
        Self::redis_with(RESPONSE_TIMEOUT).await
    }

    /// [`Fixture::redis`] that waits for slow answers (see [`PATIENT_RESPONSE_TIMEOUT`]).
    pub async fn redis_patient() -> Self {
        Self::redis_with(PATIENT_RESPONSE_TIMEOUT).await
    }

    async fn redis_with(response_timeout: Duration) -> Self {
        let server = RedisServer::start();
        let clock = ManualClock::starting_now();
        let (store, prefix) = redis_store(&server, &clock, response_timeout).await;
        Fixture {
            store,
            clock,
            redis: Some((server, prefix)),
        }
    }

    /// A MigratingStore moving sessions from memory to a real Redis, as during a live cutover.
    pub async fn migrating() -> Self {
        Self::migrating_with(RESPONSE_TIMEOUT).await
    }

    /// [`Fixture::migrating`] that waits for slow answers (see [`PATIENT_RESPONSE_TIMEOUT`]).
    pub async fn migrating_patient() -> Self {
        Self::migrating_with(PATIENT_RESPONSE_TIMEOUT).await
    }

    async fn migrating_with(response_timeout: Duration) -> Self {
        let server = RedisServer::start();
        let clock = ManualClock::starting_now();
        let old = MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build();
        let (new, prefix) = redis_store(&server, &clock, response_timeout).await;
        Fixture {
            store: Arc::new(MigratingStore::new(Arc::new(old), new)),
            clock,
            redis: Some((server, prefix)),
        }
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
        self.store.exists(&self.sid(cookie_value)).await.unwrap()
    }

    /// Time the store will keep the cookie's session, by the store's clock.
    pub async fn store_ttl(&self, cookie_value: &str) -> Duration {
        let session = self.store.load(&self.sid(cookie_value)).await.unwrap();
        let session = session.expect("session stored");
        session.lifetime().remaining(self.clock.now())
    }

    /// The Redis key's own TTL, when the session lives in Redis (plain key mode).
    pub fn redis_pttl(&self, cookie_value: &str) -> Option<Duration> {
        let (server, prefix) = self.redis.as_ref()?;
        let key = format!("{prefix}{}", self.sid(cookie_value).expose_token());
        let ms: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query(&mut server.connection())
            .unwrap();
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

/// `actual` is within `slack` of `expected`.
pub fn assert_near(actual: Duration, expected: Duration, slack: Duration, what: &str) {
    let diff = actual.abs_diff(expected);
    assert!(
        diff <= slack,
        "{what}: {actual:?} is not within {slack:?} of {expected:?}"
    );
}
