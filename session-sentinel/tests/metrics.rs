//! The failover and rediscovery counters, against a real `SENTINEL FAILOVER` on the full
//! topology. Its own test binary: the discovery task runs on the runtime's worker threads, so
//! the recorder must be the global one, which can be installed once per process.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::SharedString;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::CompositeKey;
use redis_harness::sentinel::TopologySpec;
use session_core::{SessionConfig, SessionStoreExt, SystemClock};
use session_sentinel::{FAILOVERS_TOTAL, REDISCOVERIES_TOTAL, REDISCOVERY_REASONS};

const LIVENESS: Duration = Duration::from_secs(30);

type Entry = (
    CompositeKey,
    Option<metrics::Unit>,
    Option<SharedString>,
    DebugValue,
);

/// Every metric recorded so far. A snapshot resets the counters it reads (the debugging
/// recorder drains them), so each check takes one and reads everything from it.
fn snapshot(snapshotter: &Snapshotter) -> Vec<Entry> {
    snapshotter.snapshot().into_vec()
}

/// The series of counter `name` labelled `backend="sentinel"` and `master=master`, as
/// `(reason label, value)`.
fn counter(snapshot: &[Entry], name: &str, master: &str) -> Vec<(Option<String>, u64)> {
    snapshot
        .iter()
        .filter_map(|(key, _, _, value)| {
            let key = key.key();
            let label = |k: &str| {
                key.labels()
                    .find(|l| l.key() == k)
                    .map(|l| l.value().to_owned())
            };
            let ours = key.name() == name
                && label("backend").as_deref() == Some("sentinel")
                && label("master").as_deref() == Some(master);
            match value {
                DebugValue::Counter(n) if ours => Some((label("reason"), *n)),
                _ => None,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_is_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this binary");

    let topology = TopologySpec::full().start();
    let master = topology.master_name().to_owned();
    let session = SessionConfig {
        key_prefix: "metrics:".into(),
        ..SessionConfig::default()
    };
    let store = common::store_on(&topology, session, Arc::new(SystemClock)).await;
    store.create(common::data(0)).await.expect("a write before");
    let old = topology.master_port();
    let before = snapshot(&snapshotter);
    assert!(
        counter(&before, FAILOVERS_TOTAL, &master).is_empty(),
        "the first connect is no failover"
    );

    topology.failover(LIVENESS);
    let new = topology.wait_new_master(old, LIVENESS);

    // Wait until the store has followed: the `+switch-master` subscriber or a write refused
    // by the demoted master makes it rediscover.
    let deadline = Instant::now() + LIVENESS;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while store.connection().master().map(|(_, p)| p) != Some(new) {
        assert!(
            Instant::now() < deadline,
            "the store did not follow the failover: {:?}",
            store.connection()
        );
        let _ = store.create(common::data(1)).await;
        tick.tick().await;
    }
    store.create(common::data(2)).await.expect("a write after");

    let after = snapshot(&snapshotter);
    let failovers: u64 = counter(&after, FAILOVERS_TOTAL, &master)
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert!(failovers >= 1, "{FAILOVERS_TOTAL} = {failovers}");
    let rediscoveries = counter(&after, REDISCOVERIES_TOTAL, &master);
    let total: u64 = rediscoveries.iter().map(|(_, n)| n).sum();
    assert!(total >= 1, "{REDISCOVERIES_TOTAL}: {rediscoveries:?}");
    for (reason, _) in &rediscoveries {
        let reason = reason.as_deref().expect("a reason label");
        assert!(REDISCOVERY_REASONS.contains(&reason), "{reason}");
    }
    println!(
        "failovers {failovers}, rediscoveries {rediscoveries:?}, discovery {:?}",
        store.connection().stats()
    );
}
