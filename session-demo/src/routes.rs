//! The routes and their handlers.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | login form, or the current user and their session |
//! | `POST /login` | check CSRF and password; rotate the session id; store the user |
//! | `POST /logout` | check CSRF; delete the session; clear the cookie |
//! | `POST /logout-everywhere` | check CSRF; `delete_user` for the current user |
//! | `GET /admin` | role `admin` only: session count, the last hour's chart (live sessions, logins), users, your sessions (see [`crate::admin`]) |
//! | `GET /healthz` | `ok <backend>` when the store answers |
//! | `GET /metrics` | the store's metrics in the Prometheus text format (see [`crate::metrics`]); 404 when no recorder was installed |

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{middleware, Router};
use serde::Deserialize;
use serde_json::json;
use session_store::{Clock, Session, SessionStoreExt, SystemClock};

use crate::error::AppError;
use crate::pages::{self, Notice};
use crate::state::{csrf_token, AppState, SessionUser};
use crate::{admin, cookies, csrf, metrics, users};

type Handled = Result<Response, AppError>;

/// The demo's router over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login).get(|| async { Redirect::to("/") }))
        .route("/logout", post(logout))
        .route("/logout-everywhere", post(logout_everywhere))
        .route("/admin", get(admin_page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .fallback(not_found)
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

#[derive(Debug, Default, Deserialize)]
struct HomeQuery {
    notice: Option<String>,
    n: Option<u64>,
}

async fn home(
    State(state): State<AppState>,
    query: Result<Query<HomeQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Handled {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let notice = match query.notice.as_deref() {
        Some("logged-out") => Some(Notice::LoggedOut),
        Some("ended-all") => Some(Notice::EndedAll(query.n.unwrap_or(0))),
        _ => None,
    };
    let visit = state.page_session(&headers).await?;
    let csrf = csrf_token(&visit.session).unwrap_or_default();
    let page = pages::home(&visit.session, &csrf, notice, state.store().backend());
    Ok(with_cookie(page.into_response(), visit.set_cookie))
}

/// The login form's fields. Every field is optional so that a missing CSRF token is our 403,
/// not the extractor's 422.
/// No `Debug`: it holds a password. Shared with the actix-web demo.
#[derive(Default, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    pub(crate) username: String,
    #[serde(default)]
    pub(crate) password: String,
    pub(crate) csrf_token: Option<String>,
}

/// The other forms carry only the CSRF token.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf_token: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Handled {
    let LoginForm {
        username,
        password,
        csrf_token: submitted,
    } = form.map(|Form(f)| f).unwrap_or_default();
    let session = match checked_session(&state, &headers, submitted.as_deref()).await? {
        Ok(session) => session,
        Err(refused) => return Ok(refused),
    };
    let user = tokio::task::spawn_blocking(move || users::verify(&username, &password))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let Some(user) = user else {
        tracing::info!(session = %session.id(), "login refused");
        let csrf = csrf_token(&session).unwrap_or_default();
        return Ok((StatusCode::UNAUTHORIZED, pages::login_refused(&csrf)).into_response());
    };

    // Against session fixation: the authenticated session never lives under the id the
    // browser had before logging in.
    let store = state.store();
    let Some(rotated) = store.rotate(session.id()).await? else {
        return Ok(stale_form());
    };
    let profile = user.profile();
    let new_csrf = csrf::generate();
    let login_at = SystemClock.now().as_unix_seconds_f64();
    let logged_in = store
        .update(rotated.id(), |data| {
            data.insert("user".into(), profile.clone());
            data.insert(csrf::SESSION_KEY.into(), json!(new_csrf));
            data.insert("login_at".into(), json!(login_at));
        })
        .await?;
    let Some(logged_in) = logged_in else {
        return Ok(stale_form());
    };
    tracing::info!(user = user.username, from = %session.id(), session = %logged_in.id(), "logged in");
    let cookie = state.session_cookie(logged_in.id());
    Ok(with_cookie(Redirect::to("/").into_response(), Some(cookie)))
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Handled {
    let submitted = form.map(|Form(f)| f).unwrap_or_default().csrf_token;
    let session = match checked_session(&state, &headers, submitted.as_deref()).await? {
        Ok(session) => session,
        Err(refused) => return Ok(refused),
    };
    state.store().delete(session.id()).await?;
    tracing::info!(session = %session.id(), "logged out");
    let response = Redirect::to("/?notice=logged-out").into_response();
    Ok(with_cookie(response, Some(state.clear_cookie())))
}

async fn logout_everywhere(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Handled {
    let submitted = form.map(|Form(f)| f).unwrap_or_default().csrf_token;
    let session = match checked_session(&state, &headers, submitted.as_deref()).await? {
        Ok(session) => session,
        Err(refused) => return Ok(refused),
    };
    let key = SessionUser::of(&session).and_then(|_| state.user_key(session.data()));
    let Some(key) = key else {
        return Ok(Redirect::to("/").into_response());
    };
    let store = state.store();
    let ended = store.delete_user(&key).await?;
    // Normally among those just ended; deleting again is harmless and covers a session the
    // user index does not know (a user key outside SESSION_USER_KEYS).
    store.delete(session.id()).await?;
    tracing::info!(session = %session.id(), ended, "logged out everywhere");
    let response = Redirect::to(&format!("/?notice=ended-all&n={ended}")).into_response();
    Ok(with_cookie(response, Some(state.clear_cookie())))
}

async fn admin_page(State(state): State<AppState>, headers: HeaderMap) -> Handled {
    let Some(session) = state.existing_session(&headers).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    let Some(user) = SessionUser::of(&session) else {
        return Ok(Redirect::to("/").into_response());
    };
    if !user.is_admin() {
        let page = pages::error_page(StatusCode::FORBIDDEN, "This page is for admins only.");
        return Ok((StatusCode::FORBIDDEN, page).into_response());
    }
    let key = state.user_key(session.data()).unwrap_or_default();
    let stats = admin::gather(&state, &key).await?;
    let csrf = csrf_token(&session).unwrap_or_default();
    Ok(pages::admin(&user, &session, &csrf, &stats).into_response())
}

async fn healthz(State(state): State<AppState>) -> Handled {
    state.store().count().await?;
    Ok(format!("ok {}\n", state.store().backend()).into_response())
}

async fn metrics_page(State(state): State<AppState>) -> Response {
    match state.metrics() {
        Some(handle) => (
            [(
                CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            )],
            handle.render(),
        )
            .into_response(),
        None => not_found().await,
    }
}

async fn not_found() -> Response {
    let page = pages::error_page(StatusCode::NOT_FOUND, "There is no such page.");
    (StatusCode::NOT_FOUND, page).into_response()
}

/// The request's live session if the submitted CSRF token is its token; otherwise the 403
/// response to send.
async fn checked_session(
    state: &AppState,
    headers: &HeaderMap,
    submitted: Option<&str>,
) -> Result<Result<Session, Response>, AppError> {
    let Some(session) = state.existing_session(headers).await? else {
        tracing::info!("state-changing request without a live session refused");
        return Ok(Err(stale_form()));
    };
    if !csrf::matches(csrf_token(&session).as_deref(), submitted) {
        tracing::warn!(session = %session.id(), "request with a missing or wrong CSRF token refused");
        return Ok(Err(stale_form()));
    }
    Ok(Ok(session))
}

/// 403 for a form without a valid CSRF token for a live session.
fn stale_form() -> Response {
    let page = pages::error_page(
        StatusCode::FORBIDDEN,
        "Missing or invalid CSRF token: this request was refused. If you used a form, it may \
         be stale (your session expired or changed); go back to the start page and try again.",
    );
    (StatusCode::FORBIDDEN, page).into_response()
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        cookies::append(response.headers_mut(), cookie);
    }
    response
}

/// Headers on every response: pages carry CSRF tokens and user data, so no caching; no
/// framing (the logout buttons are not to be clickjacked); no scripts at all.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (CACHE_CONTROL, "no-store"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (X_FRAME_OPTIONS, "DENY"),
        (REFERRER_POLICY, "same-origin"),
        (
            CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
