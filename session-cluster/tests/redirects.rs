//! Replicated writes on a real Redis Cluster (3 primaries, 1 replica each) where a node
//! answers something other than the write's result:
//!
//! - a slot migrated by hand: replicated deletes follow `ASK` and `MOVED` themselves, each
//!   time with `WAIT` on the node that ran the write;
//! - a primary refusing writes while it queues them (`NOREPLICAS`): Redis discards the whole
//!   transaction, and the caller gets a retryable error that wrote nothing.

mod common;

use std::sync::Mutex;

use common::{connect, connect_with, counter, data, runtime, slot_of};
use redis_harness::cluster::ClusterTopology;
use session_cluster::ClusterStore;
use session_core::{Error, PutMode, SessionId, SessionStore, WriteOptions};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A server statistic: `field` of `line` (`cmdstat_wait`, `errorstat_ASK`, …) in `INFO
/// section` of one node, 0 when absent.
fn stat(conn: &mut redis::Connection, section: &str, line: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg(section).query(conn).expect("INFO");
    info.lines()
        .find_map(|l| l.trim().strip_prefix(line)?.strip_prefix(':'))
        .and_then(|rest| rest.split(',').find_map(|kv| kv.strip_prefix(field)))
        .and_then(|v| v.strip_prefix('=')?.parse().ok())
        .unwrap_or(0)
}

/// Replicated writes follow redirections themselves, each time with `WAIT` on the node that
/// ran the write: a slot migrated by hand under a store that already knows the slot map, one
/// delete while its keys are on the new node only (`ASK`), one once the slot moved (`MOVED`).
#[test]
fn replicated_deletes_follow_ask_and_moved() {
    let _serial = serial();
    let cluster = ClusterTopology::start();
    let rt = runtime();
    let store = rt.block_on(connect(&cluster));
    let keys = store.redis().keys();
    let first = SessionId::generate();
    let slot = slot_of(&store, &first);
    let mut ids = vec![first];
    while ids.len() < 3 {
        let id = SessionId::generate();
        if slot_of(&store, &id) == slot {
            ids.push(id);
        }
    }
    for id in &ids {
        let created = store.put(id, data(0), PutMode::Create, WriteOptions::new());
        rt.block_on(created).expect("create");
    }
    assert!(rt
        .block_on(store.delete(&ids[0]))
        .expect("delete before the move"));

    let from = cluster.primary_of_slot(slot);
    let to = *cluster.primaries().iter().find(|&&p| p != from).unwrap();
    let (mut src, mut dst) = (cluster.connection(from), cluster.connection(to));
    let setslot = |conn: &mut redis::Connection, state: &str, node: u16| {
        redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(state)
            .arg(cluster.node_id(node))
            .query::<()>(conn)
            .expect("CLUSTER SETSLOT");
    };
    let migrate = |src: &mut redis::Connection, keys: &[String]| {
        redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(to)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(keys)
            .query::<String>(src)
            .expect("MIGRATE");
    };
    setslot(&mut dst, "IMPORTING", from);
    setslot(&mut src, "MIGRATING", to);
    let waits = |dst: &mut redis::Connection| stat(dst, "commandstats", "cmdstat_wait", "calls");
    let waits_before = waits(&mut dst);
    // The second session and the slot's expiry index on `to`: `from` answers ASK.
    let second = keys.storage_id(&ids[1]);
    migrate(
        &mut src,
        &[keys.session_key(&second), keys.expiry_index_of(&second)],
    );
    assert!(rt
        .block_on(store.delete(&ids[1]))
        .expect("delete after ASK"));
    let third = keys.storage_id(&ids[2]);
    migrate(&mut src, &[keys.session_key(&third)]);
    for node in [to, from] {
        setslot(&mut cluster.connection(node), "NODE", to);
    }
    // The store's map still names `from`: it answers MOVED.
    assert!(rt
        .block_on(store.delete(&ids[2]))
        .expect("delete after MOVED"));

    for id in &ids {
        assert!(rt.block_on(store.load(id)).expect("load").is_none());
    }
    let asks = stat(&mut src, "errorstats", "errorstat_ASK", "count");
    let moves = stat(&mut src, "errorstats", "errorstat_MOVED", "count");
    let waited = waits(&mut dst) - waits_before;
    println!("slot {slot} from {from} to {to}: ASK {asks}, MOVED {moves}, WAIT on {to}: {waited}");
    assert!(asks >= 1 && moves >= 1, "ASK {asks}, MOVED {moves}");
    assert!(waited >= 2, "the deletes' WAITs ran on {to}: {waited}");
}

/// A create that its primary refuses while queuing it (`NOREPLICAS`, from
/// `min-replicas-to-write` above the replicas it has) makes Redis discard the whole
/// transaction: the caller gets a retryable `Unavailable` naming the refusal, nothing is
/// written, and the same create succeeds once the primary accepts writes again. Replicated
/// (the write and its `WAIT` on a pooled connection of their own) and asynchronous (through
/// the store's router) alike.
#[test]
fn a_create_refused_while_queued_is_unavailable_and_writes_nothing() {
    let _serial = serial();
    let cluster = ClusterTopology::start();
    let rt = runtime();
    let replicated = rt.block_on(connect(&cluster));
    let asynchronous = rt.block_on(connect_with(
        &cluster,
        &[
            ("REDIS_WAIT_REPLICAS", "0"),
            ("REDIS_WAIT_REPLICAS_REVOKE", "0"),
        ],
        false,
    ));
    for store in [&replicated, &asynchronous] {
        refused_create(&cluster, &rt, store);
    }
}

fn refused_create(cluster: &ClusterTopology, rt: &tokio::runtime::Runtime, store: &ClusterStore) {
    let id = SessionId::generate();
    let primary = cluster.primary_of_slot(slot_of(store, &id));
    let mut conn = cluster.connection(primary);
    let min_replicas = |conn: &mut redis::Connection, n: u32| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("min-replicas-to-write")
            .arg(n)
            .query::<()>(conn)
            .expect("CONFIG SET min-replicas-to-write");
    };
    min_replicas(&mut conn, 5);
    let create = || store.put(&id, data(1), PutMode::Create, WriteOptions::new());
    let err = rt
        .block_on(create())
        .expect_err("the primary refuses writes");
    assert!(
        matches!(err, Error::Unavailable { .. }) && err.is_retryable(),
        "{err:?}"
    );
    assert!(format!("{err:?}").contains("NOREPLICAS"), "{err:?}");
    assert!(rt.block_on(store.load(&id)).expect("load").is_none());

    min_replicas(&mut conn, 0);
    rt.block_on(create())
        .expect("create once writes are accepted");
    let loaded = rt
        .block_on(store.load(&id))
        .expect("load")
        .expect("created");
    assert_eq!(counter(loaded.data()), Some(1));
}
