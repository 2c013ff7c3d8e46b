//! Replicated writes across repeated failovers: every write and delete the store
//! acknowledged is there (or gone) afterwards. Then the same load with asynchronous saves,
//! reporting how many acknowledged writes were lost (not asserted: Redis replication is
//! asynchronous, so some loss is expected there).
//!
//! Failovers alternate between a crash (SIGKILL of the master; the old node then restarts
//! empty as a replica, as an operator would bring it back) and `SENTINEL FAILOVER` (the old
//! master stays up and writable until Sentinel demotes it: the case the store's failover
//! fence exists for).
//!
//! Also: a create the master refuses while queuing it (`NOREPLICAS`) is a retryable error
//! that wrote nothing, replicated or not.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{load, ms};
use redis_harness::sentinel::{query, SentinelTopology, TopologySpec, TOPOLOGY_READY_TIMEOUT};
use session_core::{Error, PutMode, SessionId, SessionStore, WriteOptions};
use session_sentinel::{Durability, SentinelStore};

const LIVENESS: Duration = Duration::from_secs(30);
const ROUNDS: usize = 4;

async fn rounds(
    topology: &mut SentinelTopology,
    durability: Durability,
    prefix: &str,
) -> (usize, usize, load::Ledger) {
    let mut config = common::config_prefixed(topology, prefix);
    config.save_durability = durability;
    config.revoke_durability = durability;
    let store = Arc::new(common::plain_store(config).await);
    let running = load::start(store.clone(), 2);
    running.wait_successes(100, LIVENESS);
    for round in 1..=ROUNDS {
        let old = topology.master_port();
        let generation = store.connection().generation();
        let crash = round % 2 == 1;
        let killed = Instant::now();
        if crash {
            topology.kill_node(old);
        } else {
            topology.failover(LIVENESS);
        }
        let new = topology.wait_new_master(old, LIVENESS);
        let promoted = Instant::now();
        running.wait_served_by_generation_above(generation, LIVENESS);
        println!(
            "[{durability:?}] round {round} ({}): master {old} -> {new}, new master confirmed {} ms after the trigger, store served by it {} ms after",
            if crash { "SIGKILL" } else { "SENTINEL FAILOVER" },
            ms(killed, promoted),
            ms(killed, Instant::now())
        );
        if crash {
            topology.restart_as_replica(old);
        } else {
            topology.wait_ready(TOPOLOGY_READY_TIMEOUT);
        }
        running.wait_successes(100, LIVENESS);
    }
    let ledger = running.stop().await;
    let (lost, resurrected) = load::audit(&store, &ledger).await;
    println!(
        "[{durability:?}] {} acknowledged writes, {lost} lost; {} acknowledged deletes, {resurrected} came back; errors {:?}; discovery {:?}",
        ledger.live.len(),
        ledger.deleted.len(),
        ledger.errors,
        store.connection().stats()
    );
    (lost, resurrected, ledger)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_writes_survive_repeated_failovers() {
    let _serial = common::serial().await;
    let mut topology = TopologySpec::full().start();
    let replicated = Durability::Replicated {
        replicas: 1,
        timeout: Duration::from_millis(250),
    };
    let (lost, resurrected, ledger) = rounds(&mut topology, replicated, "dr:").await;
    assert!(
        ledger.live.len() > 100 && ledger.deleted.len() > 10,
        "too little load to judge"
    );
    assert_eq!(lost, 0, "acknowledged replicated writes were lost");
    assert_eq!(resurrected, 0, "acknowledged replicated deletes came back");

    // The same on asynchronous saves and deletes: only reported.
    let (lost, resurrected, ledger) = rounds(&mut topology, Durability::Async, "da:").await;
    println!(
        "[Async] lost {lost} of {} acknowledged writes, {resurrected} of {} deletes came back (reported, not asserted)",
        ledger.live.len(),
        ledger.deleted.len()
    );
}

/// A create that the master refuses while queuing it (`NOREPLICAS`, from
/// `min-replicas-to-write` above its replicas) makes Redis discard the whole transaction:
/// the caller gets a retryable error naming the refusal, nothing is written, and the same
/// create succeeds once the master accepts writes again. Replicated (the write and its `WAIT`
/// on a pooled connection of their own) and asynchronous (the shared connection) alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_refused_while_queued_is_retryable_and_writes_nothing() {
    let _serial = common::serial().await;
    let topology = TopologySpec::light().start();
    let replicated = Durability::Replicated {
        replicas: 1,
        timeout: Duration::from_millis(250),
    };
    for (prefix, durability) in [("drq:", replicated), ("daq:", Durability::Async)] {
        let mut config = common::config_prefixed(&topology, prefix);
        config.save_durability = durability;
        let store = common::plain_store(config).await;
        refused_create(&topology, &store).await;
    }
}

async fn refused_create(topology: &SentinelTopology, store: &SentinelStore) {
    let master = topology.admin_port(topology.master_port());
    let min_replicas = |n: u32| {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("SET").arg("min-replicas-to-write").arg(n);
        query::<()>(master, &cmd).expect("CONFIG SET min-replicas-to-write");
    };
    let id = SessionId::generate();
    let data = Arc::new(common::data(1));
    let create = || store.put(&id, data.clone(), PutMode::Create, WriteOptions::new());

    min_replicas(5);
    let err = create().await.expect_err("the master refuses writes");
    assert!(
        matches!(err, Error::Unavailable { .. }) && err.is_retryable(),
        "{err:?}"
    );
    assert!(format!("{err:?}").contains("NOREPLICAS"), "{err:?}");
    assert!(store.load(&id).await.expect("load").is_none());

    min_replicas(0);
    create().await.expect("create once writes are accepted");
    let loaded = store.load(&id).await.expect("load").expect("created");
    assert_eq!(loaded.data(), &*data);
}
