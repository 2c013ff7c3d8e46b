//! Sentinel over TLS: a topology whose nodes and Sentinels serve TLS with a throwaway CA's
//! certificate and replicate over it (`tls-replication yes`), so the Sentinels report TLS
//! ports. The store discovers the master, round-trips and follows a failover through TLS
//! connections that trust that CA (`REDIS_TLS`, `REDIS_TLS_CA_FILE`); with another CA it
//! fails with a typed error that says why, within its budgets. Needs the `tls` feature.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_harness::sentinel::{SentinelTopology, TopologySpec};
use redis_harness::tls::TlsFiles;
use session_core::{Error, SessionStore, SessionStoreExt};
use session_sentinel::{SentinelConfig, SentinelStore};

/// Settings as a deployment sets them, from the environment's variables.
fn config(topology: &SentinelTopology, ca_file: &Path) -> SentinelConfig {
    let sentinels = topology.sentinel_addrs().join(",");
    let ca_file = ca_file.display().to_string();
    SentinelConfig::from_lookup(|name| match name {
        "REDIS_SENTINELS" => Some(sentinels.clone()),
        "REDIS_MASTER_NAME" => Some(topology.master_name().to_owned()),
        "REDIS_TLS" => Some("true".into()),
        "REDIS_TLS_CA_FILE" => Some(ca_file.clone()),
        "REDIS_SENTINEL_TIMEOUT_MS" => Some("1000".into()),
        "REDIS_CONNECT_TIMEOUT_MS" => Some("1000".into()),
        "SESSION_KEY_PREFIX" => Some("tls:".into()),
        _ => None,
    })
    .unwrap()
}

/// The error and every source in its chain, as one string.
fn chain(err: &Error) -> String {
    let mut shown = format!("{err}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        shown.push_str(&format!(" | {s}"));
        source = s.source();
    }
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_over_tls_with_a_private_ca() {
    let _serial = common::serial().await;
    let files = Arc::new(TlsFiles::generate());
    // One Sentinel with quorum 1 can still fail over (`SENTINEL FAILOVER`).
    let topology = TopologySpec::light().tls(files.clone()).start();
    assert!(topology.is_tls());
    let master = topology.master_port();
    assert_ne!(
        topology.admin_port(master),
        master,
        "the Sentinels report the TLS port"
    );

    let store = SentinelStore::connect(config(&topology, &files.ca_cert()))
        .await
        .expect("discover and connect over TLS");
    assert_eq!(store.connection().master().map(|(_, p)| p), Some(master));
    let session = store.create(common::data(1)).await.unwrap();
    let id = session.id().clone();
    let loaded = store.get(&id).await.unwrap().expect("loads");
    assert_eq!(loaded.data(), session.data());
    let updated = store
        .update(&id, |d| {
            d.insert("theme".into(), "dark".into());
        })
        .await
        .unwrap()
        .expect("updates");
    assert_ne!(updated.version(), session.version());
    assert_eq!(store.count().await.unwrap(), 1);
    // Revocations wait for a replica (the default durability): replication runs over TLS.
    assert!(store.delete(&id).await.unwrap());
    assert!(store.get(&id).await.unwrap().is_none());
    assert_eq!(store.count().await.unwrap(), 0);

    // A failover: the store finds the promoted replica and connects to it over TLS.
    let kept = store.create(common::data(2)).await.unwrap();
    topology.failover(Duration::from_secs(20));
    let promoted = topology.wait_new_master(master, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match store.set(kept.id(), common::data(3)).await {
            Ok(_) if store.connection().master().map(|(_, p)| p) == Some(promoted) => break,
            Ok(_) => {}
            Err(e) if e.is_retryable() => {}
            Err(e) => panic!("after the failover: {e:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "the store did not follow the failover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // poll interval
    }
    let reloaded = store
        .get(kept.id())
        .await
        .unwrap()
        .expect("kept across the failover");
    assert_eq!(reloaded.data()["n"], 3);

    // A CA that did not sign the certificates: typed, in time, and saying why.
    let started = Instant::now();
    let mut wrong = config(&topology, &files.other_ca_cert());
    wrong.retry_budget = Duration::from_millis(500);
    let err = SentinelStore::connect(wrong)
        .await
        .expect_err("the Sentinels' certificate is not trusted");
    let took = started.elapsed();
    let shown = chain(&err);
    assert!(took < Duration::from_secs(5), "took {took:?}: {shown}");
    assert!(
        matches!(
            err,
            Error::Unavailable {
                backend: "sentinel",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        shown.contains("certificate") && shown.contains("UnknownIssuer"),
        "{shown}"
    );
}
