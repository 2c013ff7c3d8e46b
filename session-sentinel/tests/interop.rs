//! A session written through Sentinel reads back through a plain `RedisStore` on the current
//! master, and the reverse: the Sentinel backend adds discovery only, not a format.

mod common;

use std::sync::Arc;
use std::time::Duration;

use redis_harness::sentinel::TopologySpec;
use session_core::{SessionConfig, SessionStore, SessionStoreExt, SystemClock};
use session_redis::{RedisConfig, RedisStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_and_plain_redis_read_each_other() {
    let topology = TopologySpec::light().start();
    let session = SessionConfig {
        key_prefix: "io:".into(),
        ..SessionConfig::default()
    };
    let sentinel = common::store_on(&topology, session.clone(), Arc::new(SystemClock)).await;
    let master = sentinel.connection().master().expect("a master").1;
    assert_eq!(master, topology.master_port());
    let plain = RedisStore::connect(RedisConfig {
        port: master,
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(500),
        session,
        ..RedisConfig::default()
    })
    .await
    .expect("plain store on the master");

    let a = sentinel.create(common::data(1)).await.unwrap();
    let read = plain
        .get(a.id())
        .await
        .unwrap()
        .expect("written via sentinel, read plain");
    assert_eq!(read.data(), a.data());
    assert_eq!(read.version(), a.version());

    let b = plain.create(common::data(2)).await.unwrap();
    let read = sentinel
        .get(b.id())
        .await
        .unwrap()
        .expect("written plain, read via sentinel");
    assert_eq!(read.data(), b.data());
    assert_eq!(read.version(), b.version());

    // Either side's writes move the version the other side holds.
    let saved = sentinel.save(read).await.unwrap();
    assert!(plain.save(b).await.is_err(), "a stale plain save conflicts");
    assert_eq!(
        plain.load(saved.id()).await.unwrap().unwrap().version(),
        saved.version()
    );
    assert_eq!(plain.list_user("u-2").await.unwrap().len(), 1);
    assert!(plain.delete(a.id()).await.unwrap());
    assert!(!sentinel.exists(a.id()).await.unwrap());
}
