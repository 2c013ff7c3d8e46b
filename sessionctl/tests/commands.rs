//! Every subcommand against a real redis-server, including the error exits.

mod common;

use std::time::Duration;

use common::{redis_env, run, run_with_stdin, token, url};
use redis_harness::{RedisServer, ServerSpec};
use serde_json::json;
use session_store::redis::codec::{self, Meta};
use session_store::{Clock as _, SessionId, SystemClock, Timestamp};

const DATA: &str = r#"{"user":{"sub":"u-1","username":"aaron"},"csrf_token":"x"}"#;

/// A token starting with `-`, which a command line could take for a flag.
fn dash_token() -> String {
    loop {
        let t = token();
        if t.starts_with('-') {
            return t;
        }
    }
}

#[test]
fn every_subcommand_against_redis() {
    let server = RedisServer::start();
    let env = redis_env(&server);
    let t = token();

    // set / get, human and JSON
    let set = run(&env, &["--json", "set", &t, DATA, "--ttl", "600"]);
    assert_eq!(set.code, 0, "{set:?}");
    assert_eq!(set.json()["lifetime"]["idle_timeout_s"], 600);
    assert!(!set.stdout.contains(&t));
    let got = run(&env, &["get", &t]);
    assert_eq!(got.code, 0, "{got:?}");
    let data: serde_json::Value = serde_json::from_str(&got.stdout).unwrap();
    assert_eq!(
        data,
        serde_json::from_str::<serde_json::Value>(DATA).unwrap()
    );
    let got = run(&env, &["--json", "get", &t]).json();
    assert_eq!(got["data"]["user"]["username"], "aaron");
    assert_eq!(
        got["handle"],
        SessionId::parse(&t).unwrap().handle().as_str()
    );

    // the token from stdin, and one that starts with '-'
    let got = run_with_stdin(&env, &["get", "-"], &format!("{t}\n"));
    assert_eq!(got.code, 0, "{got:?}");
    let dash = dash_token();
    assert_eq!(run(&env, &["set", &dash, "{}"]).code, 0);
    assert_eq!(run(&env, &["get", &dash]).stdout.trim(), "{}");
    assert_eq!(run(&env, &["delete", &dash]).code, 0);

    // a session the existing service wrote itself: readable, counted only once indexed
    let foreign = token();
    let mut con = server.connection();
    let () = redis::cmd("SETEX")
        .arg(format!("session:{foreign}"))
        .arg(900)
        .arg(r#"{"user": {"sub": "u-2"}, "created": 1700000000.0}"#)
        .query(&mut con)
        .unwrap();
    assert_eq!(
        run(&env, &["--json", "get", &foreign]).json()["data"]["user"]["sub"],
        "u-2"
    );

    // count / list
    assert_eq!(run(&env, &["--json", "count"]).json()["count"], 1);
    assert_eq!(run(&env, &["count"]).stdout.trim(), "1");
    let listed = run(&env, &["--json", "list"]);
    assert!(!listed.stdout.contains(&t) && !listed.stdout.contains(&foreign));
    assert_eq!(listed.json()["count"], 2);
    let listed = run(&env, &["--json", "list", "--show-tokens"]);
    assert!(listed.stdout.contains(&t) && listed.stdout.contains(&foreign));
    let human = run(&env, &["list"]);
    assert_eq!(human.stdout.lines().count(), 2, "{human:?}");
    assert!(!human.stdout.contains(&t));
    let mine = run(&env, &["--json", "list", "--user", "u-1"]).json();
    assert_eq!(mine["count"], 1);
    assert_eq!(mine["sessions"][0]["user"], "u-1");
    let mine = run(&env, &["--json", "list", "--user", "u-2", "--show-tokens"]).json();
    assert_eq!(mine["sessions"][0]["token"], foreign);

    // refresh, including the foreign one (it is adopted: indexed from now on)
    assert_eq!(run(&env, &["refresh", &t]).code, 0);
    let refreshed = run(&env, &["--json", "refresh", &foreign]);
    assert_eq!(refreshed.json()["refreshed"], true);
    assert_eq!(run(&env, &["--json", "count"]).json()["count"], 2);

    // stats
    let stats = run(&env, &["--json", "stats", "--active-minutes", "5"]).json();
    assert_eq!(stats["live_sessions"], 2, "{stats}");
    assert_eq!(stats["distinct_users"], 2);
    assert!(stats["redis_used_memory_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        stats["active_users"], 2,
        "both were just written or refreshed"
    );
    let buckets = stats["ttl_distribution"].as_array().unwrap();
    let total: u64 = buckets
        .iter()
        .map(|b| b["sessions"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 2);
    assert_eq!(buckets[2]["bucket"], "5m-15m");
    assert_eq!(buckets[2]["sessions"], 1, "the 600 s session: {stats}");
    let human = run(&env, &["stats"]);
    assert!(human.stdout.contains("redis memory used"), "{human:?}");

    // cleanup purges a session past its absolute expiry whose key another writer's EXPIRE
    // kept (Redis's TTL alone would keep it live)
    let stale = SessionId::generate();
    let now = SystemClock.now().as_millis();
    let meta = Meta {
        created_at: Timestamp(now - 10_000),
        idle_timeout: Duration::from_secs(5),
        absolute_expires_at: Some(Timestamp(now - 5_000)),
        writes: 1,
        user_hex: String::new(),
    };
    let value = codec::encode(&meta, &serde_json::Map::new());
    let () = redis::pipe()
        .cmd("SET")
        .arg(format!("session:{}", stale.expose_token()))
        .arg(value)
        .arg("EX")
        .arg(600)
        .ignore()
        .cmd("ZADD")
        .arg("session:~exp")
        .arg(now - 5_000)
        .arg(stale.expose_token())
        .ignore()
        .query(&mut con)
        .unwrap();
    let cleaned = run(&env, &["--json", "cleanup"]).json();
    assert_eq!(cleaned["removed"], 1, "{cleaned}");
    assert_eq!(run(&env, &["--json", "cleanup"]).json()["removed"], 0);

    // revoke-user, delete, and their not-found exits
    let revoked = run(&env, &["--json", "revoke-user", "u-1"]).json();
    assert_eq!(revoked["deleted"], 1);
    for args in [
        ["get", t.as_str()],
        ["delete", t.as_str()],
        ["refresh", t.as_str()],
    ] {
        let gone = run(&env, &args);
        assert_eq!(gone.code, 1, "{args:?}: {gone:?}");
    }
    let gone = run(&env, &["--json", "get", &t]).json();
    assert_eq!(
        (gone["ok"].clone(), gone["error"].clone()),
        (json!(false), json!("not_found"))
    );
    assert_eq!(run(&env, &["delete", &foreign]).code, 0);
    assert_eq!(run(&env, &["delete", &foreign]).code, 1);
    assert_eq!(run(&env, &["--json", "count"]).json()["count"], 0);

    // --url instead of the environment
    assert_eq!(
        run(&[], &["--url", &url(&server), "count"]).stdout.trim(),
        "0"
    );
}

#[test]
fn malformed_tokens_are_usage_errors_that_never_echo_the_token() {
    let server = RedisServer::start();
    let env = redis_env(&server);
    let bad = "SECRETtoken-that-is-malformed";
    for args in [
        vec!["get", bad],
        vec!["delete", bad],
        vec!["refresh", bad],
        vec!["set", bad, "{}"],
        vec!["--json", "get", bad],
    ] {
        let out = run(&env, &args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains("malformed session id"), "{out:?}");
        assert!(
            !out.stderr.contains("SECRET") && !out.stdout.contains("SECRET"),
            "{out:?}"
        );
    }
    // Checked before connecting: malformed stays 2 with the server down.
    let dead = [
        ("SESSION_BACKEND", "redis".to_string()),
        ("REDIS_PORT", redis_harness::free_port().to_string()),
    ];
    assert_eq!(run(&dead, &["get", bad]).code, 2);
    let piped = run_with_stdin(&env, &["get", "-"], "SECRET\n");
    assert_eq!(piped.code, 2);
    assert!(!piped.stderr.contains("SECRET"));
}

#[test]
fn usage_and_config_errors_exit_2() {
    let server = RedisServer::start();
    let env = redis_env(&server);
    let t = token();
    for (args, want) in [
        (vec!["set", t.as_str(), "[1, 2]"], "object"),
        (vec!["set", t.as_str(), "{nope"], "JSON"),
        (vec!["set", t.as_str(), "{}", "--ttl", "0"], "ttl"),
        (vec!["frobnicate"], "unrecognized subcommand"),
        (vec![], "Usage"),
    ] {
        let out = run(&env, &args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(want), "{args:?}: {out:?}");
    }
    let backend = run(&[("SESSION_BACKEND", "etcd".into())], &["count"]);
    assert_eq!(backend.code, 2, "{backend:?}");
    assert!(backend.stderr.contains("SESSION_BACKEND"), "{backend:?}");
    let port = run(
        &[
            ("SESSION_BACKEND", "redis".into()),
            ("REDIS_PORT", "x".into()),
        ],
        &["count"],
    );
    assert_eq!(port.code, 2);
    assert!(port.stderr.contains("REDIS_PORT"), "{port:?}");
    let url = run(&[], &["--url", "http://:hunter2@host/", "--json", "count"]);
    assert_eq!(url.code, 2, "{url:?}");
    assert_eq!(url.json()["error"], "usage");
    assert!(!url.stdout.contains("hunter2") && !url.stderr.contains("hunter2"));
}

#[test]
fn unreachable_or_refusing_servers_are_backend_errors_exit_3() {
    let port = redis_harness::free_port(); // nothing listens there
    let env = [
        ("SESSION_BACKEND", "redis".to_string()),
        ("REDIS_PORT", port.to_string()),
        ("REDIS_RECONNECT_RETRIES", "0".to_string()),
    ];
    let t = token();
    for args in [
        vec!["count"],
        vec!["list"],
        vec!["get", t.as_str()],
        vec!["stats"],
        vec!["cleanup"],
    ] {
        let out = run(&env, &args);
        assert_eq!(out.code, 3, "{args:?}: {out:?}");
        assert!(out.stderr.contains("unavailable"), "{out:?}");
    }
    let out = run(&env, &["--json", "count"]);
    assert_eq!(out.json()["error"], "backend");

    // A server that wants another password: refused, and the password is never printed.
    let server = RedisServer::start_with(ServerSpec::redis().requirepass("rightpass"));
    let wrong = format!("redis://:wrongpass@127.0.0.1:{}/0", server.port());
    let out = run(
        &[("REDIS_RECONNECT_RETRIES", "0".into())],
        &["--url", &wrong, "count"],
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(!out.stderr.contains("wrongpass") && !out.stdout.contains("wrongpass"));
    let right = format!("redis://:rightpass@127.0.0.1:{}/0", server.port());
    let out = run(&[], &["--url", &right, "count"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "0"), "{out:?}");
}
