//! Bad input and bad stored values: typed errors, nothing else touched, never a panic.

mod common;

use std::sync::Arc;

use common::{seed_data, store_on};
use redis::Commands;
use redis_harness::RedisServer;
use serde_json::json;
use session_core::{
    Error, ManualClock, PutMode, Session, SessionConfig, SessionId, SessionStore, SessionStoreExt,
    Version, WriteOptions,
};

/// Puts one kind of garbage at `key`.
fn plant(con: &mut redis::Connection, key: &str, kind: &str) {
    let _: () = match kind {
        "hash" => con.hset(key, "f", "v").unwrap(),
        "list" => con.rpush(key, "v").unwrap(),
        "not json" => con.set(key, "not json {").unwrap(),
        "array" => con.set(key, "[1, 2]").unwrap(),
        "string" => con.set(key, "\"a string\"").unwrap(),
        "meta" => con
            .set(key, r#"{"__session__": {"c": "soon"}, "user": {}}"#)
            .unwrap(),
        "late meta" => con
            .set(key, r#"{"user": {}, "__session__": {"c": 1}}"#)
            .unwrap(),
        other => panic!("{other}"),
    };
}

fn dump(con: &mut redis::Connection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("DUMP").arg(key).query(con).unwrap()
}

#[tokio::test]
async fn corrupt_values_give_typed_errors_and_touch_nothing_else() {
    let server = RedisServer::start();
    let config = SessionConfig {
        key_prefix: "t:".into(),
        ..SessionConfig::default()
    };
    let store = store_on(
        &server,
        config,
        false,
        Arc::new(ManualClock::starting_now()),
    )
    .await;
    let mut con = server.connection();
    let neighbour = store.create(seed_data("nell")).await.unwrap();

    for kind in [
        "hash",
        "list",
        "not json",
        "array",
        "string",
        "meta",
        "late meta",
    ] {
        let id = SessionId::generate();
        let key = format!("t:{}", id.expose_token());
        plant(&mut con, &key, kind);
        let before = dump(&mut con, &key);

        let err = store.load(&id).await.expect_err(kind);
        assert!(matches!(err, Error::Corrupt { .. }), "{kind}: {err:?}");
        assert!(err.to_string().contains(&id.fingerprint()), "{kind}: {err}");
        assert!(!err.to_string().contains(id.expose_token()), "{kind}");

        let data = seed_data("x");
        let fake = Session::from_parts(
            id.clone(),
            Arc::new(data.clone()),
            *neighbour.lifetime(),
            Version(1),
        );
        let writes = [
            ("set", store.set(&id, data.clone()).await.map(|_| ())),
            (
                "create",
                store
                    .put(
                        &id,
                        Arc::new(data.clone()),
                        PutMode::Create,
                        WriteOptions::new(),
                    )
                    .await
                    .map(|_| ()),
            ),
            (
                "if_live",
                store
                    .put(
                        &id,
                        Arc::new(data.clone()),
                        PutMode::IfLive,
                        WriteOptions::new(),
                    )
                    .await
                    .map(|_| ()),
            ),
            ("save", store.save(fake).await.map(|_| ())),
            ("refresh", store.refresh(&id).await.map(|_| ())),
            ("rotate", store.rotate(&id).await.map(|_| ())),
        ];
        for (op, result) in writes {
            assert!(
                matches!(result, Err(Error::Corrupt { .. })),
                "{kind} {op}: {result:?}"
            );
            assert_eq!(
                dump(&mut con, &key),
                before,
                "{kind} {op} changed the value"
            );
        }
        // Iteration skips it; delete removes it (reporting no live session).
        let page = store.scan(None, 1000).await.unwrap();
        assert!(
            page.sessions.iter().all(|r| r.id.as_ref() != Some(&id)),
            "{kind}"
        );
        assert!(!store.delete(&id).await.unwrap(), "{kind}");
        assert!(!con.exists::<_, bool>(&key).unwrap(), "{kind}");
    }
    assert_eq!(
        store.get(neighbour.id()).await.unwrap().unwrap().data(),
        neighbour.data()
    );
    assert_eq!(store.count().await.unwrap(), 1);
}

#[tokio::test]
async fn oversized_sessions_are_refused_before_anything_is_written() {
    let server = RedisServer::start();
    let config = SessionConfig {
        max_session_bytes: 2048,
        ..SessionConfig::default()
    };
    let store = store_on(
        &server,
        config,
        false,
        Arc::new(ManualClock::starting_now()),
    )
    .await;
    let mut con = server.connection();
    let big = json!({"blob": "x".repeat(4096)})
        .as_object()
        .unwrap()
        .clone();

    let id = SessionId::generate();
    let key = format!("session:{}", id.expose_token());
    assert!(matches!(
        store.set(&id, big.clone()).await,
        Err(Error::TooLarge { limit: 2048, .. })
    ));
    assert!(!con.exists::<_, bool>(&key).unwrap());
    assert!(matches!(
        store.create(big.clone()).await,
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(common::all_keys(&mut con), Vec::<String>::new());

    let mut session = store.create(seed_data("ola")).await.unwrap();
    let before: String = con
        .get(format!("session:{}", session.id().expose_token()))
        .unwrap();
    session.insert("blob", "x".repeat(4096)).unwrap();
    assert!(matches!(
        store.save(session.clone()).await,
        Err(Error::TooLarge { .. })
    ));
    let after: String = con
        .get(format!("session:{}", session.id().expose_token()))
        .unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn malformed_tokens_never_reach_redis() {
    let server = RedisServer::start();
    let _store = store_on(
        &server,
        SessionConfig::default(),
        false,
        Arc::new(ManualClock::starting_now()),
    )
    .await;
    let mut con = server.connection();
    let processed = |con: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("stats").query(con).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("INFO stats has total_commands_processed")
    };

    let before = processed(&mut con);
    for bad in [
        "",
        "short",
        "session:abc",
        "../../etc/passwd",
        "Zx3_k9-ab8lJf1mN2oP3qR4sT5uV6wX7yZ8aB9cD0e*",
    ] {
        // The store takes only `SessionId`s, so a bad cookie stops here.
        assert!(
            matches!(SessionId::parse(bad), Err(Error::InvalidId { .. })),
            "{bad}"
        );
    }
    // Only the second INFO itself was processed in between.
    assert_eq!(processed(&mut con) - before, 1);
}
