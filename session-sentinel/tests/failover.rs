//! Failover under load, two ways (master SIGKILLed; `SENTINEL FAILOVER`), on the full
//! topology (1 master, 2 replicas, 3 Sentinels, quorum 2). One store object serves a steady
//! mix of writes, reads and deletes throughout and serves again after the promotion.
//!
//! Each test prints the store's unavailability window (last success before the outage, first
//! success after) next to Sentinel's own promotion time measured in the same run (trigger to
//! the first Sentinel answering with the new address; trigger to `+switch-master`). Only
//! liveness is asserted, against generous bounds; the numbers are for the report.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{load, ms, watch_promotion};
use redis_harness::sentinel::{query, TopologySpec};
use session_core::{SessionConfig, SessionStoreExt, SystemClock};

const LIVENESS: Duration = Duration::from_secs(30);

fn session() -> SessionConfig {
    SessionConfig {
        key_prefix: "fo:".into(),
        ..SessionConfig::default()
    }
}

#[derive(Clone, Copy, Debug)]
enum Trigger {
    Kill,
    SentinelFailover,
}

async fn failover_under_load(trigger: Trigger) {
    let _serial = common::serial().await;
    let mut topology = TopologySpec::full().start();
    let store = Arc::new(common::store_on(&topology, session(), Arc::new(SystemClock)).await);
    let old = topology.master_port();
    let generation = store.connection().generation();

    let running = load::start(store.clone(), 2);
    running.wait_successes(200, LIVENESS);
    let promotion = watch_promotion(
        topology.sentinel_ports(),
        topology.master_name().to_owned(),
        old,
    )
    .await;

    let triggered = Instant::now();
    match trigger {
        Trigger::Kill => topology.kill_node(old),
        Trigger::SentinelFailover => topology.failover(LIVENESS),
    }
    let new = topology.wait_new_master(old, LIVENESS);
    running.wait_served_by_generation_above(generation, LIVENESS);
    running.wait_successes(200, LIVENESS);
    let promotion = promotion.await.expect("promotion watcher");
    let ledger = running.stop().await;

    let (last_ok, first_ok) = load::outage(&ledger.events, triggered);
    let window = ms(last_ok, first_ok);
    let promoted = ms(triggered, promotion.addr_changed);
    let switched = promotion.switch_master.map(|t| ms(triggered, t));
    let first_on_new = ledger
        .events
        .iter()
        .filter(|e| e.ok && e.generation > generation && e.end >= triggered)
        .map(|e| ms(triggered, e.end))
        .min();
    println!(
        "[{trigger:?}] unavailability window {window} ms (last success {} ms, first success {} ms after the trigger); \
         Sentinel promotion {promoted} ms (first GET-MASTER-ADDR-BY-NAME change), +switch-master {switched:?} ms; \
         window - promotion = {} ms; first success on the new master {first_on_new:?} ms after the trigger",
        ms(triggered, last_ok),
        ms(triggered, first_ok),
        window - promoted,
    );
    println!(
        "[{trigger:?}] {} operations, errors {:?}, reads that missed an acknowledged write {}, discovery {:?}",
        ledger.events.len(),
        ledger.errors,
        ledger.read_misses,
        store.connection().stats()
    );

    // Liveness: the same store serves again, from the new master.
    assert!(window < LIVENESS.as_millis() as i64, "window {window} ms");
    assert_eq!(store.connection().master().map(|(_, p)| p), Some(new));
    let after = store
        .create(common::data(1))
        .await
        .expect("a write after failover");
    let key = format!("fo:{}", after.id().expose_token());
    let on_new: bool = query(new, redis::cmd("EXISTS").arg(&key)).expect("EXISTS");
    assert!(on_new, "the write after failover is on the new master");

    let (lost, resurrected) = load::audit(&store, &ledger).await;
    println!(
        "[{trigger:?}] async saves: {lost} of {} acknowledged writes lost, {resurrected} of {} acknowledged (replicated) deletes came back",
        ledger.live.len(),
        ledger.deleted.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_killed_under_load() {
    failover_under_load(Trigger::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_under_load() {
    failover_under_load(Trigger::SentinelFailover).await;
}
