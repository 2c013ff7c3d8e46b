//! The demo's main job on actix-web 4 + actix-session 0.11: `cargo run -p session-demo --bin
//! session-demo-actix` (see `src/bin/actix.rs`).
//!
//! Sessions go through [`session_actix::ActixStore`] over the same store the axum demo uses
//! (`SESSION_BACKEND`, …), in the same shape: `"user"` (the profile of [`crate::users`]),
//! `"csrf_token"`, `"created"`, `"login_at"`. On one Redis both demos therefore see the same
//! sessions: a login on either is listed by `list_user` (the axum admin page), and the axum
//! demo's "log out everywhere" (`delete_user`) ends the actix sessions too. The cookies differ
//! (`demo_actix_session` is the token encrypted by actix-session with its `Key`), so a browser
//! logs in on each app separately.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | login form, or the current user and how many live sessions they have (`list_user`, both apps) |
//! | `POST /login` | check CSRF and password; `renew` the session id; store the user |
//! | `POST /logout` | check CSRF; `purge` the session |

use std::sync::Arc;
use std::time::Duration;

use crate::routes::{CsrfForm, LoginForm};
use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{time, Key};
use actix_web::http::header::{self, ContentType};
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpResponse};
use maud::{html, Markup, DOCTYPE};
use serde_json::{json, Value};
use session_actix::ActixStore;
use session_store::{user_of, Clock, SessionData, SessionStore, SystemClock};

use crate::state::SessionUser;
use crate::{csrf, users};

/// Default listening address of the actix demo (`DEMO_ACTIX_ADDR`).
pub const DEFAULT_ACTIX_ADDR: &str = "127.0.0.1:3001";
/// The actix demo's cookie: not the axum demo's `demo_session` (same host, other content).
pub const COOKIE_NAME: &str = "demo_actix_session";

/// What the actix handlers share: the store, the user keys it indexes by, cookie settings.
#[derive(Debug, Clone)]
pub struct ActixDemo {
    store: Arc<dyn SessionStore>,
    user_keys: Vec<String>,
    idle_timeout: Duration,
    secure_cookie: bool,
}

impl ActixDemo {
    /// The demo over `store`; `session` must be the configuration the store was built with
    /// (`idle_timeout` becomes actix-session's state TTL, `user_keys` find the user).
    pub fn new(
        store: Arc<dyn SessionStore>,
        session: &session_store::SessionConfig,
        secure_cookie: bool,
    ) -> Self {
        ActixDemo {
            store,
            user_keys: session.user_keys.clone(),
            idle_timeout: session.idle_timeout,
            secure_cookie,
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// actix-session's middleware over [`ActixStore`]: cookie [`COOKIE_NAME`], encrypted with
    /// `key`, `HttpOnly`, `SameSite=Lax`, `Secure` when configured, a browser-session cookie
    /// with the store's idle timeout as state TTL.
    pub fn middleware(&self, key: Key) -> SessionMiddleware<ActixStore> {
        let ttl = time::Duration::try_from(self.idle_timeout).unwrap_or(time::Duration::DAY);
        SessionMiddleware::builder(ActixStore::new(self.store.clone()), key)
            .cookie_name(COOKIE_NAME.into())
            .cookie_secure(self.secure_cookie)
            .cookie_http_only(true)
            .cookie_same_site(actix_web::cookie::SameSite::Lax)
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(BrowserSession::default().state_ttl(ttl))
            .build()
    }

    /// The routes, with this state as app data; wrap the app in [`Self::middleware`]:
    ///
    /// ```no_run
    /// # fn demo(demo: session_demo::actix::ActixDemo, key: actix_web::cookie::Key) {
    /// let app = actix_web::App::new()
    ///     .wrap(demo.middleware(key))
    ///     .configure(demo.routes());
    /// # }
    /// ```
    pub fn routes(self) -> impl FnOnce(&mut web::ServiceConfig) {
        move |cfg| {
            cfg.app_data(web::Data::new(self)).service(
                web::scope("")
                    .wrap(security_headers())
                    .route("/", web::get().to(home))
                    .route("/login", web::post().to(login))
                    .route("/login", web::get().to(to_home))
                    .route("/logout", web::post().to(logout)),
            );
        }
    }
}

/// Same headers as the axum demo: no caching, no framing, no scripts.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
}

type Handled = actix_web::Result<HttpResponse>;

/// The session's data as the store holds it (each actix value is JSON text).
fn data_of(session: &Session) -> SessionData {
    session
        .entries()
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::from_str(v).unwrap_or(Value::Null)))
        .collect()
}

fn current_user(session: &Session) -> Option<SessionUser> {
    session.get::<SessionUser>("user").ok().flatten()
}

/// The session's CSRF token; a session without one (new, or written by another tool) gets
/// one, with `created` for a new session, as the axum demo's fresh sessions have.
fn ensure_csrf(session: &Session) -> actix_web::Result<String> {
    if let Some(token) = session.get::<String>(csrf::SESSION_KEY).ok().flatten() {
        return Ok(token);
    }
    let token = csrf::generate();
    session.insert(csrf::SESSION_KEY, &token)?;
    if session.get::<Value>("created").ok().flatten().is_none() {
        session.insert("created", SystemClock.now().as_unix_seconds_f64())?;
    }
    Ok(token)
}

fn checked(session: &Session, submitted: Option<&str>) -> bool {
    let expected = session.get::<String>(csrf::SESSION_KEY).ok().flatten();
    csrf::matches(expected.as_deref(), submitted)
}

fn page(status: actix_web::http::StatusCode, body: Markup) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "session-demo on actix-web" } }
            body style="font-family: sans-serif; max-width: 40em; margin: 2em auto" {
                h1 { "session-demo on actix-web" }
                (body)
            }
        }
    };
    HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(markup.into_string())
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

async fn to_home() -> HttpResponse {
    redirect("/")
}

fn stale_form() -> HttpResponse {
    page(
        actix_web::http::StatusCode::FORBIDDEN,
        html! { p { "Missing or invalid CSRF token: this request was refused. Go back to "
        a href="/" { "the start page" } " and try again." } },
    )
}

fn login_form(csrf: &str, refused: bool) -> Markup {
    html! {
        @if refused { p role="alert" { "Wrong user name or password." } }
        form method="post" action="/login" {
            input type="hidden" name=(csrf::FORM_FIELD) value=(csrf);
            p { label { "User " input name="username" autocomplete="username"; } }
            p { label { "Password " input name="password" type="password" autocomplete="current-password"; } }
            p { button type="submit" { "Log in" } }
        }
        p { "Demo users: " @for (i, (name, _)) in users::DEMO_CREDENTIALS.iter().enumerate() {
            @if i > 0 { ", " } code { (name) } } " (passwords as printed at startup)." }
    }
}

async fn home(demo: web::Data<ActixDemo>, session: Session) -> Handled {
    let csrf = ensure_csrf(&session)?;
    let Some(user) = current_user(&session) else {
        return Ok(page(
            actix_web::http::StatusCode::OK,
            login_form(&csrf, false),
        ));
    };
    let key = user_of(&data_of(&session), &demo.user_keys);
    let live = match &key {
        Some(key) => Some(
            demo.store
                .list_user(key)
                .await
                .map_err(actix_web::error::ErrorServiceUnavailable)?
                .len(),
        ),
        None => None,
    };
    Ok(page(
        actix_web::http::StatusCode::OK,
        html! {
            p { "Logged in as " strong { (user.username) } " (" (user.email) ", role " (user.role) ")." }
            @if let Some(live) = live {
                p { (user.username) " has " strong { (live) } " live session(s) in the "
                    (demo.store.backend()) " store, on either demo." }
            }
            form method="post" action="/logout" {
                input type="hidden" name=(csrf::FORM_FIELD) value=(csrf);
                button type="submit" { "Log out" }
            }
        },
    ))
}

async fn login(session: Session, form: Option<web::Form<LoginForm>>) -> Handled {
    let LoginForm {
        username,
        password,
        csrf_token,
    } = form.map(web::Form::into_inner).unwrap_or_default();
    if !checked(&session, csrf_token.as_deref()) {
        return Ok(stale_form());
    }
    let user = web::block(move || users::verify(&username, &password)).await?;
    let Some(user) = user else {
        let csrf = ensure_csrf(&session)?;
        return Ok(page(
            actix_web::http::StatusCode::UNAUTHORIZED,
            login_form(&csrf, true),
        ));
    };
    // Against session fixation: a fresh id at login (actix-session `delete`s the old one
    // and `save`s the state under a new key).
    session.renew();
    session.insert("user", user.profile())?;
    session.insert(csrf::SESSION_KEY, csrf::generate())?;
    session.insert("login_at", json!(SystemClock.now().as_unix_seconds_f64()))?;
    tracing::info!(user = user.username, "logged in (actix)");
    Ok(redirect("/"))
}

async fn logout(session: Session, form: Option<web::Form<CsrfForm>>) -> Handled {
    let submitted = form.and_then(|f| f.into_inner().csrf_token);
    if !checked(&session, submitted.as_deref()) {
        return Ok(stale_form());
    }
    session.purge();
    Ok(redirect("/"))
}
