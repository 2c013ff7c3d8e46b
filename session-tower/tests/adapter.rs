//! The adapter called directly, the way tower-sessions calls it: id collisions, last writer
//! wins, no resurrection, expiry edge cases, error mapping and what never gets printed.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use adapter_testkit::Kind;
use common::Fixture;
use serde_json::{json, Value};
use session_core::{PutMode, SessionConfig, SessionStoreExt, WriteOptions};
use session_memory::MemoryStore;
use session_tower::TowerStore;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::Error as TowerError;
use tower_sessions::SessionStore as _;

fn record(pairs: &[(&str, Value)], expires_in: time::Duration) -> Record {
    Record {
        id: Id::default(),
        data: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        expiry_date: OffsetDateTime::now_utc() + expires_in,
    }
}

fn data(pairs: &[(&str, Value)]) -> HashMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

adapter_testkit::backend_tests!(crate::Fixture; [
    create_never_overwrites, save_is_last_writer_wins, save_never_creates,
    past_expiry_ends_the_session, load_gives_back_the_record, reserved_key_is_encode_error
]; memory: Memory, redis: Redis);

async fn create_never_overwrites(fx: Fixture) {
    let tower = fx.tower();
    let taken = Id::default();
    let victim = json!({"user": {"sub": "victim"}})
        .as_object()
        .unwrap()
        .clone();
    let sid = TowerStore::session_id(&taken);
    fx.store
        .put(
            &sid,
            Arc::new(victim.clone()),
            PutMode::Create,
            WriteOptions::new(),
        )
        .await
        .expect("pre-inserted");

    let mut rec = record(&[("foo", json!(1))], time::Duration::hours(1));
    rec.id = taken;
    tower.create(&mut rec).await.unwrap();
    assert_ne!(rec.id, taken, "kept a taken id");
    assert_eq!(fx.store.load(&sid).await.unwrap().unwrap().data(), &victim);
    let created = tower.load(&rec.id).await.unwrap().expect("created");
    assert_eq!(created.data, data(&[("foo", json!(1))]));
    assert_eq!(fx.store.count().await.unwrap(), 2);
}

async fn save_is_last_writer_wins(fx: Fixture) {
    let tower = fx.tower();
    let mut rec = record(&[("a", json!(1))], time::Duration::hours(1));
    tower.create(&mut rec).await.unwrap();
    let sid = TowerStore::session_id(&rec.id);

    // Another writer changes the session (a new version) after tower-sessions loaded it.
    fx.store
        .update(&sid, |d| {
            d.insert("other".into(), json!(true));
        })
        .await
        .unwrap()
        .unwrap();
    rec.data = data(&[("a", json!(2))]);
    tower.save(&rec).await.expect("no Conflict");
    assert_eq!(tower.load(&rec.id).await.unwrap().unwrap().data, rec.data);
}

async fn save_never_creates(fx: Fixture) {
    let tower = fx.tower();
    let never_issued = record(&[("a", json!(1))], time::Duration::hours(1));
    tower.save(&never_issued).await.unwrap();
    assert!(tower.load(&never_issued.id).await.unwrap().is_none());

    // A save racing a logout (after the delete) does not bring the session back.
    let mut rec = record(&[("a", json!(1))], time::Duration::hours(1));
    tower.create(&mut rec).await.unwrap();
    tower.delete(&rec.id).await.unwrap();
    tower.save(&rec).await.unwrap();
    assert!(tower.load(&rec.id).await.unwrap().is_none());
    assert_eq!(fx.store.count().await.unwrap(), 0);
    tower
        .delete(&rec.id)
        .await
        .expect("deleting a missing session is fine");

    // Nor does one after "log out everywhere".
    let mut rec = record(&[("user", json!({"sub": "u-1"}))], time::Duration::hours(1));
    tower.create(&mut rec).await.unwrap();
    assert_eq!(fx.store.delete_user("u-1").await.unwrap(), 1);
    rec.data.insert("a".into(), json!(2));
    tower.save(&rec).await.unwrap();
    assert!(tower.load(&rec.id).await.unwrap().is_none());
    assert!(fx.store.list_user("u-1").await.unwrap().is_empty());
}

async fn past_expiry_ends_the_session(fx: Fixture) {
    let tower = fx.tower();
    let mut born_dead = record(&[("a", json!(1))], -time::Duration::seconds(1));
    tower.create(&mut born_dead).await.unwrap();
    assert!(tower.load(&born_dead.id).await.unwrap().is_none());

    let mut rec = record(&[("a", json!(1))], time::Duration::hours(1));
    tower.create(&mut rec).await.unwrap();
    rec.expiry_date = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    tower.save(&rec).await.unwrap();
    assert!(tower.load(&rec.id).await.unwrap().is_none());
    assert_eq!(fx.store.count().await.unwrap(), 0);
}

async fn load_gives_back_the_record(fx: Fixture) {
    let tower = fx.tower();
    let mut rec = record(
        &[("user", json!({"sub": "u-1"})), ("n", json!(3))],
        time::Duration::minutes(30),
    );
    tower.create(&mut rec).await.unwrap();
    let loaded = tower.load(&rec.id).await.unwrap().unwrap();
    assert_eq!((loaded.id, &loaded.data), (rec.id, &rec.data));
    // Our stores keep milliseconds; the manual clock started at most SLACK before the write.
    let drift = (loaded.expiry_date - rec.expiry_date).abs();
    assert!(
        drift < time::Duration::seconds(5),
        "expiry drifted by {drift}"
    );

    fx.clock.advance(Duration::from_secs(30 * 60 + 5));
    assert!(tower.load(&rec.id).await.unwrap().is_none(), "expired");
}

async fn reserved_key_is_encode_error(fx: Fixture) {
    let tower = fx.tower();
    let mut rec = record(&[("__session__", json!(1))], time::Duration::hours(1));
    let err = tower.create(&mut rec).await.unwrap_err();
    assert_no_secret(&err, &rec.id);
    assert!(
        matches!(&err, TowerError::Encode(m) if m.contains("__session__")),
        "{err:?}"
    );
    assert_eq!(fx.store.count().await.unwrap(), 0);

    let mut ok = record(&[("a", json!(1))], time::Duration::hours(1));
    tower.create(&mut ok).await.unwrap();
    ok.data.insert("__session__".into(), json!({}));
    let err = tower.save(&ok).await.unwrap_err();
    assert_no_secret(&err, &ok.id);
    assert!(matches!(err, TowerError::Encode(_)), "{err:?}");
    assert_eq!(tower.load(&ok.id).await.unwrap().unwrap().data.len(), 1);
}

/// Neither the cookie value nor the derived store token appears in the error.
fn assert_no_secret(err: &TowerError, id: &Id) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(&id.to_string()), "cookie in error: {shown}");
    let token = TowerStore::session_id(id);
    assert!(
        !shown.contains(token.expose_token()),
        "token in error: {shown}"
    );
}

#[tokio::test]
async fn too_large_is_encode_error() {
    let config = SessionConfig {
        max_session_bytes: 64,
        ..SessionConfig::default()
    };
    let tower = TowerStore::new(Arc::new(MemoryStore::builder().config(config).build()));
    let mut rec = record(
        &[("blob", json!("x".repeat(100)))],
        time::Duration::hours(1),
    );
    let err = tower.create(&mut rec).await.unwrap_err();
    assert!(matches!(err, TowerError::Encode(_)), "{err:?}");
}

#[tokio::test]
async fn redis_outage_is_backend_error_without_secrets() {
    let mut fx = Fixture::start(Kind::Redis).await;
    let tower = fx.tower();
    let mut rec = record(&[("a", json!(1))], time::Duration::hours(1));
    tower.create(&mut rec).await.unwrap();

    fx.redis.as_mut().unwrap().0.kill();
    let err = tower.load(&rec.id).await.unwrap_err();
    assert!(
        matches!(&err, TowerError::Backend(m) if m.starts_with("redis")),
        "{err:?}"
    );
    assert_no_secret(&err, &rec.id);
    let err = tower.save(&rec).await.unwrap_err();
    assert!(matches!(err, TowerError::Backend(_)), "{err:?}");
    assert_no_secret(&err, &rec.id);
}

#[tokio::test]
async fn redis_value_is_the_existing_service_format() {
    let fx = Fixture::start(Kind::Redis).await;
    let mut rec = record(
        &[("csrf_token", json!("t")), ("n", json!(1))],
        time::Duration::hours(1),
    );
    fx.tower().create(&mut rec).await.unwrap();
    let (server, prefix) = fx.redis.as_ref().unwrap();
    let key = format!("{prefix}{}", TowerStore::session_id(&rec.id).expose_token());
    let raw: String = ::redis::cmd("GET")
        .arg(&key)
        .query(&mut server.connection())
        .unwrap();
    let value: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(value["csrf_token"], "t", "{raw}");
    assert_eq!(value["n"], 1, "{raw}");
}

#[tokio::test]
async fn debug_shows_no_secrets() {
    let (_server, store) = adapter_testkit::redis_with_password("hunter2-secret").await;
    let tower = TowerStore::new(Arc::new(store));
    let mut rec = record(&[("a", json!(1))], time::Duration::hours(1));
    tower.create(&mut rec).await.unwrap();

    let shown = format!("{tower:?} {tower:#?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains(&rec.id.to_string()), "{shown}");
    assert_eq!(
        format!("{tower:?}"),
        r#"TowerStore { backend: "redis", .. }"#
    );
}
