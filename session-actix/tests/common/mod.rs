//! Shared by the integration tests: one fixture per backend, an actix-web app under
//! actix-session's own `SessionMiddleware`, a client that drives it in process, and a store
//! wrapper that counts what reaches the store.
//!
//! In process (`actix_web::test::call_service`), not over a socket: the request still goes
//! through the whole middleware stack (cookie decryption, session loading, saving,
//! Set-Cookie), while the tests need no port and read every header exactly as sent.
#![allow(dead_code)] // each test file uses a different part

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_session::config::{BrowserSession, PersistentSession, TtlExtensionPolicy};
use actix_session::storage::SessionKey;
use actix_session::{Session, SessionMiddleware};
use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, CookieJar, Key};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};
use async_trait::async_trait;
use redis_harness::timeshift::TimeShifted;
use redis_harness::RedisServer;
use serde_json::{json, Value};
use session_actix::ActixStore;
use session_core::{
    Capabilities, CleanupReport, Clock as _, Error, ManualClock, PutMode, Result, ScanCursor,
    ScanPage, Session as StoredSession, SessionConfig, SessionData, SessionId, SessionStore,
    SessionSummary, WriteOptions,
};
use session_memory::MemoryStore;
use session_migrate::MigratingStore;
use session_redis::{RedisConfig, RedisStore};

/// The middleware's cookie name (actix-session's default).
pub const COOKIE: &str = "id";

/// A store for one test, its manual clock, the Redis server it lives on (if any), and the
/// middleware's key.
pub struct Fixture {
    /// The backend, as the test sees it (no counting).
    pub store: Arc<dyn SessionStore>,
    /// What the app's adapter calls: `store`, counted.
    pub counted: Arc<CountingStore>,
    pub clock: ManualClock,
    /// Held so the server lives as long as the test; read for raw TTL checks.
    pub redis: Option<(RedisServer, String)>,
    /// The middleware's cookie key.
    pub key: Key,
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
        "actix-{}:",
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
    fn new(
        store: Arc<dyn SessionStore>,
        clock: ManualClock,
        redis: Option<(RedisServer, String)>,
    ) -> Self {
        Fixture {
            counted: Arc::new(CountingStore::new(store.clone())),
            store,
            clock,
            redis,
            key: Key::generate(),
        }
    }

    /// The in-process memory store.
    pub async fn memory() -> Self {
        let clock = ManualClock::starting_now();
        let store = MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build();
        Self::new(Arc::new(store), clock, None)
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
        Self::new(store, clock, Some((server, prefix)))
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
        let store = Arc::new(MigratingStore::new(Arc::new(old), new));
        Self::new(store, clock, Some((server, prefix)))
    }

    /// The adapter the app uses: over the counted store.
    pub fn actix(&self) -> ActixStore {
        ActixStore::new(self.counted.clone())
    }

    /// The test app under `SessionMiddleware` with this lifecycle, ready for requests.
    pub async fn app(
        &self,
        lifecycle: Lifecycle,
    ) -> impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    > {
        let builder = SessionMiddleware::builder(self.actix(), self.key.clone());
        let builder = match lifecycle {
            Lifecycle::Default => builder,
            Lifecycle::Browser(ttl) => builder
                .session_lifecycle(BrowserSession::default().state_ttl(ttl.try_into().unwrap())),
            Lifecycle::Persistent(ttl) => builder.session_lifecycle(
                PersistentSession::default().session_ttl(ttl.try_into().unwrap()),
            ),
            Lifecycle::PersistentSliding(ttl) => builder.session_lifecycle(
                PersistentSession::default()
                    .session_ttl(ttl.try_into().unwrap())
                    .session_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
            ),
        };
        let app = App::new()
            .app_data(web::Data::new(self.store.clone()))
            .wrap(builder.build());
        test::init_service(routes(app)).await
    }

    /// The key (token) an encrypted session cookie carries, decrypted with the app's key.
    pub fn key_in(&self, cookie_value: &str) -> String {
        let mut jar = CookieJar::new();
        jar.add_original(Cookie::new(COOKIE, cookie_value.to_owned()));
        let decrypted = jar
            .private(&self.key)
            .get(COOKIE)
            .expect("a cookie of ours");
        decrypted.value().to_owned()
    }

    /// The store id behind a session cookie's value.
    pub fn sid(&self, cookie_value: &str) -> SessionId {
        let key = SessionKey::try_from(self.key_in(cookie_value)).unwrap();
        ActixStore::session_id(&key).expect("a well-formed session id")
    }

    /// An encrypted cookie value carrying `key`, as the middleware would set it with `with`.
    pub fn forge(with: &Key, key: &str) -> String {
        let mut jar = CookieJar::new();
        jar.private_mut(with)
            .add(Cookie::new(COOKIE, key.to_owned()));
        jar.get(COOKIE).unwrap().value().to_owned()
    }

    /// Whether a live session is stored under the cookie's id.
    pub async fn is_stored(&self, cookie_value: &str) -> bool {
        self.store.exists(&self.sid(cookie_value)).await.unwrap()
    }

    /// The stored session behind the cookie.
    pub async fn stored(&self, cookie_value: &str) -> Option<StoredSession> {
        self.store.load(&self.sid(cookie_value)).await.unwrap()
    }

    /// Time the store will keep the cookie's session, by the store's clock.
    pub async fn store_ttl(&self, cookie_value: &str) -> Duration {
        let session = self.stored(cookie_value).await.expect("session stored");
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
        if ms == -2 {
            // Not in Redis (yet): a MigratingStore keeps sessions it has not moved in memory.
            return None;
        }
        assert!(ms > 0, "key has no TTL: PTTL={ms}");
        Some(Duration::from_millis(ms as u64))
    }
}

/// How the middleware is configured.
#[derive(Debug, Clone, Copy)]
pub enum Lifecycle {
    /// `SessionMiddleware::new`: browser-session cookie, state TTL one day.
    Default,
    /// `BrowserSession` with this state TTL: no `Max-Age` on the cookie.
    Browser(Duration),
    /// `PersistentSession` with this TTL (cookie `Max-Age` and store TTL), extended on state
    /// changes only (actix-session's default policy).
    Persistent(Duration),
    /// `PersistentSession` extended on every request (`update_ttl` on reads).
    PersistentSliding(Duration),
}

fn routes<T>(app: App<T>) -> App<T>
where
    T: actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Error = actix_web::Error,
        InitError = (),
    >,
{
    app.route("/", web::get().to(|| async { "hello" }))
        .route(
            "/insert",
            web::get().to(|session: Session| async move {
                session.insert("foo", 42)?;
                Ok::<_, actix_web::Error>(HttpResponse::Ok().finish())
            }),
        )
        .route(
            "/get",
            web::get().to(|session: Session| async move {
                Ok::<_, actix_web::Error>(format!("{:?}", session.get::<u64>("foo")?))
            }),
        )
        .route(
            "/remove",
            web::get().to(|session: Session| async move {
                session.remove("foo");
                HttpResponse::Ok().finish()
            }),
        )
        .route(
            "/login/{user}",
            web::get().to(|session: Session, user: web::Path<String>| async move {
                // A fresh id at login (against fixation), then the user.
                session.renew();
                session.insert("user", json!({ "sub": *user, "username": *user }))?;
                Ok::<_, actix_web::Error>(HttpResponse::Ok().finish())
            }),
        )
        .route("/whoami", web::get().to(whoami))
        .route(
            "/logout",
            web::get().to(|session: Session| async move {
                session.purge();
                HttpResponse::Ok().finish()
            }),
        )
        .route(
            "/renew",
            web::get().to(|session: Session| async move {
                session.renew();
                HttpResponse::Ok().finish()
            }),
        )
        .route(
            // A request that loaded the session, is overtaken by "log out everywhere" (here
            // inside the handler, so the order is certain), then writes: the write must not
            // bring the session back.
            "/overtaken_by_logout_everywhere",
            web::get().to(
                |session: Session, store: web::Data<Arc<dyn SessionStore>>| async move {
                    let user: Value = session.get("user")?.expect("a logged-in session");
                    let sub = user["sub"].as_str().unwrap();
                    let ended = store.delete_user(sub).await.unwrap();
                    assert_eq!(ended, 1);
                    session.insert("foo", 7)?;
                    Ok::<_, actix_web::Error>(HttpResponse::Ok().finish())
                },
            ),
        )
        .route(
            "/insert_reserved",
            web::get().to(|session: Session| async move {
                session.insert("__session__", 1)?;
                Ok::<_, actix_web::Error>(HttpResponse::Ok().finish())
            }),
        )
        .route(
            "/entries",
            web::get().to(|session: Session| async move {
                // The state as actix-session holds it: key → JSON text, in key order.
                let entries = session.entries();
                let mut pairs: Vec<_> = entries.iter().collect();
                pairs.sort();
                let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                body.join("\n")
            }),
        )
}

async fn whoami(session: Session) -> actix_web::Result<String> {
    let user: Option<Value> = session.get("user")?;
    Ok(match user {
        Some(user) => user["sub"].as_str().unwrap_or("?").to_owned(),
        None => "anonymous".to_owned(),
    })
}

/// What a response said.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// The session cookie set, if any.
    pub cookie: Option<Cookie<'static>>,
    pub body: String,
    /// The service error behind a failed response, as the server would log it.
    pub error: Option<String>,
}

impl Reply {
    /// The value of the session cookie set by this response.
    pub fn cookie_value(&self) -> String {
        match &self.cookie {
            Some(cookie) => cookie.value().to_owned(),
            None => panic!("no Set-Cookie header in {self:?}"),
        }
    }
}

/// Sends `GET uri` with the session cookie `id=<cookie>` if given.
pub async fn send<S, B>(app: &S, uri: &str, cookie: Option<&str>) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut req = test::TestRequest::get().uri(uri);
    if let Some(value) = cookie {
        req = req.cookie(Cookie::new(COOKIE, value.to_owned()));
    }
    let res = match test::try_call_service(app, req.to_request()).await {
        Ok(res) => res,
        // What actix-web's server makes of a service error: its response (and the error, as
        // the server would log it).
        Err(err) => {
            let logged = format!("{err:?} / {err}");
            let res = err.error_response();
            let status = res.status();
            assert!(res.cookies().next().is_none());
            let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
            return Reply {
                status,
                cookie: None,
                body: String::from_utf8(body.to_vec()).unwrap(),
                error: Some(logged),
            };
        }
    };
    let status = res.status();
    let mut cookies: Vec<Cookie<'static>> =
        res.response().cookies().map(|c| c.into_owned()).collect();
    assert!(cookies.len() <= 1, "more than one Set-Cookie: {cookies:?}");
    let cookie = cookies.pop();
    if let Some(c) = &cookie {
        assert_eq!(c.name(), COOKIE);
    }
    let body = test::read_body(res).await;
    Reply {
        status,
        cookie,
        body: String::from_utf8(body.to_vec()).unwrap(),
        error: None,
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

/// Passes every call through to a store, counting the calls, and how the adapter's updates
/// (its `IfLive` puts) ended: replacing the live session, or finding it gone.
pub struct CountingStore {
    inner: Arc<dyn SessionStore>,
    /// Every call that reached the store.
    pub calls: AtomicU64,
    /// `IfLive` puts that replaced a live session.
    pub landed: AtomicU64,
    /// `IfLive` puts that found the session gone.
    pub dropped: AtomicU64,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn SessionStore>) -> Self {
        CountingStore {
            inner,
            calls: AtomicU64::new(0),
            landed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn call(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SessionStore for CountingStore {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn load(&self, id: &SessionId) -> Result<Option<StoredSession>> {
        self.call();
        self.inner.load(id).await
    }

    async fn put(
        &self,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<StoredSession> {
        self.call();
        let result = self.inner.put(id, data, mode, options).await;
        if mode == PutMode::IfLive {
            match &result {
                Ok(_) => _ = self.landed.fetch_add(1, Ordering::Relaxed),
                Err(Error::NotFound) => _ = self.dropped.fetch_add(1, Ordering::Relaxed),
                Err(_) => {}
            }
        }
        result
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        self.call();
        self.inner.delete(id).await
    }

    async fn exists(&self, id: &SessionId) -> Result<bool> {
        self.call();
        self.inner.exists(id).await
    }

    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        self.call();
        self.inner.refresh(id).await
    }

    async fn rotate(&self, id: &SessionId) -> Result<Option<StoredSession>> {
        self.call();
        self.inner.rotate(id).await
    }

    async fn count(&self) -> Result<u64> {
        self.call();
        self.inner.count().await
    }

    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>> {
        self.call();
        self.inner.list_user(user).await
    }

    async fn delete_user(&self, user: &str) -> Result<u64> {
        self.call();
        self.inner.delete_user(user).await
    }

    async fn cleanup(&self) -> Result<CleanupReport> {
        self.call();
        self.inner.cleanup().await
    }

    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        self.call();
        self.inner.scan(cursor, limit).await
    }
}
