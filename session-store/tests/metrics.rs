//! `from_url` hands out a metered store (feature `metrics`, on by default).
#![cfg(feature = "metrics")]

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use session_store::metrics::{CALLS_TOTAL, CALL_SECONDS, LIVE_SESSIONS};
use session_store::{SessionData, SessionStoreExt};

#[test]
fn from_url_counts_and_times_calls_and_sets_the_live_sessions_gauge() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let store = session_store::from_url("memory://").await.unwrap();
                assert_eq!(store.backend(), "memory");
                store.create(SessionData::new()).await.unwrap();
                store.create(SessionData::new()).await.unwrap();
                assert_eq!(store.count().await.unwrap(), 2);
            })
    });

    let seen: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, .., value)| {
            let key = key.key().clone();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            (key.name().to_owned(), labels.join(","), value)
        })
        .collect();
    let value = |name: &str, labels: &str| {
        seen.iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|(.., v)| v)
            .unwrap_or_else(|| panic!("no {name}{{{labels}}}"))
    };
    assert_eq!(
        value(CALLS_TOTAL, "backend=memory,op=put_create,outcome=ok"),
        &DebugValue::Counter(2)
    );
    assert!(matches!(
        value(CALL_SECONDS, "backend=memory,op=put_create"),
        DebugValue::Histogram(v) if v.len() == 2
    ));
    assert_eq!(
        value(LIVE_SESSIONS, "backend=memory"),
        &DebugValue::Gauge(2.0.into())
    );
}

#[tokio::test]
async fn a_store_from_backend_config_is_not_metered_until_wrapped() {
    let store = session_store::BackendConfig::from_url("memory://")
        .unwrap()
        .connect()
        .await
        .unwrap()
        .into_dyn();
    let store = session_store::metered(store);
    assert_eq!(store.backend(), "memory");
    assert_eq!(store.count().await.unwrap(), 0);
}
