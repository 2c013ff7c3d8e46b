//! What Redis does with a request whose connection goes away, which the store's "outcome
//! unknown" settling relies on (see the crate docs), pinned against a real server; then the
//! store settling a write whose answer was lost, on a master that stalls.
//!
//! The raw-socket tests speak RESP on a `TcpStream`, so the test decides exactly when the
//! connection closes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use redis_harness::sentinel::{query, TopologySpec};
use redis_harness::{wait_until, RedisServer, ServerSpec};
use session_core::{Error, SessionStore, SessionStoreExt};
use session_sentinel::{Durability, SentinelError};

const DEADLINE: Duration = Duration::from_secs(10);

fn resp(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n{p}\r\n", p.len()).as_bytes());
    }
    out
}

/// A raw connection and its client id.
fn raw(port: u16) -> (TcpStream, u64) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(&resp(&["CLIENT", "ID"])).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]);
    let id = reply
        .trim()
        .trim_start_matches(':')
        .parse()
        .expect("CLIENT ID");
    (s, id)
}

fn client_line(port: u16, id: u64) -> String {
    query(port, redis::cmd("CLIENT").arg("LIST").arg("ID").arg(id)).unwrap_or_default()
}

fn exists(port: u16, key: &str) -> bool {
    query(port, redis::cmd("EXISTS").arg(key)).expect("EXISTS")
}

/// Sends `WAIT 1 2000` then `SET key` on a fresh connection (no replica: the `WAIT` blocks
/// for its full timeout, and the `SET` queues behind it), and waits until the server shows
/// the connection blocked.
fn set_behind_wait(port: u16, key: &str) -> (TcpStream, u64) {
    let (mut s, id) = raw(port);
    let mut bytes = resp(&["WAIT", "1", "2000"]);
    bytes.extend(resp(&["SET", key, "v"]));
    s.write_all(&bytes).unwrap();
    assert!(
        wait_until(DEADLINE, || client_line(port, id).contains("flags=b")),
        "the WAIT did not block: {}",
        client_line(port, id)
    );
    (s, id)
}

#[test]
fn a_command_queued_behind_wait_is_discarded_when_its_connection_closes_or_is_killed() {
    let server = RedisServer::start();
    let port = server.port();

    let (closed, closed_id) = set_behind_wait(port, "closed");
    let (_killed, killed_id) = set_behind_wait(port, "killed");
    let (_open, _) = set_behind_wait(port, "open");

    drop(closed);
    let n: i64 = query(
        port,
        redis::cmd("CLIENT").arg("KILL").arg("ID").arg(killed_id),
    )
    .expect("CLIENT KILL");
    assert_eq!(n, 1);
    assert!(
        wait_until(DEADLINE, || client_line(port, closed_id).is_empty()),
        "the server did not notice the close"
    );
    // The connection left open shows when the queued SETs would have run: its WAIT was sent
    // last, so it times out last.
    assert!(
        wait_until(DEADLINE, || exists(port, "open")),
        "control SET never ran"
    );
    assert!(
        !exists(port, "closed"),
        "a SET queued behind WAIT ran after its connection closed"
    );
    assert!(
        !exists(port, "killed"),
        "a SET queued behind WAIT ran after CLIENT KILL"
    );
}

#[test]
fn a_command_the_server_has_not_read_yet_runs_despite_a_normal_close() {
    let server = RedisServer::start_with(ServerSpec::redis().config("enable-debug-command local"));
    let port = server.port();
    let mut sleeper = stall(port, "1");

    let mut writer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    writer.write_all(&resp(&["SET", "unread", "v"])).unwrap();
    drop(writer); // FIN after the command, before the server read either

    let mut ok = [0u8; 5];
    sleeper
        .read_exact(&mut ok)
        .expect("DEBUG SLEEP answers when done");
    assert!(
        wait_until(DEADLINE, || exists(port, "unread")),
        "expected the unread SET to run after the close (closing is no cancellation)"
    );
}

/// Stalls the server on `port` for `seconds` (`DEBUG SLEEP`), returning once it is asleep
/// (a `PING` goes unanswered for 100 ms; each probe's `PING` is answered later).
fn stall(port: u16, seconds: &str) -> TcpStream {
    let (mut sleeper, _) = raw(port);
    sleeper
        .write_all(&resp(&["DEBUG", "SLEEP", seconds]))
        .unwrap();
    let asleep = wait_until(DEADLINE, || {
        let mut probe = TcpStream::connect(("127.0.0.1", port)).unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        probe.write_all(&resp(&["PING"])).unwrap();
        probe.read(&mut [0u8; 16]).is_err()
    });
    assert!(asleep, "DEBUG SLEEP did not stall the master");
    sleeper
}

fn source_of(err: &Error) -> Option<&SentinelError> {
    std::error::Error::source(err).and_then(|s| s.downcast_ref::<SentinelError>())
}

/// The master stalls (`DEBUG SLEEP`) longer than a save's response bound, and wakes before the
/// store's `CLIENT KILL` of that connection times out: the save fails with a settled
/// `OutcomeUnknown`, and what a load shows right after it is what stays. Once for an
/// asynchronous save (the shared connection), once for a replicated one (a pooled one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_save_is_settled_before_its_error() {
    let _serial = common::serial().await;
    let topology = TopologySpec::light().start();
    let master = topology.master_port();
    // The stalls below outlast `down-after-milliseconds`: no failover is wanted here.
    for port in topology.sentinel_ports() {
        let _: () = query(
            port,
            redis::cmd("SENTINEL")
                .arg("SET")
                .arg(topology.master_name())
                .arg("down-after-milliseconds")
                .arg(60_000),
        )
        .expect("SENTINEL SET");
    }
    for (durability, prefix) in [
        (Durability::Async, "st-a:"),
        (
            Durability::Replicated {
                replicas: 1,
                timeout: Duration::from_millis(100),
            },
            "st-r:",
        ),
    ] {
        let mut config = common::config_prefixed(&topology, prefix);
        config.save_durability = durability;
        config.redis.response_timeout = Duration::from_millis(1000);
        config.retry_budget = Duration::ZERO;
        let store = common::plain_store(config).await;
        let mut session = store.create(common::data(1)).await.expect("create");
        session.data_mut().insert("n".into(), serde_json::json!(2));

        // The save's bound is 1 s (+ the WAIT); the store's CLIENT KILL then waits up to 1 s
        // more: a 1.6 s stall ends inside that window.
        let sleeper = tokio::task::spawn_blocking(move || stall(master, "1.6"))
            .await
            .unwrap();
        let started = Instant::now();
        let err = store
            .save(session.clone())
            .await
            .expect_err("the save times out");
        let elapsed = started.elapsed();
        drop(sleeper);
        let settled = match source_of(&err) {
            Some(SentinelError::OutcomeUnknown { settled, .. }) => *settled,
            other => panic!("[{durability:?}] expected OutcomeUnknown, got {other:?}: {err}"),
        };
        assert!(settled, "[{durability:?}] not settled: {err}");
        let seen = store
            .load(session.id())
            .await
            .expect("load")
            .and_then(|s| s.data().get("n").cloned());
        // Every connection that could still carry the save is closed: a PING round trip on
        // a new one, after the server's stall, leaves nothing else for it to run.
        let _: String = query(master, &redis::cmd("PING")).expect("PING");
        let later = store
            .load(session.id())
            .await
            .expect("load")
            .and_then(|s| s.data().get("n").cloned());
        println!(
            "[{durability:?}] save failed after {} ms ({err}); load after it: n = {seen:?}; later: {later:?}",
            elapsed.as_millis()
        );
        assert_eq!(
            seen, later,
            "[{durability:?}] the save changed after its error"
        );
    }
}
