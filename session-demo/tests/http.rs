//! HTTP-level tests, in process: requests go through the router with `tower::ServiceExt::oneshot`
//! against a real `MemoryStore`. They check what a browser cannot easily show: exact
//! `Set-Cookie` attributes, that a client-chosen id is never adopted, CSRF refusals, and that
//! login rotates the id.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use redis_harness::sentinel::TopologySpec;
use session_demo::cookies::COOKIE_NAME;
use session_demo::{app, connect, AppState, DemoConfig};
use session_store::memory::MemoryStore;
use session_store::{
    BackendConfig, Clock as _, ManualClock, SessionConfig, SessionId, SessionStore,
    SessionStoreExt, SystemClock,
};
use tower::ServiceExt as _;

struct Demo {
    app: Router,
    store: Arc<dyn SessionStore>,
}

impl Demo {
    fn new() -> Self {
        Self::with(MemoryStore::new(), DemoConfig::default())
    }

    fn with(store: MemoryStore, config: DemoConfig) -> Self {
        let session = store.config().clone();
        let store: Arc<dyn SessionStore> = Arc::new(store);
        Self::over(AppState::new(store, &session, config))
    }

    fn over(state: AppState) -> Self {
        let store = state.store_arc();
        Demo {
            app: app(state),
            store,
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut request = Request::get(path);
        if let Some(token) = cookie {
            request = request.header(header::COOKIE, format!("{COOKIE_NAME}={token}"));
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Reply {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(token) = cookie {
            request = request.header(header::COOKIE, format!("{COOKIE_NAME}={token}"));
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response: Response<Body> = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let set_cookie = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            set_cookie,
            location,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    /// A fresh visitor: GET / and return (cookie token, CSRF token).
    async fn visit(&self) -> (String, String) {
        let reply = self.get("/", None).await;
        assert_eq!(reply.status, StatusCode::OK);
        (
            reply.cookie().expect("first visit sets a cookie"),
            reply.csrf(),
        )
    }

    /// A visitor who logged in: returns the session cookie after login.
    async fn logged_in(&self, user: &str, password: &str) -> String {
        let (cookie, csrf) = self.visit().await;
        let reply = self
            .post(
                "/login",
                Some(&cookie),
                &[
                    ("username", user),
                    ("password", password),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        reply.cookie().expect("login sets the rotated cookie")
    }

    async fn exists(&self, token: &str) -> bool {
        self.store.exists(&token.parse().unwrap()).await.unwrap()
    }
}

struct Reply {
    status: StatusCode,
    set_cookie: Vec<String>,
    location: Option<String>,
    body: String,
}

impl Reply {
    /// The session cookie's value, if the response sets one.
    fn cookie(&self) -> Option<String> {
        self.set_cookie.iter().find_map(|c| {
            let value = c.strip_prefix(&format!("{COOKIE_NAME}="))?;
            Some(value.split(';').next().unwrap().to_owned())
        })
    }

    fn cookie_header(&self) -> &str {
        let prefix = format!("{COOKIE_NAME}=");
        self.set_cookie
            .iter()
            .find(|c| c.starts_with(&prefix))
            .expect("a session Set-Cookie")
    }

    /// The CSRF token in the page's first form.
    fn csrf(&self) -> String {
        let marker = r#"name="csrf_token" value=""#;
        let start = self.body.find(marker).expect("a CSRF field") + marker.len();
        let len = self.body[start..].find('"').unwrap();
        self.body[start..start + len].to_owned()
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn first_visit_gets_a_fresh_session_with_safe_cookie_attributes() {
    let demo = Demo::new();
    let reply = demo.get("/", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let header = reply.cookie_header();
    let attributes: Vec<&str> = header.split("; ").skip(1).collect();
    for wanted in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attributes.contains(&wanted), "{header}");
    }
    assert!(
        !attributes.contains(&"Secure"),
        "Secure only when configured: {header}"
    );
    let token = reply.cookie().unwrap();
    assert!(token.parse::<SessionId>().is_ok());
    assert!(demo.exists(&token).await);
    assert!(reply.body.contains("id=\"login-form\""));
}

#[tokio::test]
async fn a_live_cookie_is_kept_and_not_reissued() {
    let demo = Demo::new();
    let (cookie, csrf) = demo.visit().await;
    let again = demo.get("/", Some(&cookie)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.cookie(), None);
    assert_eq!(again.csrf(), csrf, "same session, same token");
}

#[tokio::test]
async fn a_forged_well_formed_id_is_never_adopted() {
    let demo = Demo::new();
    let forged = SessionId::generate();
    let reply = demo.get("/", Some(forged.expose_token())).await;
    let fresh = reply.cookie().expect("a fresh cookie for an unknown id");
    assert_ne!(fresh, forged.expose_token());
    assert!(!demo.exists(forged.expose_token()).await);
    assert!(demo.exists(&fresh).await);
    assert_eq!(demo.store.count().await.unwrap(), 1);
}

#[tokio::test]
async fn a_malformed_cookie_gets_a_fresh_id() {
    let demo = Demo::new();
    for bad in ["forged", "../../etc", &"A".repeat(44), ""] {
        let reply = demo.get("/", Some(bad)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let fresh = reply.cookie().expect("a fresh cookie");
        assert_ne!(fresh, bad);
        assert!(fresh.parse::<SessionId>().is_ok());
    }
}

#[tokio::test]
async fn an_expired_session_is_replaced_under_a_new_id() {
    let clock = ManualClock::starting_now();
    let config = SessionConfig {
        idle_timeout: Duration::from_secs(60),
        ..SessionConfig::default()
    };
    let store = MemoryStore::builder()
        .config(config)
        .clock(Arc::new(clock.clone()))
        .build();
    let demo = Demo::with(store, DemoConfig::default());
    let (cookie, _) = demo.visit().await;
    clock.advance(Duration::from_secs(61));
    let reply = demo.get("/", Some(&cookie)).await;
    let fresh = reply.cookie().expect("a fresh cookie for an expired id");
    assert_ne!(fresh, cookie);
    assert!(!demo.exists(&cookie).await);
}

#[tokio::test]
async fn secure_cookie_when_configured() {
    let config = DemoConfig {
        secure_cookie: true,
        ..DemoConfig::default()
    };
    let demo = Demo::with(MemoryStore::new(), config);
    let reply = demo.get("/", None).await;
    let header = reply.cookie_header().to_owned();
    assert!(header.split("; ").any(|a| a == "Secure"), "{header}");
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax"));

    let cookie = reply.cookie().unwrap();
    let logout = demo
        .post("/logout", Some(&cookie), &[("csrf_token", &reply.csrf())])
        .await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    let cleared = logout.cookie_header();
    assert!(
        cleared.contains("Secure") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

#[tokio::test]
async fn posts_without_the_right_csrf_token_are_refused() {
    let demo = Demo::new();
    let (cookie, csrf) = demo.visit().await;
    let creds = [("username", "aaron"), ("password", "demo-aaron")];
    // (path, cookie sent, form fields)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<(&'a str, &'a str)>);
    let cases: [Case<'_>; 6] = [
        ("/login", Some(&cookie), creds.to_vec()),
        (
            "/login",
            Some(&cookie),
            [&creds[..], &[("csrf_token", "wrong")]].concat(),
        ),
        (
            "/login",
            Some(&cookie),
            [&creds[..], &[("csrf_token", "")]].concat(),
        ),
        // The right token without the session it belongs to.
        (
            "/login",
            None,
            [&creds[..], &[("csrf_token", &csrf)]].concat(),
        ),
        ("/logout", Some(&cookie), vec![]),
        (
            "/logout-everywhere",
            Some(&cookie),
            vec![("csrf_token", "wrong")],
        ),
    ];
    for (path, cookie_sent, form) in cases {
        let reply = demo.post(path, cookie_sent, &form).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path} {form:?}");
        assert!(reply.body.contains("CSRF"), "a clear page: {}", reply.body);
        assert_eq!(reply.cookie(), None);
    }
    // Nothing happened: still the one anonymous session.
    assert!(demo.exists(&cookie).await);
    assert_eq!(demo.store.count().await.unwrap(), 1);
    let page = demo.get("/", Some(&cookie)).await;
    assert!(page.body.contains("id=\"login-form\""));
}

#[tokio::test]
async fn login_rotates_the_session_id_and_the_csrf_token() {
    let demo = Demo::new();
    let (before, csrf) = demo.visit().await;
    let reply = demo
        .post(
            "/login",
            Some(&before),
            &[
                ("username", "aaron"),
                ("password", "demo-aaron"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location.as_deref(), Some("/"));
    let after = reply.cookie().expect("a new cookie");
    assert_ne!(after, before);
    assert!(!demo.exists(&before).await, "the pre-login id is dead");

    let session = demo
        .store
        .get(&after.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.data()["user"]["username"], "aaron");
    assert_eq!(session.data()["user"]["role"], "admin");
    assert_ne!(session.data()["csrf_token"], csrf.as_str());
    assert!(session.data()["created"].is_f64());

    let page = demo.get("/", Some(&after)).await;
    assert!(page
        .body
        .contains(r#"<span id="current-user">aaron</span>"#));
    // The old token no longer works for the new session.
    let stale = demo
        .post("/logout", Some(&after), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_nothing_changes() {
    let demo = Demo::new();
    let (cookie, csrf) = demo.visit().await;
    for (user, password) in [
        ("aaron", "demo-alice"),
        ("nobody", "demo-aaron"),
        ("aaron", ""),
    ] {
        let reply = demo
            .post(
                "/login",
                Some(&cookie),
                &[
                    ("username", user),
                    ("password", password),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.body.contains("Wrong user name or password"));
        assert_eq!(reply.cookie(), None);
    }
    let session = demo
        .store
        .get(&cookie.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!session.data().contains_key("user"));
}

#[tokio::test]
async fn logout_deletes_the_session_and_clears_the_cookie() {
    let demo = Demo::new();
    let cookie = demo.logged_in("alice", "demo-alice").await;
    let csrf = demo.get("/", Some(&cookie)).await.csrf();
    let reply = demo
        .post("/logout", Some(&cookie), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.cookie_header().contains("Max-Age=0"));
    assert!(!demo.exists(&cookie).await);
    let page = demo.get("/", Some(&cookie)).await;
    assert!(page.body.contains("id=\"login-form\""));
    assert_ne!(page.cookie().unwrap(), cookie);
}

#[tokio::test]
async fn logout_everywhere_ends_only_that_users_sessions() {
    let demo = Demo::new();
    let alice_1 = demo.logged_in("alice", "demo-alice").await;
    let alice_2 = demo.logged_in("alice", "demo-alice").await;
    let bob = demo.logged_in("bob", "demo-bob").await;
    let csrf = demo.get("/", Some(&alice_1)).await.csrf();
    let reply = demo
        .post(
            "/logout-everywhere",
            Some(&alice_1),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location.as_deref(), Some("/?notice=ended-all&n=2"));
    assert!(!demo.exists(&alice_1).await);
    assert!(!demo.exists(&alice_2).await);
    assert!(demo.exists(&bob).await);
    let page = demo.get("/?notice=ended-all&n=2", None).await;
    assert!(page.body.contains("2 session(s) ended"));
}

#[tokio::test]
async fn metrics_are_not_served_without_a_recorder() {
    // The binary installs the Prometheus recorder (tests/metrics.rs scrapes it); an app built
    // without one has no /metrics page.
    let demo = Demo::new();
    assert_eq!(
        demo.get("/metrics", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_admin_page_is_for_admins_and_shows_no_tokens() {
    let demo = Demo::new();
    let anonymous = demo.get("/admin", None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    let alice = demo.logged_in("alice", "demo-alice").await;
    assert_eq!(
        demo.get("/admin", Some(&alice)).await.status,
        StatusCode::FORBIDDEN
    );

    let aaron_1 = demo.logged_in("aaron", "demo-aaron").await;
    let aaron_2 = demo.logged_in("aaron", "demo-aaron").await;
    let page = demo.get("/admin", Some(&aaron_1)).await;
    assert_eq!(page.status, StatusCode::OK);
    let count = demo.store.count().await.unwrap();
    assert!(page
        .body
        .contains(&format!(r#"<strong id="session-count">{count}</strong>"#)));
    for token in [&alice, &aaron_1, &aaron_2] {
        assert!(!page.body.contains(token.as_str()), "no token on the page");
    }
    let id: SessionId = aaron_2.parse().unwrap();
    assert!(
        page.body.contains(&id.fingerprint()),
        "aaron's other session is listed"
    );
    assert!(page.body.contains("(this one)"));
    assert!(
        page.body.contains(r#"<td class="user">alice</td>"#)
            && page.body.contains(r#"<td class="user">aaron</td>"#)
    );
}

/// The `<tr>` of `user` in the admin page's users table.
fn user_row<'p>(page: &'p str, user: &str) -> &'p str {
    let table = &page[page.find(r#"<table id="users">"#).expect("the users table")..];
    let table = &table[..table.find("</table>").unwrap()];
    let cell = format!(r#"<td class="user">{user}</td>"#);
    let at = table
        .find(&cell)
        .unwrap_or_else(|| panic!("a row for {user}: {table}"));
    let start = table[..at].rfind("<tr").unwrap();
    let end = at + table[at..].find("</tr>").unwrap();
    &table[start..end]
}

#[tokio::test]
async fn the_admin_page_charts_the_last_hour_and_lists_each_user() {
    let session = SessionConfig::default();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let state = AppState::new(store, &session, DemoConfig::default());
    let demo = Demo::over(state.clone());
    let alice = demo.logged_in("alice", "demo-alice").await;
    let aaron = demo.logged_in("aaron", "demo-aaron").await;
    let _anonymous = demo.visit().await;
    let page = demo.get("/admin", Some(&aaron)).await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;

    // The chart: an inline SVG with its accessible name, title and legend, the two logins as
    // bars and the count this view sampled as a dot.
    let svg_at = body.find("<svg").expect("an inline <svg>");
    let svg = &body[svg_at..svg_at + body[svg_at..].find("</svg>").unwrap()];
    assert!(svg.contains(r#"id="activity-chart""#) && svg.contains(r#"role="img""#));
    assert!(
        svg.contains(r#"aria-label="Live sessions and logins, last hour (per minute, UTC): 2 login(s) in the last hour"#),
        "{svg}"
    );
    assert!(svg.contains("<title>Live sessions and logins, last hour"));
    assert!(svg.contains("Logins per minute") && svg.contains("Live sessions (sampled)"));
    assert!(svg.contains(r#"class="login-bar""#));
    assert!(
        svg.contains("live sessions 3 at the latest sample"),
        "{svg}"
    );
    assert!(svg.contains(r#"class="live-point""#));
    assert!(!svg.contains("<script") && !body.contains("<script"));
    let now = SystemClock.now();
    assert_eq!(
        state
            .history()
            .per_minute(now)
            .into_iter()
            .flatten()
            .next_back(),
        Some(3),
        "the page view sampled the count into the history"
    );
    assert!(!body.contains(r#"id="scan-capped""#));

    // One row per user with live sessions (the anonymous session has none), the most recent
    // activity first: aaron's page view came after alice's login.
    assert!(body.contains("2 user(s) with live sessions, 2 active in the last 15 minutes"));
    let (aaron_row, alice_row) = (user_row(body, "aaron"), user_row(body, "alice"));
    assert!(body.find(aaron_row).unwrap() < body.find(alice_row).unwrap());
    for row in [aaron_row, alice_row] {
        assert!(row.starts_with(r#"<tr class="active">"#), "{row}");
        assert!(
            row.contains(r#"<td class="num">1</td>"#),
            "one live session: {row}"
        );
        assert_eq!(
            row.matches("<time datetime=").count(),
            3,
            "activity, logins: {row}"
        );
    }
    assert!(!body.contains("bob"));

    // A second login of alice's: two sessions in her row.
    let _alice_phone = demo.logged_in("alice", "demo-alice").await;
    let page = demo.get("/admin", Some(&aaron)).await;
    assert!(user_row(&page.body, "alice").contains(r#"<td class="num">2</td>"#));
    assert!(page.body.contains(": 3 login(s) in the last hour"));
    for token in [&alice, &aaron] {
        assert!(!page.body.contains(token.as_str()), "no token on the page");
    }
}

#[tokio::test]
async fn the_admin_page_says_when_the_scan_stopped_at_its_limit() {
    let config = DemoConfig {
        admin_scan_limit: 2,
        ..DemoConfig::default()
    };
    let demo = Demo::with(MemoryStore::new(), config);
    demo.logged_in("alice", "demo-alice").await;
    demo.logged_in("bob", "demo-bob").await;
    let aaron = demo.logged_in("aaron", "demo-aaron").await;
    let page = demo.get("/admin", Some(&aaron)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .body
        .contains(r#"<strong id="session-count">3</strong>"#));
    assert!(page.body.contains(r#"id="scan-capped""#), "{}", page.body);
    assert!(page.body.contains("Only the first 2 sessions were read"));
    assert!(page
        .body
        .contains("From 2 session(s) read (stopped at the limit"));
    let rows = page.body.matches(r#"<td class="user">"#).count();
    assert_eq!(rows, 2, "users of the sessions read only");
}

#[tokio::test]
async fn runs_on_sentinel_through_the_backend_configuration() {
    // 1 master, 1 replica, 1 Sentinel: real processes on loopback, killed on drop.
    let topology = tokio::task::spawn_blocking(|| TopologySpec::light().start())
        .await
        .unwrap();
    let sentinels = topology.sentinel_addrs().join(",");
    let master_name = topology.master_name().to_owned();
    let backend = BackendConfig::from_lookup(|name| match name {
        "SESSION_BACKEND" => Some("sentinel".into()),
        "REDIS_SENTINELS" => Some(sentinels.clone()),
        "REDIS_MASTER_NAME" => Some(master_name.clone()),
        _ => None,
    })
    .unwrap();
    let demo = Demo::over(connect(backend, DemoConfig::default()).await.unwrap());
    assert_eq!(demo.store.backend(), "sentinel");

    let laptop = demo.logged_in("bob", "demo-bob").await;
    let phone = demo.logged_in("bob", "demo-bob").await;
    let page = demo.get("/", Some(&laptop)).await;
    assert!(page.body.contains(r#"<td id="backend">sentinel</td>"#));
    let reply = demo
        .post(
            "/logout-everywhere",
            Some(&laptop),
            &[("csrf_token", &page.csrf())],
        )
        .await;
    assert_eq!(reply.location.as_deref(), Some("/?notice=ended-all&n=2"));
    assert!(!demo.exists(&laptop).await && !demo.exists(&phone).await);
    drop(demo);
    tokio::task::spawn_blocking(move || drop(topology))
        .await
        .unwrap();
}
