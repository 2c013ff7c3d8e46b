//! `sessionctl` against a real Redis Cluster (3 primaries, 3 replicas): every command by URL
//! and by environment, and `migrate` from a standalone Redis to the cluster and back.
//!
//! Each test starts its own cluster on its own thread (the harness's servers die with the
//! thread that started them).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use common::{python_dumps, run, token, url};
use redis_harness::cluster::ClusterTopology;
use redis_harness::fixtures::existing_service_session;
use redis_harness::RedisServer;
use serde_json::{json, Value};
use session_store::redis::{RedisConfig, RedisStore};
use session_store::{
    Clock as _, ImportOutcome, Lifetime, SessionId, SessionRecord, SessionStoreExt, SystemClock,
};

const USERS: usize = 50;

/// One seed node: the client learns the others from it.
fn cluster_url(cluster: &ClusterTopology) -> String {
    format!("redis+cluster://{}/", cluster.addrs()[0])
}

/// Deletes through these commands do not wait for a replica: the commands are under test
/// here, and on a busy 2-core machine a fresh cluster's replica can acknowledge later than the
/// 250 ms `WAIT` (session-cluster's tests/replicated.rs covers that mode).
const ASYNC: (&str, &str) = ("REDIS_WAIT_REPLICAS_REVOKE", "0");

fn cluster_env(cluster: &ClusterTopology) -> Vec<(&'static str, String)> {
    vec![
        ("SESSION_BACKEND", "cluster".into()),
        ("REDIS_CLUSTER_NODES", cluster.seeds()),
        (ASYNC.0, ASYNC.1.into()),
    ]
}

/// `SETEX key ttl value` on the primary serving the key, as the existing service's
/// cluster-aware client sends it.
fn setex_on_cluster(cluster: &ClusterTopology, key: &str, ttl: u64, value: &str) {
    let mut con = cluster.connection(cluster.primary_of_key(key));
    let () = redis::cmd("SETEX")
        .arg(key)
        .arg(ttl)
        .arg(value)
        .query(&mut con)
        .unwrap();
}

#[test]
fn every_command_against_a_cluster() {
    let cluster = ClusterTopology::start();
    let url = cluster_url(&cluster);
    let env = cluster_env(&cluster);
    let by_url = |args: &[&str]| {
        let mut all = vec!["--url", url.as_str()];
        all.extend_from_slice(args);
        run(&[(ASYNC.0, ASYNC.1.into())], &all)
    };
    let by_env = |args: &[&str]| run(&env, args);

    // 20 sessions through `set` (alternately by URL and by environment) and 10 the existing
    // service wrote itself; users u-0 … u-4.
    let mut ours = Vec::new();
    for i in 0..20 {
        let t = token();
        let data = json!({"user": {"sub": format!("u-{}", i % 5)}, "n": i}).to_string();
        let set = if i % 2 == 0 {
            by_url(&["set", &t, &data])
        } else {
            by_env(&["--json", "set", &t, &data, "--ttl", "600"])
        };
        assert_eq!(set.code, 0, "{set:?}");
        ours.push(t);
    }
    let mut plain = Vec::new();
    for i in 0..10 {
        let t = token();
        let value = json!({"user": {"sub": format!("u-{}", i % 5)}, "created": 1700000000.5});
        setex_on_cluster(
            &cluster,
            &format!("session:{t}"),
            7200,
            &python_dumps(&value),
        );
        plain.push(t);
    }
    let owners: HashSet<u16> = ours
        .iter()
        .chain(&plain)
        .map(|t| cluster.primary_of_key(&format!("session:{t}")))
        .collect();
    assert_eq!(owners.len(), 3, "30 sessions on every primary");

    // count: the existing service's sessions once cleanup has indexed them
    assert_eq!(by_url(&["--json", "count"]).json()["count"], 20);
    let cleanup = by_env(&["--json", "cleanup"]);
    assert_eq!(cleanup.code, 0, "{cleanup:?}");
    assert_eq!(cleanup.json()["removed"], 0, "{cleanup:?}");
    assert_eq!(by_env(&["count"]).stdout.trim(), "30");

    // list: everyone (a walk over every primary), one user (the index), a limit, tokens
    let listed = by_url(&["--json", "list"]);
    assert_eq!(listed.json()["count"], 30, "{listed:?}");
    assert!(!listed.stdout.contains(&ours[0]) && !listed.stdout.contains(&plain[0]));
    let listed = by_env(&["--json", "list", "--user", "u-1"]).json();
    assert_eq!(listed["count"], 6, "4 of ours and 2 SETEX ones: {listed}");
    assert_eq!(
        by_url(&["--json", "list", "--limit", "7"]).json()["count"],
        7
    );
    let listed = by_url(&["--json", "list", "--user", "u-1", "--show-tokens"]);
    assert!(listed.stdout.contains(&ours[1]) && listed.stdout.contains(&plain[1]));

    // get / refresh / delete, with their not-found exits
    let got = by_url(&["get", &plain[0]]);
    assert_eq!(got.code, 0, "{got:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&got.stdout).unwrap()["created"],
        json!(1700000000.5)
    );
    let got = by_env(&["--json", "get", &ours[1]]).json();
    assert_eq!(got["lifetime"]["idle_timeout_s"], 600, "{got}");
    assert_eq!(got["data"]["n"], 1);
    assert_eq!(by_env(&["refresh", &ours[0]]).code, 0);
    assert_eq!(by_url(&["delete", &ours[0]]).code, 0);
    assert_eq!(by_url(&["delete", &ours[0]]).code, 1);
    assert_eq!(by_env(&["get", &ours[0]]).code, 1);
    assert_eq!(by_env(&["refresh", &token()]).code, 1);

    // revoke-user: u-2 had 4 of ours (2, 7, 12, 17) and 2 SETEX ones (2, 7)
    let revoked = by_env(&["--json", "revoke-user", "u-2"]).json();
    assert_eq!(revoked["deleted"], 6, "{revoked}");
    assert_eq!(
        by_url(&["--json", "list", "--user", "u-2"]).json()["count"],
        0
    );
    assert_eq!(by_url(&["--json", "count"]).json()["count"], 23);

    // stats: memory summed over the primaries
    let stats = by_env(&["--json", "stats"]).json();
    assert_eq!(stats["live_sessions"], 23, "{stats}");
    assert_eq!(stats["scanned_sessions"], 23, "{stats}");
    assert_eq!(stats["distinct_users"], 4, "{stats}");
    assert!(stats["redis_used_memory_bytes"].as_u64().unwrap() > 0);
    assert!(
        stats["redis_used_memory_human"]
            .as_str()
            .unwrap()
            .ends_with("over 3 primaries"),
        "{stats}"
    );
    let human = by_url(&["stats"]);
    assert!(
        human.stdout.contains("live sessions:        23"),
        "{human:?}"
    );

    // configuration and backend errors
    let bad = run(&[], &["--url", "redis+cluster://:hunter2@h1/3", "count"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("only database 0") && !bad.stderr.contains("hunter2"));
    let tls = run(&[], &["--url", "rediss+cluster://h1:7000", "count"]);
    assert_eq!(tls.code, 2, "{tls:?}");
    assert!(tls.stderr.contains("TLS"), "{tls:?}");
    let missing = run(&[("SESSION_BACKEND", "cluster".into())], &["count"]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(
        missing.stderr.contains("REDIS_CLUSTER_NODES"),
        "{missing:?}"
    );
    let dead = format!(
        "redis+cluster://:hunter2@127.0.0.1:{}/",
        redis_harness::free_port()
    );
    let timeouts = [
        ("REDIS_CONNECT_TIMEOUT_MS", "300".to_string()),
        ("REDIS_RESPONSE_TIMEOUT_MS", "300".to_string()),
    ];
    let down = run(&timeouts, &["--url", &dead, "count"]);
    assert_eq!(down.code, 3, "{down:?}");
    assert!(!down.stderr.contains("hunter2"), "{down:?}");
}

// ---- migrate: standalone → cluster → standalone ----

const CREATED: usize = 1_000;
const BULK: usize = 9_000;
const PLAIN: usize = 10_000;
const TOTAL: usize = CREATED + BULK + PLAIN;

fn data(i: usize) -> serde_json::Map<String, Value> {
    json!({
        "user": {"sub": format!("u-{}", i % USERS), "username": format!("user{i}")},
        "access_token": format!("at-{i}-{}", "x".repeat(64)),
        "created": 1_700_000_000.5 + i as f64,
        "csrf_token": format!("csrf-{i}"),
    })
    .as_object()
    .unwrap()
    .clone()
}

/// The existing service's session of user `u-{i % USERS}`, as its `json.dumps` writes it
/// (spaces after separators, non-ASCII escaped).
fn plain_value(i: usize) -> String {
    let mut data = existing_service_session(&format!("user{i}"));
    data["user"]["sub"] = json!(format!("u-{}", i % USERS));
    data.insert("display_name".into(), json!("Zoë"));
    python_dumps(&Value::Object(data))
}

/// `CREATED` sessions through `create`, `BULK` through the bulk path with lifetimes from 10
/// minutes to 2 hours left, `PLAIN` as the existing service writes them:
/// `SETEX session:{token} 7200 json`.
async fn seed(server: &RedisServer) {
    let config = RedisConfig::from_lookup(|name| match name {
        "REDIS_PORT" => Some(server.port().to_string()),
        _ => None,
    })
    .unwrap();
    let store = RedisStore::connect(config).await.unwrap();
    for chunk in (0..CREATED).collect::<Vec<_>>().chunks(100) {
        let created = futures::future::join_all(chunk.iter().map(|&i| store.create(data(i)))).await;
        assert!(created.iter().all(Result::is_ok));
    }
    let now = SystemClock.now();
    for chunk in (CREATED..CREATED + BULK).collect::<Vec<_>>().chunks(1000) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let id = SessionId::generate();
                let lifetime = Lifetime {
                    created_at: now,
                    idle_timeout: Duration::from_secs(7200),
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
        assert!(outcomes.iter().all(|o| *o == ImportOutcome::Imported));
    }
    let mut con = server.connection();
    for chunk in (CREATED + BULK..TOTAL).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            pipe.cmd("SETEX")
                .arg(format!("session:{}", token()))
                .arg(7200)
                .arg(plain_value(i))
                .ignore();
        }
        let () = pipe.query(&mut con).unwrap();
    }
}

/// When the snapshots were read, in ms since the first one.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// A session key as read: its value, its `PTTL`, and when the read was sent.
struct Read {
    value: Vec<u8>,
    pttl_ms: i64,
    at_ms: i64,
}

impl Read {
    /// When the key expires, by this read.
    fn ends_ms(&self) -> i64 {
        self.at_ms + self.pttl_ms
    }
}

type Snapshot = HashMap<String, Read>;

/// Every session key (`session:{token}`, not the `session:~…` indexes) on one node.
fn snapshot_node(con: &mut redis::Connection, into: &mut Snapshot) {
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("session:*")
            .arg("COUNT")
            .arg(1000)
            .query(con)
            .unwrap();
        let keys: Vec<String> = keys
            .into_iter()
            .filter(|k| !k.starts_with("session:~"))
            .collect();
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
        }
        let at_ms = EPOCH.elapsed().as_millis() as i64;
        let replies: Vec<redis::Value> = if keys.is_empty() {
            Vec::new()
        } else {
            pipe.query(con).unwrap()
        };
        for (key, pair) in keys.into_iter().zip(replies.chunks(2)) {
            let (redis::Value::BulkString(value), redis::Value::Int(pttl_ms)) =
                (&pair[0], &pair[1])
            else {
                panic!("unexpected GET/PTTL reply {pair:?}");
            };
            let read = Read {
                value: value.clone(),
                pttl_ms: *pttl_ms,
                at_ms,
            };
            assert!(into.insert(key, read).is_none(), "a key on two nodes");
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

fn snapshot_server(server: &RedisServer) -> Snapshot {
    let mut snapshot = Snapshot::new();
    snapshot_node(&mut server.connection(), &mut snapshot);
    snapshot
}

/// Every primary in turn: together they hold every key once.
fn snapshot_cluster(cluster: &ClusterTopology) -> Snapshot {
    let mut snapshot = Snapshot::new();
    let primaries = cluster.primaries();
    assert_eq!(primaries.len(), 3);
    for port in primaries {
        let before = snapshot.len();
        snapshot_node(&mut cluster.connection(port), &mut snapshot);
        assert!(
            snapshot.len() - before > TOTAL / 4,
            "primary {port} holds a fair share"
        );
    }
    snapshot
}

const META: &[u8] = b"{\"__session__\":{";

/// `dst` holds every session of `src`, and nothing else: ours byte for byte; the existing
/// service's plain values with our metadata spliced in as the first member and every byte of
/// theirs kept. Each copy ends where its source ended, or later by at most the copy's own
/// duration (`window`: a TTL is copied as time left), give or take `SLACK_MS` for the reads.
fn assert_copied(src: &Snapshot, dst: &Snapshot, window: Duration) -> (usize, usize) {
    const SLACK_MS: i64 = 1_000;
    let window_ms = window.as_millis() as i64;
    assert_eq!(dst.len(), src.len(), "the same number of sessions");
    let (mut ours, mut plain) = (0, 0);
    for (key, s) in src {
        let short = SessionId::parse(&key["session:".len()..])
            .unwrap()
            .fingerprint();
        let d = dst
            .get(key)
            .unwrap_or_else(|| panic!("{short} is missing from the copy"));
        if s.value.starts_with(META) {
            assert!(d.value == s.value, "{short}: ours, not byte for byte");
            ours += 1;
        } else {
            // `{"__session__":{…},` + the original after its `{`.
            let theirs = &s.value[1..];
            assert!(d.value.ends_with(theirs), "{short}: their bytes changed");
            let head = &d.value[..d.value.len() - theirs.len()];
            assert!(
                head.starts_with(META)
                    && head.ends_with(b"},")
                    && head.iter().filter(|&&b| b == b'{').count() == 2,
                "{short}: {}",
                String::from_utf8_lossy(head)
            );
            plain += 1;
        }
        assert!(s.pttl_ms > 0 && d.pttl_ms > 0, "{short}: TTLs");
        let later = d.ends_ms() - s.ends_ms();
        assert!(
            (-SLACK_MS..=window_ms + SLACK_MS).contains(&later),
            "{short}: the copy ends {later} ms after its source (copy took {window_ms} ms)"
        );
    }
    (ours, plain)
}

fn migrate(from: &str, to: &str, extra: &[&str]) -> (serde_json::Value, Duration) {
    let mut args = vec!["--json", "migrate", "--from", from, "--to", to];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let result = run(&[(ASYNC.0, ASYNC.1.into())], &args);
    let took = started.elapsed();
    assert_eq!(result.code, 0, "{result:?}");
    (result.json(), took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_standalone_to_cluster_and_back() {
    let cluster = ClusterTopology::start();
    let source = RedisServer::start();
    let home = RedisServer::start();
    seed(&source).await;
    let (from, to, back) = (url(&source), cluster_url(&cluster), url(&home));
    let count = |url: &str| run(&[], &["--url", url, "--json", "count"]).json()["count"].clone();
    let original = snapshot_server(&source);
    assert_eq!(original.len(), TOTAL);

    // A dry run reads and classifies, writes nothing.
    let (dry, _) = migrate(&from, &to, &["--dry-run"]);
    assert_eq!(dry["copied"], TOTAL, "{dry}");
    assert_eq!(count(&to), 0);

    // Standalone → cluster, verified.
    let first_started = Instant::now();
    let (there, took) = migrate(&from, &to, &["--verify"]);
    println!(
        "migrate standalone → cluster: {} sessions in {:.2}s = {} sessions/s, --verify \
         included {:.2}s (debug={})",
        there["copied"],
        there["seconds"].as_f64().unwrap(),
        there["sessions_per_second"],
        took.as_secs_f64(),
        cfg!(debug_assertions)
    );
    assert_eq!(there["copied"], TOTAL, "{there}");
    assert_eq!(there["failed"], 0);
    assert_eq!(there["verify"]["checked"], TOTAL, "{there}");
    assert_eq!(there["verify"]["mismatched"], 0, "{there}");
    let on_cluster = snapshot_cluster(&cluster);
    assert_eq!(
        assert_copied(&original, &on_cluster, took),
        (CREATED + BULK, PLAIN)
    );
    // Counted and listed by user, the SETEX ones included (u-7: i ≡ 7 mod USERS).
    assert_eq!(count(&to), TOTAL);
    let listed = run(&[], &["--url", &to, "--json", "list", "--user", "u-7"]).json();
    assert_eq!(listed["count"], TOTAL / USERS, "{listed}");

    // A re-run copies nothing.
    let (again, _) = migrate(&from, &to, &[]);
    assert_eq!(again["copied"], 0, "{again}");
    assert_eq!(again["skipped_present"], TOTAL, "{again}");

    // Cluster → standalone, verified: now every value is ours, copied byte for byte.
    let (home_again, took_back) = migrate(&to, &back, &["--verify"]);
    println!(
        "migrate cluster → standalone: {} sessions in {:.2}s = {} sessions/s, --verify \
         included {:.2}s (debug={})",
        home_again["copied"],
        home_again["seconds"].as_f64().unwrap(),
        home_again["sessions_per_second"],
        took_back.as_secs_f64(),
        cfg!(debug_assertions)
    );
    assert_eq!(home_again["copied"], TOTAL, "{home_again}");
    assert_eq!(home_again["verify"]["checked"], TOTAL, "{home_again}");
    assert_eq!(home_again["verify"]["mismatched"], 0, "{home_again}");
    let at_home = snapshot_server(&home);
    assert_eq!(assert_copied(&on_cluster, &at_home, took_back), (TOTAL, 0));
    // Two hops from the original: what one hop gives, ending no earlier than the original.
    assert_eq!(
        assert_copied(&original, &at_home, first_started.elapsed()),
        (CREATED + BULK, PLAIN)
    );
    assert_eq!(count(&back), TOTAL);
    let listed = run(&[], &["--url", &back, "--json", "list", "--user", "u-7"]).json();
    assert_eq!(listed["count"], TOTAL / USERS, "{listed}");
}
