//! Shared by the integration tests: one fixture per backend (the stores themselves, and the
//! wrapper that counts what reaches them, come from `adapter-testkit`, shared with
//! session-tower), an actix-web app under actix-session's own `SessionMiddleware`, and a
//! client that drives it in process.
//!
//! In process (`actix_web::test::call_service`), not over a socket: the request still goes
//! through the whole middleware stack (cookie decryption, session loading, saving,
//! Set-Cookie), while the tests need no port and read every header exactly as sent.
#![allow(dead_code)] // each test file uses a different part

use std::ops::{Deref, DerefMut};
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
#[allow(unused_imports)] // not every test file uses it
pub use adapter_testkit::assert_near;
use adapter_testkit::{Backend, CountingStore, Kind};
use serde_json::{json, Value};
use session_actix::ActixStore;
use session_core::{Session as StoredSession, SessionId, SessionStore};

/// The middleware's cookie name (actix-session's default).
pub const COOKIE: &str = "id";

/// A store for one test (see [`Backend`], which it derefs to), what the app's adapter calls
/// (the store, counted), and the middleware's key.
pub struct Fixture {
    base: Backend,
    /// What the app's adapter calls: `store`, counted.
    pub counted: Arc<CountingStore>,
    /// The middleware's cookie key.
    pub key: Key,
}

impl Deref for Fixture {
    type Target = Backend;

    fn deref(&self) -> &Backend {
        &self.base
    }
}

impl DerefMut for Fixture {
    fn deref_mut(&mut self) -> &mut Backend {
        &mut self.base
    }
}

impl Fixture {
    /// A fresh store of `kind` (Redis keys under `actix-<random>:`).
    pub async fn start(kind: Kind) -> Self {
        let base = Backend::start(kind, "actix").await;
        Fixture {
            counted: Arc::new(CountingStore::new(base.store.clone())),
            base,
            key: Key::generate(),
        }
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
        self.is_stored_id(&self.sid(cookie_value)).await
    }

    /// The stored session behind the cookie.
    pub async fn stored(&self, cookie_value: &str) -> Option<StoredSession> {
        self.stored_id(&self.sid(cookie_value)).await
    }

    /// Time the store will keep the cookie's session, by the store's clock.
    pub async fn store_ttl(&self, cookie_value: &str) -> Duration {
        self.store_ttl_id(&self.sid(cookie_value)).await
    }

    /// The Redis key's own TTL, when the session lives in Redis (plain key mode).
    pub fn redis_pttl(&self, cookie_value: &str) -> Option<Duration> {
        let ms = self.redis_pttl_ms(&self.sid(cookie_value))?;
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
