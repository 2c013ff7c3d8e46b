//! tower-sessions' own middleware over our stores: every case a tower-sessions user relies
//! on, run on the memory store, a real Redis, and a MigratingStore (memory → Redis).

mod common;

use std::time::Duration;

use common::{assert_near, send, Fixture};
use http::StatusCode;
use tower_sessions::cookie::SameSite;
use tower_sessions::Expiry;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
/// tower-sessions' expiry when none is configured (`OnSessionEnd` or no expiry).
const TWO_WEEKS: Duration = Duration::from_secs(14 * 86_400);
/// Real time passing between tower-sessions dating a record and the store writing it.
const SLACK: Duration = Duration::from_secs(5);
/// A 22-character id that parses but was never issued.
const BOGUS: &str = "AAAAAAAAAAAAAAAAAAAAAA";

fn on_inactivity(d: Duration) -> Option<Expiry> {
    Some(Expiry::OnInactivity(time::Duration::try_from(d).unwrap()))
}

// One `#[tokio::test]` per backend and case, so a failure reads `redis::flush`.
adapter_testkit::backend_tests!(crate::Fixture; [
    no_session_set, bogus_cookie, malformed_cookie, insert_get_remove, max_age,
    writes_slide_idle_expiry, expired_session_loads_as_none, at_date_time_expiry,
    set_and_remove_expiry, cycle_id, flush, clear_with_dead_cookie_stores_nothing,
    reserved_key_fails_without_writing
]; memory: Memory, redis: Redis, migrating: Migrating);

async fn no_session_set(fx: Fixture) {
    let app = fx.app(on_inactivity(HOUR));
    for uri in ["/", "/get"] {
        let r = send(&app, uri, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.cookie.is_none(), "{uri} issued {:?}", r.cookie);
    }
    assert_eq!(fx.store.count().await.unwrap(), 0);
}

async fn bogus_cookie(fx: Fixture) {
    let app = fx.app(on_inactivity(HOUR));
    let r = send(&app, "/insert", Some(BOGUS)).await;
    assert_eq!(r.status, StatusCode::OK);
    let fresh = r.cookie_value();
    assert_ne!(fresh, BOGUS, "adopted the client's id");
    assert!(fx.is_stored(&fresh).await);
    assert!(!fx.is_stored(BOGUS).await);

    // Reading with it finds nothing and clears the cookie.
    let r = send(&app, "/get", Some(BOGUS)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "None"));
    let removal = r.cookie.expect("removal cookie");
    assert_eq!(removal.value(), "");
    assert_eq!(removal.max_age(), Some(time::Duration::ZERO));
    assert_eq!(fx.store.count().await.unwrap(), 1);
}

async fn malformed_cookie(fx: Fixture) {
    let app = fx.app(on_inactivity(HOUR));
    let long = "A".repeat(43);
    for bad in ["malformed", "", "!!!!!!!!!!!!!!!!!!!!!!", long.as_str()] {
        let r = send(&app, "/", Some(bad)).await;
        assert_eq!(r.status, StatusCode::OK, "{bad:?}");
        assert_eq!(r.cookie.expect("removal cookie").value(), "", "{bad:?}");

        let r = send(&app, "/insert", Some(bad)).await;
        assert_eq!(r.status, StatusCode::OK, "{bad:?}");
        let fresh = r.cookie_value();
        assert_ne!(fresh, bad);
        assert!(fx.is_stored(&fresh).await, "{bad:?}");
    }
    assert_eq!(fx.store.count().await.unwrap(), 4);
}

async fn insert_get_remove(fx: Fixture) {
    let app = fx.app(on_inactivity(HOUR));
    let r = send(&app, "/insert", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let cookie = r.cookie.clone().expect("session cookie");
    assert_eq!(cookie.name(), "id");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Strict));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.path(), Some("/"));
    let c = r.cookie_value();

    // Stored as a top-level key, where the existing service reads its data.
    let stored = fx.store.load(&fx.sid(&c)).await.unwrap().unwrap();
    assert_eq!(stored.data().len(), 1);
    assert_eq!(stored.data()["foo"], 42);

    let r = send(&app, "/get", Some(&c)).await;
    assert_eq!(r.body, "Some(42)");
    assert!(r.cookie.is_none(), "a read re-issued the cookie");

    let r = send(&app, "/remove", Some(&c)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.cookie_value(), c, "same session after a change");
    assert_eq!(send(&app, "/get", Some(&c)).await.body, "None");
    let stored = fx.store.load(&fx.sid(&c)).await.unwrap().unwrap();
    assert!(stored.data().is_empty());
}

async fn max_age(fx: Fixture) {
    let app = fx.app(on_inactivity(HOUR));
    let r = send(&app, "/insert", None).await;
    let max_age = r.cookie.as_ref().unwrap().max_age().expect("Max-Age");
    assert_near(max_age.try_into().unwrap(), HOUR, SLACK, "cookie Max-Age");
    let c = r.cookie_value();
    assert_near(fx.store_ttl(&c).await, HOUR, SLACK, "store TTL");
    if let Some(pttl) = fx.redis_pttl(&c) {
        assert_near(pttl, HOUR, SLACK, "Redis PTTL");
    }

    // No expiry configured: a browser-session cookie, kept by the store for tower-sessions'
    // two-week default.
    let app = fx.app(None);
    let r = send(&app, "/insert", None).await;
    assert_eq!(r.cookie.as_ref().unwrap().max_age(), None);
    assert_near(
        fx.store_ttl(&r.cookie_value()).await,
        TWO_WEEKS,
        SLACK,
        "store TTL",
    );
}

async fn writes_slide_idle_expiry(fx: Fixture) {
    let app = fx.app(on_inactivity(HOUR));
    let c = send(&app, "/insert", None).await.cookie_value();
    fx.clock.advance(HOUR * 2 / 3);
    let r = send(&app, "/remove", Some(&c)).await;
    assert_eq!(r.cookie_value(), c);
    assert_near(fx.store_ttl(&c).await, HOUR, SLACK, "TTL after a write");

    // Past the first expiry, still the same session.
    fx.clock.advance(HOUR * 2 / 3);
    let r = send(&app, "/insert", Some(&c)).await;
    assert_eq!(r.cookie_value(), c, "session was lost instead of slid");
    assert_eq!(send(&app, "/get", Some(&c)).await.body, "Some(42)");
}

async fn expired_session_loads_as_none(fx: Fixture) {
    let app = fx.app(on_inactivity(HOUR));
    let c = send(&app, "/insert", None).await.cookie_value();

    // Reads do not slide: the session dies an hour after its last write.
    fx.clock.advance(HOUR - Duration::from_secs(30));
    assert_eq!(send(&app, "/get", Some(&c)).await.body, "Some(42)");
    fx.clock.advance(Duration::from_secs(30) + SLACK);
    let r = send(&app, "/get", Some(&c)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "None"));
    assert_eq!(r.cookie.expect("removal cookie").value(), "");
    assert!(!fx.is_stored(&c).await);

    // Writing with the dead cookie starts a fresh session under a new id.
    let r = send(&app, "/insert", Some(&c)).await;
    assert_ne!(r.cookie_value(), c);
    assert!(!fx.is_stored(&c).await);
}

async fn at_date_time_expiry(fx: Fixture) {
    let ten_min = Duration::from_secs(600);
    let at = time::OffsetDateTime::now_utc() + ten_min;
    let app = fx.app(Some(Expiry::AtDateTime(at)));
    let c = send(&app, "/insert", None).await.cookie_value();
    assert_near(fx.store_ttl(&c).await, ten_min, SLACK, "store TTL");
    fx.clock.advance(ten_min + SLACK);
    assert_eq!(send(&app, "/get", Some(&c)).await.body, "None");

    // A date already past: nothing is stored.
    let past = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let app = fx.app(Some(Expiry::AtDateTime(past)));
    let r = send(&app, "/insert", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(fx.store.count().await.unwrap(), 0);
}

async fn set_and_remove_expiry(fx: Fixture) {
    let app = fx.app(on_inactivity(HOUR));
    let c = send(&app, "/insert", None).await.cookie_value();

    let r = send(&app, "/set_expiry", Some(&c)).await;
    let max_age = r.cookie.as_ref().unwrap().max_age().expect("Max-Age");
    assert_near(max_age.try_into().unwrap(), DAY, SLACK, "cookie Max-Age");
    assert_near(fx.store_ttl(&c).await, DAY, SLACK, "store TTL");
    if let Some(pttl) = fx.redis_pttl(&c) {
        assert_near(pttl, DAY, SLACK, "Redis PTTL");
    }

    let r = send(&app, "/remove_expiry", Some(&c)).await;
    assert_eq!(r.cookie.as_ref().unwrap().max_age(), None);
    assert_near(fx.store_ttl(&c).await, TWO_WEEKS, SLACK, "store TTL");
    assert_eq!(send(&app, "/get", Some(&c)).await.body, "Some(42)");
}

async fn cycle_id(fx: Fixture) {
    let app = fx.app(on_inactivity(HOUR));
    let old = send(&app, "/insert", None).await.cookie_value();
    let r = send(&app, "/cycle_id", Some(&old)).await;
    assert_eq!(r.status, StatusCode::OK);
    let new = r.cookie_value();
    assert_ne!(new, old);

    assert_eq!(send(&app, "/get", Some(&new)).await.body, "Some(42)");
    assert_eq!(send(&app, "/get", Some(&old)).await.body, "None");
    assert!(!fx.is_stored(&old).await, "old id still live");
    assert!(fx.is_stored(&new).await);
    assert_eq!(fx.store.count().await.unwrap(), 1);
}

async fn flush(fx: Fixture) {
    let app = fx.app(on_inactivity(HOUR));
    let c = send(&app, "/insert", None).await.cookie_value();
    let r = send(&app, "/flush", Some(&c)).await;
    assert_eq!(r.status, StatusCode::OK);
    let removal = r.cookie.expect("removal cookie");
    assert_eq!(removal.value(), "");
    assert_eq!(removal.max_age(), Some(time::Duration::ZERO));
    assert_eq!(removal.path(), Some("/"));
    assert!(!fx.is_stored(&c).await);
    assert_eq!(fx.store.count().await.unwrap(), 0);
    assert_eq!(send(&app, "/get", Some(&c)).await.body, "None");
}

async fn clear_with_dead_cookie_stores_nothing(fx: Fixture) {
    let app = fx.app(on_inactivity(HOUR));
    // `Session::clear` keeps the cookie's id without loading it; the write must not create a
    // session under an id the client chose.
    let r = send(&app, "/clear_insert", Some(BOGUS)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!fx.is_stored(BOGUS).await, "client-chosen id adopted");
    assert_eq!(fx.store.count().await.unwrap(), 0);

    // With a live session it replaces the data as usual.
    let c = send(&app, "/insert", None).await.cookie_value();
    let r = send(&app, "/clear_insert", Some(&c)).await;
    assert_eq!(r.cookie_value(), c);
    assert_eq!(send(&app, "/get", Some(&c)).await.body, "Some(7)");
}

async fn reserved_key_fails_without_writing(fx: Fixture) {
    let app = fx.app(on_inactivity(HOUR));
    let r = send(&app, "/insert_reserved", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(fx.store.count().await.unwrap(), 0);

    let c = send(&app, "/insert", None).await.cookie_value();
    let r = send(&app, "/insert_reserved", Some(&c)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let stored = fx.store.load(&fx.sid(&c)).await.unwrap().unwrap();
    assert_eq!(
        stored.data().len(),
        1,
        "data changed: {:?}",
        stored.data().keys()
    );
}
