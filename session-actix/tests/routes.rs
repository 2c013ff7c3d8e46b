//! actix-session's own `SessionMiddleware` over our stores, in a real actix-web app: login,
//! reload, logout, forged cookies, expiry, renew; on the memory store, a real Redis, and a
//! MigratingStore (memory → Redis).

mod common;

use std::time::Duration;

use actix_web::cookie::Key;
use actix_web::http::StatusCode;
use common::{assert_near, send, Fixture, Lifecycle};
use serde_json::json;
use session_core::{PutMode, SessionId, WriteOptions};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
/// Real time passing between the request and the check, and the stores' rounding.
const SLACK: Duration = Duration::from_secs(5);

/// Stamps one test per case for a backend, so a failure reads `redis::logout`. Each runs on
/// actix's own runtime (`actix_web::rt::System`), as under `HttpServer`.
macro_rules! route_tests {
    ($backend:ident, $fixture:expr) => {
        mod $backend {
            route_tests!(@cases $fixture;
                no_session_no_cookie, login_reload_logout, logout_everywhere,
                forged_cookie_is_ignored, signed_malformed_key_never_reaches_the_store,
                unknown_id_is_not_adopted, existing_service_session_is_readable,
                state_ttl_expiry, writes_slide_state_ttl, persistent_cookie_expiry,
                persistent_cookie_slides_on_every_request, default_ttl_is_a_day,
                renew_cycles_the_id, update_overtaken_by_logout_everywhere_is_dropped,
                reserved_key_fails_without_writing);
        }
    };
    (@cases $fixture:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                actix_web::rt::System::new().block_on(async {
                    super::$case($fixture.await).await
                })
            }
        )*
    };
}

route_tests!(memory, crate::Fixture::start(adapter_testkit::Kind::Memory));
route_tests!(redis, crate::Fixture::start(adapter_testkit::Kind::Redis));
route_tests!(
    migrating,
    crate::Fixture::start(adapter_testkit::Kind::Migrating)
);

async fn no_session_no_cookie(fx: Fixture) {
    let app = fx.app(Lifecycle::Browser(HOUR)).await;
    for uri in ["/", "/get", "/whoami"] {
        let r = send(&app, uri, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.cookie.is_none(), "{uri} issued {:?}", r.cookie);
    }
    assert_eq!(fx.store.count().await.unwrap(), 0);
    assert_eq!(fx.counted.calls(), 0, "no cookie, no store call");
}

async fn login_reload_logout(fx: Fixture) {
    let app = fx.app(Lifecycle::Browser(HOUR)).await;
    let r = send(&app, "/login/u-1", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let cookie = r.cookie.clone().expect("session cookie");
    // actix-session's defaults: encrypted, HttpOnly, Secure, Lax, no Max-Age.
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.max_age(), None);
    let c = r.cookie_value();
    let token = fx.key_in(&c);
    assert_ne!(c, token, "the cookie is encrypted, not the bare token");
    SessionId::parse(&token).expect("the key is one of our ids");

    // Stored as the existing service stores it: `user` an object, found by the user index.
    let stored = fx.stored(&c).await.expect("stored");
    assert_eq!(
        stored.data()["user"],
        json!({"sub": "u-1", "username": "u-1"})
    );
    assert_eq!(fx.store.list_user("u-1").await.unwrap().len(), 1);

    // Reload: the same session; a read sets no cookie.
    let r = send(&app, "/whoami", Some(&c)).await;
    assert_eq!(r.body, "u-1");
    assert!(r.cookie.is_none(), "a read re-issued the cookie");

    // A change keeps the session (the cookie is re-encrypted, the key is the same).
    let r = send(&app, "/insert", Some(&c)).await;
    assert_eq!(r.status, StatusCode::OK);
    let c2 = r.cookie_value();
    assert_eq!(fx.key_in(&c2), token, "same session after a change");
    assert_eq!(send(&app, "/get", Some(&c)).await.body, "Some(42)");

    // Logout: the session is deleted and the cookie removed.
    let r = send(&app, "/logout", Some(&c2)).await;
    assert_eq!(r.status, StatusCode::OK);
    let removal = r.cookie.expect("removal cookie");
    assert_eq!(removal.value(), "");
    assert_eq!(
        removal.max_age(),
        Some(actix_web::cookie::time::Duration::ZERO)
    );
    assert!(!fx.is_stored(&c).await);
    assert_eq!(fx.store.count().await.unwrap(), 0);
    assert!(fx.store.list_user("u-1").await.unwrap().is_empty());

    // The old cookie opens nothing, and writing with it starts a fresh, anonymous session.
    assert_eq!(send(&app, "/whoami", Some(&c)).await.body, "anonymous");
    let r = send(&app, "/insert", Some(&c)).await;
    assert_ne!(
        fx.key_in(&r.cookie_value()),
        token,
        "a logged-out id came back"
    );
    assert!(!fx.is_stored(&c).await);
    assert_eq!(
        send(&app, "/whoami", Some(&r.cookie_value())).await.body,
        "anonymous"
    );
}

async fn logout_everywhere(fx: Fixture) {
    let app = fx.app(Lifecycle::Browser(HOUR)).await;
    let laptop = send(&app, "/login/u-1", None).await.cookie_value();
    let phone = send(&app, "/login/u-1", None).await.cookie_value();
    let other = send(&app, "/login/u-2", None).await.cookie_value();
    assert_ne!(fx.key_in(&laptop), fx.key_in(&phone));
    assert_eq!(fx.store.delete_user("u-1").await.unwrap(), 2);
    for c in [&laptop, &phone] {
        assert_eq!(send(&app, "/whoami", Some(c)).await.body, "anonymous");
        assert!(!fx.is_stored(c).await);
    }
    assert_eq!(send(&app, "/whoami", Some(&other)).await.body, "u-2");
    assert_eq!(fx.store.count().await.unwrap(), 1);
}

async fn forged_cookie_is_ignored(fx: Fixture) {
    let app = fx.app(Lifecycle::Browser(HOUR)).await;
    let live = send(&app, "/login/u-1", None).await.cookie_value();
    let token = fx.key_in(&live);
    let calls = fx.counted.calls();

    let other_key = Fixture::forge(&Key::generate(), &token);
    let mut tampered = live.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for forged in [
        "forged".to_owned(),
        token.clone(), // the bare token of a live session, without the middleware's key
        other_key,     // the same token, encrypted with another key
        tampered,      // a live cookie with one character changed
    ] {
        let r = send(&app, "/whoami", Some(&forged)).await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "anonymous"));
        assert!(r.cookie.is_none(), "{:?}", r.cookie);
    }
    assert_eq!(
        fx.counted.calls(),
        calls,
        "a cookie that fails the middleware's checks reaches no store"
    );

    // Writing with one starts a fresh session; the live one is untouched.
    let r = send(&app, "/insert", Some("forged")).await;
    assert_ne!(fx.key_in(&r.cookie_value()), token);
    assert_eq!(send(&app, "/whoami", Some(&live)).await.body, "u-1");
    assert_eq!(fx.store.count().await.unwrap(), 2);
}

async fn signed_malformed_key_never_reaches_the_store(fx: Fixture) {
    let app = fx.app(Lifecycle::Browser(HOUR)).await;
    let actix_style = "a".repeat(64); // what actix-session's own stores mint
    let bad_padding = format!("{}B", "A".repeat(42)); // 43 characters, not canonical
    for bad in ["malformed", "", actix_style.as_str(), bad_padding.as_str()] {
        // Encrypted with the app's key: it passes the middleware, and reaches the adapter.
        let cookie = Fixture::forge(&fx.key, bad);
        let calls = fx.counted.calls();
        let r = send(&app, "/whoami", Some(&cookie)).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::OK, "anonymous"),
            "{bad:?}"
        );
        assert_eq!(fx.counted.calls(), calls, "{bad:?} was looked up");

        // A write under it gets a fresh id of ours, never the client's key.
        let r = send(&app, "/insert", Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::OK);
        let fresh = r.cookie_value();
        assert_ne!(fx.key_in(&fresh), bad);
        assert!(fx.is_stored(&fresh).await, "{bad:?}");
    }
    assert_eq!(fx.store.count().await.unwrap(), 4);
}

async fn unknown_id_is_not_adopted(fx: Fixture) {
    let app = fx.app(Lifecycle::Browser(HOUR)).await;
    // Well-formed, correctly encrypted, never issued: looked up, not found.
    let chosen = SessionId::generate();
    let cookie = Fixture::forge(&fx.key, chosen.expose_token());
    let calls = fx.counted.calls();
    assert_eq!(send(&app, "/whoami", Some(&cookie)).await.body, "anonymous");
    assert_eq!(fx.counted.calls(), calls + 1, "one load");

    let r = send(&app, "/insert", Some(&cookie)).await;
    assert_ne!(
        fx.key_in(&r.cookie_value()),
        chosen.expose_token(),
        "adopted the client's id"
    );
    assert!(!fx.store.exists(&chosen).await.unwrap());
    assert_eq!(fx.store.count().await.unwrap(), 1);
}

async fn existing_service_session_is_readable(fx: Fixture) {
    let app = fx.app(Lifecycle::Browser(HOUR)).await;
    // A session the existing service wrote (its shape, its token), then reached through
    // actix-session with a cookie carrying that token.
    let id = SessionId::generate();
    let data = redis_harness::fixtures::existing_service_session("aaron");
    fx.store
        .put(
            &id,
            data.clone().into(),
            PutMode::Create,
            WriteOptions::new(),
        )
        .await
        .unwrap();
    let cookie = Fixture::forge(&fx.key, id.expose_token());

    let sub = data["user"]["sub"].as_str().unwrap();
    assert_eq!(send(&app, "/whoami", Some(&cookie)).await.body, sub);
    let entries = send(&app, "/entries", Some(&cookie)).await.body;
    assert!(entries.contains("\ncreated=1717171717.25\n"), "{entries}");
    assert!(
        entries.contains(&format!(
            "\ncsrf_token=\"{}\"\n",
            data["csrf_token"].as_str().unwrap()
        )),
        "{entries}"
    );

    // A change through actix keeps every other key as the existing service wrote it.
    let r = send(&app, "/insert", Some(&cookie)).await;
    assert_eq!(fx.key_in(&r.cookie_value()), id.expose_token());
    let stored = fx.store.load(&id).await.unwrap().unwrap();
    let mut expected = data;
    expected.insert("foo".into(), json!(42));
    assert_eq!(stored.data(), &expected);
    assert_eq!(stored.data()["created"].to_string(), "1717171717.25");
}

async fn state_ttl_expiry(fx: Fixture) {
    let app = fx.app(Lifecycle::Browser(HOUR)).await;
    let r = send(&app, "/login/u-1", None).await;
    assert_eq!(
        r.cookie.as_ref().unwrap().max_age(),
        None,
        "a browser-session cookie"
    );
    let c = r.cookie_value();
    assert_near(fx.store_ttl(&c).await, HOUR, SLACK, "store TTL");
    if let Some(pttl) = fx.redis_pttl(&c) {
        assert_near(pttl, HOUR, SLACK, "Redis PTTL");
    }

    // Reads do not slide (actix-session's default policy): it dies an hour after the login.
    fx.clock.advance(HOUR - Duration::from_secs(30));
    assert_eq!(send(&app, "/whoami", Some(&c)).await.body, "u-1");
    fx.clock.advance(Duration::from_secs(30) + SLACK);
    let r = send(&app, "/whoami", Some(&c)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "anonymous"));
    assert!(!fx.is_stored(&c).await);
    assert_eq!(fx.store.count().await.unwrap(), 0);

    // Writing with the dead cookie starts a fresh, anonymous session under a new id.
    let r = send(&app, "/insert", Some(&c)).await;
    let fresh = r.cookie_value();
    assert_ne!(fx.key_in(&fresh), fx.key_in(&c));
    assert!(!fx.is_stored(&c).await);
    assert_eq!(send(&app, "/whoami", Some(&fresh)).await.body, "anonymous");
}

async fn writes_slide_state_ttl(fx: Fixture) {
    let app = fx.app(Lifecycle::Browser(HOUR)).await;
    let c = send(&app, "/insert", None).await.cookie_value();
    fx.clock.advance(HOUR * 2 / 3);
    let r = send(&app, "/remove", Some(&c)).await;
    assert_eq!(fx.key_in(&r.cookie_value()), fx.key_in(&c));
    assert_near(fx.store_ttl(&c).await, HOUR, SLACK, "TTL after a write");

    // Past the first expiry, still the same session.
    fx.clock.advance(HOUR * 2 / 3);
    let r = send(&app, "/insert", Some(&c)).await;
    assert_eq!(
        fx.key_in(&r.cookie_value()),
        fx.key_in(&c),
        "lost instead of slid"
    );
    assert_eq!(send(&app, "/get", Some(&c)).await.body, "Some(42)");
}

async fn persistent_cookie_expiry(fx: Fixture) {
    let app = fx.app(Lifecycle::Persistent(HOUR)).await;
    let r = send(&app, "/login/u-1", None).await;
    let max_age = r.cookie.as_ref().unwrap().max_age().expect("Max-Age");
    assert_eq!(max_age, actix_web::cookie::time::Duration::hours(1));
    let c = r.cookie_value();
    assert_near(fx.store_ttl(&c).await, HOUR, SLACK, "store TTL");
    if let Some(pttl) = fx.redis_pttl(&c) {
        assert_near(pttl, HOUR, SLACK, "Redis PTTL");
    }

    fx.clock.advance(HOUR - Duration::from_secs(30));
    let r = send(&app, "/whoami", Some(&c)).await;
    assert_eq!(r.body, "u-1");
    assert!(r.cookie.is_none(), "reads do not extend by default");
    fx.clock.advance(Duration::from_secs(30) + SLACK);
    assert_eq!(send(&app, "/whoami", Some(&c)).await.body, "anonymous");
    assert!(!fx.is_stored(&c).await);
    assert_eq!(fx.store.count().await.unwrap(), 0);
}

async fn persistent_cookie_slides_on_every_request(fx: Fixture) {
    let app = fx.app(Lifecycle::PersistentSliding(HOUR)).await;
    let c = send(&app, "/login/u-1", None).await.cookie_value();
    let refreshes = fx.counted.calls();

    // Each read calls `update_ttl` (our `refresh`) and re-sends the cookie's Max-Age.
    for _ in 0..2 {
        fx.clock.advance(HOUR * 2 / 3);
        let r = send(&app, "/whoami", Some(&c)).await;
        assert_eq!(r.body, "u-1", "expired although read within its TTL");
        let renewed = r.cookie.as_ref().expect("cookie re-sent");
        assert_eq!(
            renewed.max_age(),
            Some(actix_web::cookie::time::Duration::hours(1))
        );
        assert_eq!(fx.key_in(renewed.value()), fx.key_in(&c));
        assert_near(fx.store_ttl(&c).await, HOUR, SLACK, "TTL after a read");
    }
    assert!(fx.counted.calls() > refreshes);
    assert_eq!(
        fx.counted.landed.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no writes"
    );

    // Idle for longer than the TTL: gone, and a later read brings nothing back.
    fx.clock.advance(HOUR + SLACK);
    let r = send(&app, "/whoami", Some(&c)).await;
    assert_eq!(r.body, "anonymous");
    assert!(!fx.is_stored(&c).await);
    assert_eq!(fx.store.count().await.unwrap(), 0);
}

async fn default_ttl_is_a_day(fx: Fixture) {
    let app = fx.app(Lifecycle::Default).await;
    let r = send(&app, "/insert", None).await;
    assert_eq!(r.cookie.as_ref().unwrap().max_age(), None);
    assert_near(
        fx.store_ttl(&r.cookie_value()).await,
        DAY,
        SLACK,
        "store TTL",
    );
}

async fn renew_cycles_the_id(fx: Fixture) {
    let app = fx.app(Lifecycle::Browser(HOUR)).await;
    let anonymous = send(&app, "/insert", None).await.cookie_value();

    // Login renews: a fresh id with the data, the old id dead.
    let r = send(&app, "/login/u-1", Some(&anonymous)).await;
    let logged_in = r.cookie_value();
    assert_ne!(fx.key_in(&logged_in), fx.key_in(&anonymous));
    assert!(!fx.is_stored(&anonymous).await, "old id still live");
    assert_eq!(send(&app, "/get", Some(&anonymous)).await.body, "None");
    assert_eq!(send(&app, "/get", Some(&logged_in)).await.body, "Some(42)");
    assert_eq!(send(&app, "/whoami", Some(&logged_in)).await.body, "u-1");
    assert_eq!(fx.store.count().await.unwrap(), 1);
    let listed = fx.store.list_user("u-1").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].handle, fx.sid(&logged_in).handle());

    // A bare renew does the same.
    let renewed = send(&app, "/renew", Some(&logged_in)).await.cookie_value();
    assert_ne!(fx.key_in(&renewed), fx.key_in(&logged_in));
    assert!(!fx.is_stored(&logged_in).await);
    assert_eq!(
        send(&app, "/whoami", Some(&logged_in)).await.body,
        "anonymous"
    );
    assert_eq!(send(&app, "/whoami", Some(&renewed)).await.body, "u-1");
    assert_near(fx.store_ttl(&renewed).await, HOUR, SLACK, "TTL after renew");
    assert_eq!(fx.store.count().await.unwrap(), 1);
}

async fn update_overtaken_by_logout_everywhere_is_dropped(fx: Fixture) {
    let app = fx.app(Lifecycle::Browser(HOUR)).await;
    let c = send(&app, "/login/u-1", None).await.cookie_value();
    let r = send(&app, "/overtaken_by_logout_everywhere", Some(&c)).await;
    // The request succeeds; its write is dropped; the cookie names the same, dead session.
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(fx.key_in(&r.cookie_value()), fx.key_in(&c));
    assert_eq!(
        fx.counted.dropped.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert!(!fx.is_stored(&c).await, "the logout was undone");
    assert_eq!(fx.store.count().await.unwrap(), 0);
    assert!(fx.store.list_user("u-1").await.unwrap().is_empty());
    assert_eq!(
        send(&app, "/whoami", Some(&r.cookie_value())).await.body,
        "anonymous"
    );
}

async fn reserved_key_fails_without_writing(fx: Fixture) {
    let app = fx.app(Lifecycle::Browser(HOUR)).await;
    let r = send(&app, "/insert_reserved", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        r.body.is_empty(),
        "actix-session's 500s are opaque: {:?}",
        r.body
    );
    let logged = r.error.expect("a service error");
    assert!(logged.contains("session store: save failed"), "{logged}");
    assert_eq!(fx.store.count().await.unwrap(), 0);

    let c = send(&app, "/insert", None).await.cookie_value();
    let r = send(&app, "/insert_reserved", Some(&c)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let logged = r.error.expect("a service error");
    assert!(logged.contains("session store: update failed"), "{logged}");
    assert!(logged.contains("__session__"), "{logged}");
    assert!(
        !logged.contains(&fx.key_in(&c)),
        "token in the error: {logged}"
    );
    let stored = fx.stored(&c).await.unwrap();
    assert_eq!(
        stored.data().len(),
        1,
        "data changed: {:?}",
        stored.data().keys()
    );
}
