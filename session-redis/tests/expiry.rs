//! Real expiry reclaims Redis memory; hashed mode keeps no token at rest.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{all_keys, seed_data, store_on};
use redis::Commands;
use redis_harness::{wait_until, RedisServer};
use session_core::{ManualClock, SessionConfig, SessionStore, SessionStoreExt, SystemClock};

#[tokio::test]
async fn expired_sessions_and_their_index_entries_leave_redis() {
    let server = RedisServer::start();
    let config =
        SessionConfig::from_lookup(|name| (name == "SESSION_TTL").then(|| "1".into())).unwrap();
    let store = store_on(&server, config, false, Arc::new(SystemClock)).await;
    let mut con = server.connection();

    let session = store.create(seed_data("eve")).await.unwrap();
    let key = format!("session:{}", session.id().expose_token());
    let user_key = format!(
        "session:~user:{}",
        session_redis::keys::user_hex("eve-7f3c9a2e-4b1d-4e8f-9a6c-2d5e8b1f0c3a")
    );
    assert!(con.exists::<_, bool>(&key).unwrap());
    assert!(con.exists::<_, bool>(&user_key).unwrap());
    assert_eq!(con.zcard::<_, u64>("session:~exp").unwrap(), 1);

    // Redis itself drops the session (its TTL). The user index has none: its entry stays
    // until cleanup finds its session gone (see the keys module).
    let gone = wait_until(Duration::from_secs(10), || {
        !con.exists::<_, bool>(&key).unwrap()
    });
    assert!(gone, "session key outlived its TTL");
    assert_eq!(
        con.pttl::<_, i64>(&user_key).unwrap(),
        -1,
        "user indexes carry no TTL"
    );
    // Redis decided: the key is gone, so the session is, and count settles the stale
    // expiry index entry itself (its expiry has passed).
    assert_eq!(store.count().await.unwrap(), 0);
    assert!(!con.exists::<_, bool>("session:~exp").unwrap());
    let report = store.cleanup().await.unwrap();
    assert_eq!(
        (report.removed, report.repaired),
        (0, 1),
        "the user index entry pruned"
    );
    assert_eq!(
        all_keys(&mut con),
        Vec::<String>::new(),
        "nothing left behind"
    );
}

#[tokio::test]
async fn hashed_mode_stores_no_token_anywhere() {
    let server = RedisServer::start();
    let clock = ManualClock::starting_now();
    let store = store_on(
        &server,
        SessionConfig::default(),
        true,
        Arc::new(clock.clone()),
    )
    .await;
    let mut con = server.connection();

    let mut tokens = Vec::new();
    for user in ["fay", "fay", "gus"] {
        let session = store.create(seed_data(user)).await.unwrap();
        store.refresh(session.id()).await.unwrap();
        let rotated = store.rotate(session.id()).await.unwrap().unwrap();
        tokens.push(session.id().expose_token().to_owned());
        tokens.push(rotated.id().expose_token().to_owned());
        assert!(store.get(rotated.id()).await.unwrap().is_some());
    }
    assert_eq!(
        store
            .list_user("fay-7f3c9a2e-4b1d-4e8f-9a6c-2d5e8b1f0c3a")
            .await
            .unwrap()
            .len(),
        2
    );

    let mut seen = Vec::new();
    for key in all_keys(&mut con) {
        let kind: String = redis::cmd("TYPE").arg(&key).query(&mut con).unwrap();
        match kind.as_str() {
            "string" => seen.push(con.get::<_, String>(&key).unwrap()),
            "zset" => seen.extend(con.zrange::<_, Vec<String>>(&key, 0, -1).unwrap()),
            other => panic!("unexpected {other} at {key}"),
        }
        seen.push(key);
    }
    assert!(seen.len() > 6, "{} keys and members", seen.len());
    for token in &tokens {
        assert!(
            seen.iter().all(|s| !s.contains(token.as_str())),
            "a token is stored"
        );
    }
}
