//! Shared state, and how a request finds its session: the cookie's if it is live, otherwise
//! a fresh one under a fresh id (a client-chosen id is never adopted).

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use session_store::{
    user_of, Clock, Result, Session, SessionConfig, SessionData, SessionId, SessionStore,
    SessionStoreExt, SystemClock,
};

use crate::analytics::SharedHistory;
use crate::config::DemoConfig;
use crate::cookies::{self, CookieId};
use crate::csrf;

/// What every handler shares: the store, the user keys it indexes by, and the demo settings.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    store: Arc<dyn SessionStore>,
    user_keys: Vec<String>,
    idle_timeout: std::time::Duration,
    config: DemoConfig,
    metrics: Option<PrometheusHandle>,
    history: SharedHistory,
}

impl AppState {
    /// State over `store`; `session` must be the configuration the store was built with (its
    /// `user_keys` decide whose sessions "log out everywhere" ends).
    pub fn new(store: Arc<dyn SessionStore>, session: &SessionConfig, config: DemoConfig) -> Self {
        AppState {
            inner: Arc::new(Inner {
                store,
                user_keys: session.user_keys.clone(),
                idle_timeout: session.idle_timeout,
                config,
                metrics: None,
                history: SharedHistory::default(),
            }),
        }
    }

    /// The same state, with `GET /metrics` rendering `handle`'s recorder (see
    /// [`crate::metrics`]).
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> Self {
        Arc::make_mut(&mut self.inner).metrics = Some(handle);
        self
    }

    /// The Prometheus recorder `GET /metrics` renders, if one was installed.
    pub fn metrics(&self) -> Option<&PrometheusHandle> {
        self.inner.metrics.as_ref()
    }

    /// The live session counts of the last hour, sampled by this process (see
    /// [`crate::analytics`]). Clones of the state share it.
    pub fn history(&self) -> &SharedHistory {
        &self.inner.history
    }

    /// Records a live session count (`count`'s answer) taken now in [`Self::history`].
    pub fn record_live(&self, live: u64) {
        self.inner.history.record(SystemClock.now(), live);
    }

    /// The session store.
    pub fn store(&self) -> &dyn SessionStore {
        &*self.inner.store
    }

    /// The session store, shared.
    pub fn store_arc(&self) -> Arc<dyn SessionStore> {
        self.inner.store.clone()
    }

    /// The demo settings.
    pub fn config(&self) -> &DemoConfig {
        &self.inner.config
    }

    /// The default idle timeout (`SESSION_TTL`).
    pub fn idle_timeout(&self) -> std::time::Duration {
        self.inner.idle_timeout
    }

    /// The user key of `data` (`SESSION_USER_KEYS`, default `user.sub,user.username`): what
    /// `list_user` and `delete_user` take.
    pub fn user_key(&self, data: &SessionData) -> Option<String> {
        user_of(data, &self.inner.user_keys)
    }

    /// `Set-Cookie` for `id` with the configured attributes.
    pub fn session_cookie(&self, id: &SessionId) -> HeaderValue {
        cookies::set_session(id, self.inner.config.secure_cookie)
    }

    /// `Set-Cookie` removing the session cookie.
    pub fn clear_cookie(&self) -> HeaderValue {
        cookies::clear_session(self.inner.config.secure_cookie)
    }

    /// The live session named by the request's cookie, with its idle expiry slid (activity).
    /// `None` for a missing, malformed, unknown or expired id. A session lacking a CSRF token
    /// (written by another tool) gets one.
    pub async fn existing_session(&self, headers: &HeaderMap) -> Result<Option<Session>> {
        let Some(id) = CookieId::from_headers(headers).id().cloned() else {
            return Ok(None);
        };
        let store = self.store();
        let Some(session) = store.get(&id).await? else {
            return Ok(None);
        };
        if session
            .get::<String>(csrf::SESSION_KEY)
            .ok()
            .flatten()
            .is_none()
        {
            return store
                .update(&id, |data| {
                    data.insert(csrf::SESSION_KEY.into(), json!(csrf::generate()));
                })
                .await;
        }
        // A write slides the idle expiry; a plain page view needs a refresh to do the same.
        if !store.refresh(&id).await? {
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// The request's session for a page that shows a form: the live one, or a fresh anonymous
    /// session under a freshly minted id, with the `Set-Cookie` to send.
    pub async fn page_session(&self, headers: &HeaderMap) -> Result<Visit> {
        if let Some(session) = self.existing_session(headers).await? {
            return Ok(Visit {
                session,
                set_cookie: None,
            });
        }
        let session = self.store().create(fresh_data()).await?;
        let set_cookie = Some(self.session_cookie(session.id()));
        Ok(Visit {
            session,
            set_cookie,
        })
    }
}

/// A request's session and, when it was just created, the cookie to set.
#[derive(Debug)]
pub struct Visit {
    /// The session.
    pub session: Session,
    /// `Set-Cookie` for a session created by this request.
    pub set_cookie: Option<HeaderValue>,
}

/// The data of a new anonymous session: a CSRF token and the creation time, in the existing
/// service's shape (`created` as float Unix seconds).
pub fn fresh_data() -> SessionData {
    let mut data = SessionData::new();
    data.insert(csrf::SESSION_KEY.into(), json!(csrf::generate()));
    data.insert(
        "created".into(),
        json!(SystemClock.now().as_unix_seconds_f64()),
    );
    data
}

/// The session's `"user"` member, when someone is logged in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SessionUser {
    /// Login name.
    pub username: String,
    /// E-mail address.
    #[serde(default)]
    pub email: String,
    /// `"admin"` or `"user"`.
    #[serde(default)]
    pub role: String,
    /// Subject id.
    #[serde(default)]
    pub sub: String,
}

impl SessionUser {
    /// The logged-in user of `session`, if any (a malformed `"user"` counts as nobody).
    pub fn of(session: &Session) -> Option<Self> {
        session.get::<SessionUser>("user").ok().flatten()
    }

    /// Whether the user may open the admin page.
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

/// The session's CSRF token.
pub fn csrf_token(session: &Session) -> Option<String> {
    session.get::<String>(csrf::SESSION_KEY).ok().flatten()
}
