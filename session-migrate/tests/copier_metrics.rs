//! The copier's progress through the `metrics` facade, with `metrics_util`'s
//! `DebuggingRecorder` installed for this test's thread only.

use std::collections::HashMap;
use std::sync::Arc;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use session_core::{SessionData, SessionStore, SessionStoreExt};
use session_memory::MemoryStore;
use session_migrate::{MigratingStore, COPIED_TOTAL, REMAINING};

#[test]
fn copied_and_remaining_are_reported_per_batch() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // A snapshot drains what it shows: each one holds what was reported since the last.
    let snapshot = || -> HashMap<String, DebugValue> {
        let labels = [("store", "migrating"), ("from", "memory"), ("to", "memory")];
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| {
                let key = key.key();
                key.labels().count() == labels.len()
                    && key.labels().all(|l| labels.contains(&(l.key(), l.value())))
            })
            .map(|(key, .., value)| (key.key().name().to_owned(), value))
            .collect()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let old = Arc::new(MemoryStore::new());
    let store = MigratingStore::new(old.clone(), Arc::new(MemoryStore::new()));

    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            for _ in 0..5 {
                old.create(SessionData::new()).await.unwrap();
            }
            let progress = store.copy_batch(2).await.unwrap();
            assert_eq!((progress.copied, progress.remaining), (2, 3));
        })
    });
    let value = snapshot();
    let value = |name: &str| value.get(name);
    assert_eq!(value(COPIED_TOTAL), Some(&DebugValue::Counter(2)));
    assert_eq!(value(REMAINING), Some(&DebugValue::Gauge(3.0.into())));

    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let progress = store.copy_batch(10).await.unwrap();
            assert!(progress.complete);
            assert_eq!(old.count().await.unwrap(), 0);
        })
    });
    let value = snapshot();
    let value = |name: &str| value.get(name);
    assert_eq!(value(COPIED_TOTAL), Some(&DebugValue::Counter(3)));
    assert_eq!(value(REMAINING), Some(&DebugValue::Gauge(0.0.into())));
}
