//! The existing Python service and this store share sessions in both directions.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{seed_data, store_on};
use python_impl::dumps;
use redis::Commands;
use redis_harness::RedisServer;
use serde_json::{json, Value};
use session_core::{
    Clock, Error, ManualClock, SessionConfig, SessionId, SessionStore, SessionStoreExt,
    RESERVED_KEY,
};
use session_redis::codec::{self, Stored};

#[path = "common/python.rs"]
mod python_impl;

fn default_config() -> SessionConfig {
    SessionConfig::default() // the existing service's prefix `session:` and TTL 7200
}

/// A store with the existing service's settings on the system clock.
async fn system_store(server: &RedisServer) -> session_redis::RedisStore {
    store_on(
        server,
        default_config(),
        false,
        Arc::new(session_core::SystemClock),
    )
    .await
}

#[tokio::test]
async fn a_session_the_python_service_wrote_loads() {
    let server = RedisServer::start();
    let clock = ManualClock::starting_now();
    let store = store_on(&server, default_config(), false, Arc::new(clock.clone())).await;
    let mut con = server.connection();

    let id = SessionId::generate();
    let seed = seed_data("aaron");
    let key = format!("session:{}", id.expose_token());
    let _: () = con.set_ex(&key, dumps(&seed), 7200).unwrap();

    let session = store
        .get(&id)
        .await
        .unwrap()
        .expect("the foreign session loads");
    assert_eq!(session.data(), &seed);
    let lifetime = session.lifetime();
    assert_eq!(
        lifetime.created_at.as_millis(),
        1_717_171_717_250,
        "from the `created` float"
    );
    assert_eq!(lifetime.idle_timeout, Duration::from_secs(7200));
    assert_eq!(lifetime.absolute_expires_at, None);
    let remaining = lifetime.remaining(clock.now());
    assert!(
        remaining <= Duration::from_secs(7200) && remaining > Duration::from_secs(7100),
        "{remaining:?}"
    );

    // It iterates. Refresh slides it as the service's EXPIRE would (TTL exactly 7200 s, the
    // value untouched) and indexes it for counting; cleanup's reconcile pass lists it by user.
    let records: Vec<_> = futures::StreamExt::collect::<Vec<_>>(store.sessions(100)).await;
    assert_eq!(records.len(), 1);
    let _: () = con.expire(&key, 60).unwrap();
    assert!(store.refresh(&id).await.unwrap());
    let ttl: i64 = con.ttl(&key).unwrap();
    assert_eq!(ttl, 7200, "refresh gives the configured TTL, no grace");
    let raw: String = con.get(&key).unwrap();
    assert_eq!(raw, dumps(&seed), "refresh never rewrites the value");
    assert_eq!(store.count().await.unwrap(), 1);
    let user = "aaron-7f3c9a2e-4b1d-4e8f-9a6c-2d5e8b1f0c3a";
    assert_eq!(store.list_user(user).await.unwrap().len(), 0);
    store.cleanup().await.unwrap();
    assert_eq!(store.list_user(user).await.unwrap().len(), 1);
    assert_eq!(store.count().await.unwrap(), 1);
    let again = store.get(&id).await.unwrap().unwrap();
    assert_eq!(again.data(), &seed);
    assert_eq!(again.lifetime().created_at, lifetime.created_at);

    // A stale save of the pre-refresh load conflicts; delete removes everything.
    assert!(matches!(store.save(session).await, Err(Error::Conflict)));
    assert!(store.delete(&id).await.unwrap());
    assert!(!con.exists::<_, bool>(&key).unwrap());
    assert_eq!(store.count().await.unwrap(), 0);
}

#[tokio::test]
async fn a_session_we_wrote_reads_back_through_plain_get() {
    let server = RedisServer::start();
    let store = store_on(
        &server,
        default_config(),
        false,
        Arc::new(ManualClock::starting_now()),
    )
    .await;
    let mut con = server.connection();

    let seed = seed_data("bo");
    let session = store.create(seed.clone()).await.unwrap();
    let key = format!("session:{}", session.id().expose_token());
    let raw: String = con.get(&key).unwrap();
    let mut object: serde_json::Map<String, Value> = serde_json::from_str(&raw).unwrap();

    // What the service's `json.loads` sees: its members where it expects them, plus ours first.
    assert_eq!(object.keys().next().map(String::as_str), Some(RESERVED_KEY));
    assert_eq!(object["user"]["username"], "bo");
    object.shift_remove(RESERVED_KEY);
    assert_eq!(object, seed);
    // The Redis TTL is the idle timeout, as the service's SETEX sets it.
    let ttl: i64 = con.ttl(&key).unwrap();
    assert!((7190..=7200).contains(&ttl), "{ttl}");

    // The script's encoding is byte for byte the codec's canonical one.
    let Stored::Ours { meta, data } = codec::decode(raw.as_bytes()).unwrap() else {
        panic!("ours")
    };
    assert_eq!(codec::encode(&meta, &data), raw.as_bytes());
    assert_eq!(codec::version_of(raw.as_bytes()), session.version());
}

#[tokio::test]
async fn python_rewrites_keep_working_and_make_stale_saves_conflict() {
    let server = RedisServer::start();
    let store = store_on(
        &server,
        default_config(),
        false,
        Arc::new(ManualClock::starting_now()),
    )
    .await;
    let mut con = server.connection();

    let mut seed = seed_data("cy");
    seed.insert("display_name".into(), json!("Zoë ✓"));
    seed.insert("ratio".into(), json!(1.10)); // floats must survive refresh byte for byte
    let before = store.create(seed).await.unwrap();
    let id = before.id().clone();
    let key = format!("session:{}", id.expose_token());

    // The service: session = json.loads(GET); session["csrf_token"] = ...; SETEX(json.dumps)
    let raw: String = con.get(&key).unwrap();
    let mut object: serde_json::Map<String, Value> = serde_json::from_str(&raw).unwrap();
    object.insert("csrf_token".into(), json!("rotated-by-python"));
    let rewritten = dumps(&object);
    assert!(
        rewritten.starts_with(r#"{"__session__": {"c": "#),
        "{rewritten}"
    );
    let _: () = con.set_ex(&key, &rewritten, 7200).unwrap();

    // Our stale copy conflicts; a fresh load sees the service's change and saves fine.
    assert!(matches!(
        store.save(before.clone()).await,
        Err(Error::Conflict)
    ));
    let mut fresh = store.get(&id).await.unwrap().unwrap();
    assert_eq!(fresh.data()["csrf_token"], "rotated-by-python");
    assert_eq!(fresh.data()["display_name"], "Zoë ✓");

    // Refresh moves only the TTL: the service's bytes stay exactly as written, and the
    // version with them, so a save of the load before the refresh still lands.
    assert!(store.refresh(&id).await.unwrap());
    let refreshed: String = con.get(&key).unwrap();
    assert_eq!(refreshed, rewritten);
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().version(),
        fresh.version(),
        "refresh kept the version"
    );

    fresh.insert("theme", "dark").unwrap();
    let saved = store.save(fresh).await.unwrap();
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().data()["theme"],
        "dark"
    );
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().version(),
        saved.version()
    );

    // And the service can still read what we wrote.
    let raw: String = con.get(&key).unwrap();
    let object: serde_json::Map<String, Value> = serde_json::from_str(&raw).unwrap();
    assert_eq!(object["csrf_token"], "rotated-by-python");
    assert_eq!(object["ratio"], 1.1);
}

/// The existing service deletes a session with a plain `DEL` (`del sessions[token]`): our
/// indexes still name it until a cleanup pass drops the entries whose key is gone.
#[tokio::test]
async fn cleanup_repairs_index_entries_of_sessions_deleted_by_another_writer() {
    let server = RedisServer::start();
    let clock = Arc::new(session_core::SystemClock);
    let store = store_on(&server, Default::default(), false, clock).await;
    let mut con = server.connection();
    let gone = store.create(seed_data("dee")).await.unwrap();
    let kept = store.create(seed_data("dee")).await.unwrap();
    let user = seed_data("dee")["user"]["sub"].as_str().unwrap().to_owned();

    let _: () = con
        .del(format!("session:{}", gone.id().expose_token()))
        .unwrap();
    // Before the repair the count still includes the deleted session; listing skips it.
    assert_eq!(store.count().await.unwrap(), 2);
    assert_eq!(store.list_user(&user).await.unwrap().len(), 1);

    let report = store.cleanup().await.unwrap();
    assert_eq!(report.removed, 0);
    assert!(report.repaired >= 1, "{report:?}");
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(store.list_user(&user).await.unwrap().len(), 1);
    assert!(
        store.exists(kept.id()).await.unwrap(),
        "cleanup touched a live session"
    );
    let members: Vec<String> = con.zrange("session:~exp", 0, -1).unwrap();
    assert_eq!(members, vec![kept.id().expose_token().to_owned()]);
}

/// Numbers keep the digits the existing service wrote (`time.time()` floats, integers past 64
/// bits, `-0.0`, subnormals, exponents) through every operation of ours, whether or not it
/// rewrites the value; text with non-ASCII characters (which `json.dumps` escapes) keeps its
/// characters.
#[tokio::test]
async fn python_numbers_and_text_survive_every_write_exactly() {
    let server = RedisServer::start();
    let store = system_store(&server).await;
    let mut con = server.connection();
    let numbers = [
        ("created", "1795926903.3024395"),
        ("big", "18446744073709551617"),
        ("neg_zero", "-0.0"),
        ("tiny", "5e-324"),
        ("huge", "1e+16"),
        ("precise", "0.30000000000000004"),
    ];
    let members: Vec<String> = numbers
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    // Exactly what `json.dumps` writes (ensure_ascii escapes, ", " and ": " separators).
    let python = format!(
        r#"{{"user": {{"sub": "u-42", "username": "\u00e9l\u00e8ve"}}, {}, "text": "caf\u00e9 \ud83d\ude00", "csrf_token": "t"}}"#,
        members.join(", ")
    );
    let id = SessionId::generate();
    let key = format!("session:{}", id.expose_token());
    let _: () = con.set_ex(&key, &python, 7200).unwrap();

    let check = |what: &str, data: &serde_json::Map<String, Value>| {
        for (k, text) in numbers {
            assert_eq!(data[k].to_string(), text, "{what}: {k}");
        }
        assert_eq!(data["user"]["username"], "élève", "{what}");
        assert_eq!(data["text"], "café 😀", "{what}");
    };
    let stored = |con: &mut redis::Connection, key: &str| -> serde_json::Map<String, Value> {
        let raw: String = con.get(key).unwrap();
        let mut object: serde_json::Map<String, Value> = serde_json::from_str(&raw).unwrap();
        object.shift_remove(RESERVED_KEY);
        object
    };

    let loaded = store.get(&id).await.unwrap().expect("the foreign session");
    check("load", loaded.data());
    assert_eq!(store.list_user("u-42").await.unwrap().len(), 0);

    // Refresh moves only the TTL; cleanup's reconcile pass gives it metadata and index
    // entries, its data unchanged.
    let before: String = con.get(&key).unwrap();
    assert!(store.refresh(&id).await.unwrap());
    let after: String = con.get(&key).unwrap();
    assert_eq!(after, before, "refresh never rewrites the value");
    store.cleanup().await.unwrap();
    check("stored after cleanup", &stored(&mut con, &key));
    assert_eq!(store.list_user("u-42").await.unwrap().len(), 1);

    // A change to one member leaves the others' digits alone.
    store
        .update(&id, |d| {
            d.insert("theme".into(), json!("dark"));
        })
        .await
        .unwrap()
        .unwrap();
    let after_update = stored(&mut con, &key);
    check("stored after update", &after_update);
    assert_eq!(after_update["theme"], "dark");

    // A save of an unchanged copy and a rotation copy the numbers as they are.
    let copy = store.get(&id).await.unwrap().unwrap();
    store.save(copy).await.unwrap();
    check("stored after save", &stored(&mut con, &key));
    let rotated = store.rotate(&id).await.unwrap().unwrap();
    check("rotated", rotated.data());
    let rotated_key = format!("session:{}", rotated.id().expose_token());
    check("stored after rotate", &stored(&mut con, &rotated_key));
}

/// 1,000 sessions written exactly as the existing service writes them (`SETEX` of
/// `json.dumps`), 20 per user: none is in our indexes until a cleanup pass adopts them; after
/// it they are counted, listed and revoked ("log out everywhere" misses none), and their data
/// is unchanged.
#[tokio::test]
async fn cleanup_indexes_sessions_the_python_service_wrote() {
    let server = RedisServer::start();
    let store = system_store(&server).await;
    let mut con = server.connection();
    let mut ids = Vec::new();
    let mut pipe = redis::pipe();
    for i in 0..1_000 {
        let id = SessionId::generate();
        let data = json!({"user": {"sub": format!("sub-{}", i % 50), "username": format!("u{i}")},
                          "created": 1_795_926_903.302_439_5, "csrf_token": "t"});
        pipe.cmd("SETEX")
            .arg(format!("session:{}", id.expose_token()))
            .arg(7200)
            .arg(dumps(data.as_object().unwrap()))
            .ignore();
        ids.push(id);
    }
    let () = pipe.query(&mut con).unwrap();
    assert_eq!(store.count().await.unwrap(), 0, "not indexed yet");
    assert_eq!(store.list_user("sub-6").await.unwrap().len(), 0);

    let report = store.cleanup().await.unwrap();
    assert_eq!(report.removed, 0);
    assert!(report.repaired >= 1_000, "{report:?}");
    assert_eq!(store.count().await.unwrap(), 1_000);
    assert_eq!(store.list_user("sub-6").await.unwrap().len(), 20);
    let again = store.cleanup().await.unwrap();
    assert_eq!(
        again.repaired, 0,
        "a second pass finds nothing new: {again:?}"
    );

    assert_eq!(store.delete_user("sub-6").await.unwrap(), 20);
    for (i, id) in ids.iter().enumerate() {
        let loaded = store.get(id).await.unwrap();
        assert_eq!(loaded.is_none(), i % 50 == 6, "session {i}");
        if let Some(s) = loaded {
            assert_eq!(s.data()["created"].to_string(), "1795926903.3024395");
        }
    }
    assert_eq!(store.count().await.unwrap(), 980);
}

/// "Log out everywhere" while the existing service writes too: `delete_user` reaches only
/// the sessions this store wrote or adopted (as its docs say); `delete_user_everywhere`
/// adopts the service's first and reaches all of them.
#[tokio::test]
async fn delete_user_everywhere_reaches_the_services_sessions() {
    let server = RedisServer::start();
    let store = system_store(&server).await;
    let mut con = server.connection();
    let ours = store
        .create(
            json!({"user": {"sub": "sub-1"}})
                .as_object()
                .unwrap()
                .clone(),
        )
        .await
        .unwrap();
    let mut theirs = Vec::new();
    for i in 0..3 {
        let id = SessionId::generate();
        let data = json!({"user": {"sub": format!("sub-{}", i % 2 + 1)}, "csrf_token": "t"});
        let () = redis::cmd("SETEX")
            .arg(format!("session:{}", id.expose_token()))
            .arg(7200)
            .arg(dumps(data.as_object().unwrap()))
            .query(&mut con)
            .unwrap();
        theirs.push(id);
    }
    // theirs[1] is sub-2's; theirs[0] and theirs[2] are sub-1's, never touched by this store.
    assert_eq!(store.delete_user("sub-1").await.unwrap(), 1, "only ours");
    assert!(store.get(ours.id()).await.unwrap().is_none());
    assert!(store.get(&theirs[0]).await.unwrap().is_some());

    assert_eq!(store.delete_user_everywhere("sub-1").await.unwrap(), 2);
    assert!(store.get(&theirs[0]).await.unwrap().is_none());
    assert!(store.get(&theirs[2]).await.unwrap().is_none());
    assert!(
        store.get(&theirs[1]).await.unwrap().is_some(),
        "sub-2's stays"
    );
}

/// Redis's clock and the key's TTL decide liveness, as for the existing service: its `EXPIRE`
/// keeps a session of ours alive past the expiry we set, and our TTL is exactly its `SETEX`'s.
#[tokio::test]
async fn the_services_expire_keeps_our_session_live() {
    let server = RedisServer::start();
    let store = system_store(&server).await;
    let mut con = server.connection();

    // SESSION_TTL=7200 gives TTL 7200, as the service's SETEX does.
    let plain = store.create(seed_data("tia")).await.unwrap();
    let plain_key = format!("session:{}", plain.id().expose_token());
    let pttl: i64 = con.pttl(&plain_key).unwrap();
    assert!((7_199_000..=7_200_000).contains(&pttl), "{pttl}");

    // Two sessions that idle out after 1 s; the service refreshes one of them.
    let short = session_core::WriteOptions::new().with_idle_timeout(Duration::from_secs(1));
    let data = Arc::new(seed_data("tia"));
    let (kept, dropped) = (SessionId::generate(), SessionId::generate());
    for id in [&kept, &dropped] {
        store
            .put(id, data.clone(), session_core::PutMode::Create, short)
            .await
            .unwrap();
    }
    let expiry = store
        .get(&kept)
        .await
        .unwrap()
        .unwrap()
        .lifetime()
        .expires_at();
    let kept_key = format!("session:{}", kept.expose_token());
    let _: () = con.expire(&kept_key, 60).unwrap();

    // Wait, on the server's clock, until the expiry we set has passed.
    let server_ms = |con: &mut redis::Connection| -> u64 {
        let (s, us): (u64, u64) = redis::cmd("TIME").query(con).unwrap();
        s * 1000 + us / 1000
    };
    assert!(
        redis_harness::wait_until(Duration::from_secs(10), || server_ms(&mut con)
            > expiry.as_millis() + 100),
        "the server's clock did not pass the expiry"
    );
    assert!(store.get(&dropped).await.unwrap().is_none(), "control");
    let loaded = store
        .get(&kept)
        .await
        .unwrap()
        .expect("the service's EXPIRE keeps it live for us too");
    let remaining = loaded.lifetime().remaining(session_core::SystemClock.now());
    assert!(
        remaining > Duration::from_secs(50) && remaining <= Duration::from_secs(60),
        "{remaining:?}"
    );
    assert!(store.exists(&kept).await.unwrap());
    assert_eq!(store.count().await.unwrap(), 2, "kept and plain");
    assert!(
        store
            .list_user("tia-7f3c9a2e-4b1d-4e8f-9a6c-2d5e8b1f0c3a")
            .await
            .unwrap()
            .len()
            == 2
    );
    let _: () = con.del(&kept_key).unwrap();
    assert!(
        store.get(&kept).await.unwrap().is_none(),
        "its DEL ends it at once"
    );
}
