//! Sessions stored by this library before layout v2 keep working, and `cleanup` brings them
//! under the current index names so "log out everywhere" reaches them.

mod common;

use std::sync::Arc;

use common::{seed_data, store_on};
use redis::Commands;
use redis_harness::RedisServer;
use session_core::{Clock, SessionConfig, SessionId, SessionStore, SessionStoreExt, SystemClock};

/// A store on `server` with the existing service's settings and the system clock.
async fn store(server: &RedisServer) -> session_redis::RedisStore {
    store_on(
        server,
        SessionConfig::default(),
        false,
        Arc::new(SystemClock),
    )
    .await
}

/// Stores a session of `name`'s seed data as layout v1 wrote it: metadata with the idle expiry
/// `e` and the user id as hex. Returns its id, key and the user's hex.
fn plant_v1(con: &mut redis::Connection, name: &str, user: &str) -> (SessionId, String, String) {
    let old_hex = hex::encode(user);
    let id = SessionId::generate();
    let now = SystemClock.now().as_millis();
    let data = serde_json::to_string(&seed_data(name)).unwrap();
    let value = format!(
        r#"{{"__session__":{{"c":{now},"t":7200000,"e":{},"a":0,"w":7,"u":"{old_hex}"}},{}"#,
        now + 7_200_000,
        &data[1..]
    );
    let key = format!("session:{}", id.expose_token());
    let _: () = con.set_ex(&key, &value, 7200).unwrap();
    (id, key, old_hex)
}

#[tokio::test]
async fn cleanup_reindexes_sessions_of_the_old_layout() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();

    // A v1 session, indexed under `~user:{hex}`.
    let user = "olga-7f3c9a2e-4b1d-4e8f-9a6c-2d5e8b1f0c3a";
    let (id, key, old_hex) = plant_v1(&mut con, "olga", user);
    let now = SystemClock.now().as_millis();
    let _: () = con
        .zadd(
            format!("session:~user:{old_hex}"),
            id.expose_token(),
            now + 7_200_000,
        )
        .unwrap();

    // It loads and refreshes as it is.
    let loaded = store
        .get(&id)
        .await
        .unwrap()
        .expect("an old-layout session loads");
    assert_eq!(loaded.data(), &seed_data("olga"));
    assert!(store.refresh(&id).await.unwrap());

    // Cleanup rewrites it into the current layout: listed and revoked by user.
    store.cleanup().await.unwrap();
    let raw: String = con.get(&key).unwrap();
    assert!(!raw.contains(r#""e":"#), "{raw}");
    assert_eq!(store.list_user(user).await.unwrap().len(), 1);
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().data(),
        &seed_data("olga"),
        "data unchanged"
    );
    assert_eq!(store.delete_user(user).await.unwrap(), 1);
    assert!(store.get(&id).await.unwrap().is_none());
    // Nothing reads the old layout's index any more; cleanup prunes its entry once the
    // entry's score (the expiry it was written with) has passed.
}

#[tokio::test]
async fn rotating_an_old_layout_session_indexes_it_under_the_current_name() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    let user = "pia-7f3c9a2e-4b1d-4e8f-9a6c-2d5e8b1f0c3a";
    let (id, _, _) = plant_v1(&mut con, "pia", user);

    let rotated = store.rotate(&id).await.unwrap().expect("rotated");
    assert!(store.get(&id).await.unwrap().is_none());
    let listed = store.list_user(user).await.unwrap();
    assert_eq!(listed.len(), 1, "found by its user without a cleanup");
    assert_eq!(listed[0].handle, rotated.id().handle());
    assert_eq!(store.delete_user(user).await.unwrap(), 1);
}
