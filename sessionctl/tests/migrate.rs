//! `sessionctl migrate` between real redis-server processes.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{run, token, url};
use redis_harness::RedisServer;
use serde_json::json;
use session_store::redis::{RedisConfig, RedisStore};
use session_store::{Clock as _, Lifetime, SessionId, SessionRecord, SessionStoreExt, SystemClock};

const STORE_CREATED: usize = 1_000;
const STORE_BULK: usize = 49_000;
const FOREIGN: usize = 50_000;
const TOTAL: usize = STORE_CREATED + STORE_BULK + FOREIGN;
const USERS: usize = 5_000;

async fn store_on(server: &RedisServer) -> RedisStore {
    let config = RedisConfig::from_lookup(|name| match name {
        "REDIS_PORT" => Some(server.port().to_string()),
        _ => None,
    })
    .unwrap();
    RedisStore::connect(config).await.unwrap()
}

fn data(i: usize) -> serde_json::Map<String, serde_json::Value> {
    json!({
        "user": {"sub": format!("u-{}", i % USERS), "username": format!("user{i}"), "role": "admin"},
        "access_token": format!("at-{i}-{}", "x".repeat(64)),
        "created": 1_700_000_000.5 + i as f64,
        "csrf_token": format!("csrf-{i}"),
    })
    .as_object()
    .unwrap()
    .clone()
}

/// 1,000 sessions through `create`, 49,000 through the store's bulk path (records with
/// lifetimes), 50,000 as the existing service writes them (`SETEX session:{token} ttl json`).
/// Returns a sample of (token, index) pairs of each kind.
async fn seed(server: &RedisServer) -> Vec<String> {
    let store = store_on(server).await;
    let mut sample = Vec::new();
    let created =
        futures::future::join_all((0..STORE_CREATED).map(|i| store.create(data(i)))).await;
    for (i, session) in created.into_iter().enumerate() {
        let session = session.unwrap();
        if i % 100 == 0 {
            sample.push(session.id().expose_token().to_owned());
        }
    }
    let now = SystemClock.now();
    for chunk in (STORE_CREATED..STORE_CREATED + STORE_BULK)
        .collect::<Vec<_>>()
        .chunks(1000)
    {
        let batch: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let id = SessionId::generate();
                if i % 1000 == 0 {
                    sample.push(id.expose_token().to_owned());
                }
                // Remaining lifetimes spread from 10 minutes to 2 hours.
                let idle = Duration::from_secs(7200);
                let lifetime = Lifetime {
                    created_at: now,
                    idle_timeout: idle,
                    idle_expires_at: now
                        .saturating_add(Duration::from_secs(600 + (i % 6600) as u64)),
                    absolute_expires_at: None,
                };
                let record = SessionRecord {
                    handle: id.handle(),
                    id: Some(id),
                    data: data(i),
                    lifetime,
                };
                store.prepare_record(&record).unwrap()
            })
            .collect();
        let outcomes = store.import_bulk(&batch).await.unwrap();
        assert!(outcomes
            .iter()
            .all(|o| *o == session_store::ImportOutcome::Imported));
    }
    let mut con = server.connection();
    for chunk in (STORE_CREATED + STORE_BULK..TOTAL)
        .collect::<Vec<_>>()
        .chunks(1000)
    {
        let mut pipe = redis::pipe();
        for &i in chunk {
            let token = token();
            if i % 1000 == 0 {
                sample.push(token.clone());
            }
            let value = serde_json::to_string(&data(i)).unwrap();
            pipe.cmd("SETEX")
                .arg(format!("session:{token}"))
                .arg(300 + (i % 7000) as u64)
                .arg(value)
                .ignore();
        }
        let () = pipe.query(&mut con).unwrap();
    }
    sample
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_100k_sessions_with_ttls_and_indexes_and_is_idempotent() {
    let source = RedisServer::start();
    let target = RedisServer::start();
    let sample = seed(&source).await;
    let (from, to) = (url(&source), url(&target));
    // Server CPU seconds (INFO cpu), to tell where the copy's time goes.
    let cpu = |server: &RedisServer| -> f64 {
        let info: String = redis::cmd("INFO")
            .arg("cpu")
            .query(&mut server.connection())
            .unwrap();
        info.lines()
            .filter(|l| l.starts_with("used_cpu_sys:") || l.starts_with("used_cpu_user:"))
            .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
            .sum()
    };
    let cpu_before = (cpu(&source), cpu(&target));

    let started = Instant::now();
    let first = run(
        &[],
        &[
            "--json", "migrate", "--from", &from, "--to", &to, "--verify",
        ],
    );
    // A TTL copied as "time left" is counted again from the moment it is written, so a copy
    // may outlive its source by at most the run's duration (plus 1 s for a write's own trip).
    let copy_window_ms = started.elapsed().as_millis() as i64 + 1_000;
    assert_eq!(first.code, 0, "{first:?}");
    let summary = first.json();
    println!(
        "migrate: {} sessions in {:.2}s = {} sessions/s (debug={})",
        summary["copied"],
        summary["seconds"].as_f64().unwrap(),
        summary["sessions_per_second"],
        cfg!(debug_assertions)
    );
    println!(
        "migrate (with --verify): server CPU {:.2}s source, {:.2}s target",
        cpu(&source) - cpu_before.0,
        cpu(&target) - cpu_before.1
    );
    assert_eq!(summary["copied"], TOTAL, "{summary}");
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["verify"]["mismatched"], 0, "{summary}");
    assert_eq!(summary["verify"]["checked"], TOTAL);

    // Totals: every session counted in the target, the SETEX ones included.
    let count = run(&[], &["--url", &to, "--json", "count"]).json();
    assert_eq!(count["count"], TOTAL);
    let count = run(&[], &["--url", &from, "--json", "count"]).json();
    assert_eq!(
        count["count"],
        STORE_CREATED + STORE_BULK,
        "the source's own index is unchanged"
    );

    // Listed by user, the SETEX ones included: u-7 has sessions i ≡ 7 (mod USERS).
    let listed = run(&[], &["--url", &to, "--json", "list", "--user", "u-7"]).json();
    assert_eq!(listed["count"], TOTAL / USERS, "{listed}");

    // A sample of each kind: same data, TTL within what the copy's own timing allows.
    let mut src = source.connection();
    let mut dst = target.connection();
    for token in &sample {
        let key = format!("session:{token}");
        let asked = Instant::now();
        let (src_ttl, dst_ttl): (i64, i64) = (
            redis::cmd("PTTL").arg(&key).query(&mut src).unwrap(),
            redis::cmd("PTTL").arg(&key).query(&mut dst).unwrap(),
        );
        // The two PTTLs were read this far apart; the source's clock ran on meanwhile.
        let gap_ms = asked.elapsed().as_millis() as i64 + 1;
        assert!(src_ttl > 0 && dst_ttl > 0, "{src_ttl} {dst_ttl}");
        assert!(
            dst_ttl - src_ttl <= copy_window_ms + gap_ms && src_ttl - dst_ttl <= gap_ms + 2_000,
            "TTL {src_ttl} (source) vs {dst_ttl} (copy): the copy may outlive its source by at \
             most the run's {copy_window_ms} ms and the reads' {gap_ms} ms"
        );
        let got = run(&[], &["--url", &to, "get", token]);
        assert_eq!(got.code, 0, "{got:?}");
        let src_value: String = redis::cmd("GET").arg(&key).query(&mut src).unwrap();
        let mut expected: serde_json::Value = serde_json::from_str(&src_value).unwrap();
        expected.as_object_mut().unwrap().remove("__session__");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&got.stdout).unwrap(),
            expected
        );
    }

    // Idempotent: a second run copies nothing and skips everything.
    let second = run(&[], &["--json", "migrate", "--from", &from, "--to", &to]);
    assert_eq!(second.code, 0, "{second:?}");
    let summary = second.json();
    assert_eq!(summary["copied"], 0, "{summary}");
    assert_eq!(summary["skipped"], TOTAL);
    assert_eq!(summary["skipped_present"], TOTAL);
}

#[tokio::test]
async fn dry_run_writes_nothing_and_verify_reports_mismatches_with_exit_4() {
    let source = RedisServer::start();
    let target = RedisServer::start();
    let store = Arc::new(store_on(&source).await);
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(store.create(data(i)).await.unwrap().id().clone());
    }
    let (from, to) = (url(&source), url(&target));
    let migrate_verify = || {
        run(
            &[],
            &[
                "--json", "migrate", "--from", &from, "--to", &to, "--verify",
            ],
        )
    };

    let dry = run(
        &[],
        &[
            "--json",
            "migrate",
            "--from",
            &from,
            "--to",
            &to,
            "--dry-run",
        ],
    );
    assert_eq!(dry.code, 0, "{dry:?}");
    assert_eq!(dry.json()["copied"], 20);
    assert_eq!(
        run(&[], &["--url", &to, "--json", "count"]).json()["count"],
        0
    );

    let copy = migrate_verify();
    assert_eq!(
        (copy.code, copy.json()["copied"].clone()),
        (0, json!(20)),
        "{copy:?}"
    );

    // Change one session in the source only: verify must notice.
    store
        .update(&tokens[3], |d| {
            d.insert("changed".into(), json!(true));
        })
        .await
        .unwrap();
    let verify = migrate_verify();
    assert_eq!(verify.code, 4, "{verify:?}");
    let summary = verify.json();
    assert_eq!(summary["verify"]["mismatched"], 1, "{summary}");
    let problems = summary["verify"]["problems"].to_string();
    assert!(problems.contains(&tokens[3].fingerprint()), "{problems}");
    assert!(!verify.stdout.contains(tokens[3].expose_token()));
    assert!(!verify.stderr.contains(tokens[3].expose_token()));

    // Key TTLs in the target only: one without, one far shorter than its session's expiry.
    let mut con = target.connection();
    let key = |i: usize| format!("session:{}", tokens[i].expose_token());
    let () = redis::cmd("PERSIST").arg(key(5)).query(&mut con).unwrap();
    let () = redis::cmd("PEXPIRE")
        .arg(key(6))
        .arg(60_000)
        .query(&mut con)
        .unwrap();
    let verify = migrate_verify();
    assert_eq!(verify.code, 4, "{verify:?}");
    let summary = verify.json();
    assert_eq!(summary["verify"]["mismatched"], 3, "{summary}");
    let problems = summary["verify"]["problems"].to_string();
    assert!(
        problems.contains("no TTL") && problems.contains("TTL differs"),
        "{problems}"
    );

    // A float changed in a digit a 64-bit float cannot hold (what a lossy parse and rewrite
    // would do, silently): verify compares the digits, so it notices.
    let value: String = redis::cmd("GET").arg(key(8)).query(&mut con).unwrap();
    let drifted = value.replace("\"created\":1700000008.5", "\"created\":1700000008.5000001");
    assert_ne!(drifted, value, "{value}");
    assert_eq!(
        drifted.parse::<serde_json::Value>().unwrap()["created"].as_f64(),
        value.parse::<serde_json::Value>().unwrap()["created"].as_f64(),
        "the same f64 either way"
    );
    let () = redis::cmd("SET")
        .arg(key(8))
        .arg(&drifted)
        .arg("KEEPTTL")
        .query(&mut con)
        .unwrap();
    let verify = migrate_verify();
    assert_eq!(verify.code, 4, "{verify:?}");
    let summary = verify.json();
    assert_eq!(summary["verify"]["mismatched"], 4, "{summary}");
    assert!(
        summary["verify"]["problems"]
            .to_string()
            .contains(&tokens[8].fingerprint()),
        "{summary}"
    );
}

#[test]
fn migrate_usage_and_backend_errors() {
    let target = RedisServer::start();
    let to = url(&target);
    let memory = run(&[], &["migrate", "--from", "memory://", "--to", &to]);
    assert_eq!(memory.code, 2, "{memory:?}");
    assert!(memory.stderr.contains("--from"), "{memory:?}");

    let dead = format!(
        "redis://:hunter2@127.0.0.1:{}/0",
        redis_harness::free_port()
    );
    let env = [("REDIS_RECONNECT_RETRIES", "0".to_string())];
    let down = run(&env, &["migrate", "--from", &dead, "--to", &to]);
    assert_eq!(down.code, 3, "{down:?}");
    assert!(!down.stderr.contains("hunter2") && !down.stdout.contains("hunter2"));

    let bad = run(
        &[],
        &[
            "migrate",
            "--from",
            "redis://:hunter2@h/notadb",
            "--to",
            &to,
        ],
    );
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(!bad.stderr.contains("hunter2"), "{bad:?}");
}

#[tokio::test]
async fn migrate_between_redis_and_sentinel_both_ways() {
    use redis_harness::sentinel::TopologySpec;

    let plain = RedisServer::start();
    let back = RedisServer::start();
    let topology = TopologySpec::light().start();
    let sentinel = format!(
        "redis+sentinel://{}/{}/0",
        topology.sentinel_addrs().join(","),
        topology.master_name()
    );
    let store = store_on(&plain).await;
    for i in 0..300 {
        store.create(data(i)).await.unwrap();
    }
    let mut con = plain.connection();
    for i in 300..500 {
        let () = redis::cmd("SETEX")
            .arg(format!("session:{}", token()))
            .arg(3600)
            .arg(serde_json::to_string(&data(i)).unwrap())
            .query(&mut con)
            .unwrap();
    }
    let (from, to) = (url(&plain), url(&back));

    let there = run(
        &[],
        &[
            "--json", "migrate", "--from", &from, "--to", &sentinel, "--verify",
        ],
    );
    assert_eq!(there.code, 0, "{there:?}");
    assert_eq!(there.json()["copied"], 500);
    assert_eq!(
        run(&[], &["--url", &sentinel, "--json", "count"]).json()["count"],
        500
    );

    let back_again = run(
        &[],
        &[
            "--json", "migrate", "--from", &sentinel, "--to", &to, "--verify",
        ],
    );
    assert_eq!(back_again.code, 0, "{back_again:?}");
    assert_eq!(back_again.json()["copied"], 500);
    let listed = run(&[], &["--url", &to, "--json", "list", "--user", "u-301"]).json();
    assert_eq!(
        listed["count"], 1,
        "a SETEX session, indexed after two hops: {listed}"
    );
}
