//! `GET /metrics`: what the session store reports through the `metrics` facade, in the
//! Prometheus text format.
//!
//! The libraries only report (`session_store::metrics`, `session_migrate`); the application
//! picks the exporter. The binary ([`run_from_env`](crate::run_from_env)) [`install`]s
//! `metrics-exporter-prometheus` as the process's recorder, keeps its histograms drained
//! ([`spawn_upkeep`]) and hands the handle to the router
//! ([`AppState::with_metrics`](crate::AppState::with_metrics)); without a handle `/metrics`
//! is a 404. What it shows:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `session_store_calls_total` | counter | `backend`, `op`, `outcome` |
//! | `session_store_call_seconds` | histogram ([`LATENCY_BUCKETS`]) | `backend`, `op` |
//! | `session_store_live_sessions` | gauge, set by the admin page's and `/healthz`'s `count` and by the periodic cleanup (`DEMO_CLEANUP_SECONDS`) | `backend` |
//!
//! No label holds a token or a user: the page is safe to scrape without a login, as
//! Prometheus does (a real service would still serve it on an internal port only).

use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use session_store::metrics::CALL_SECONDS;

/// The `Content-Type` of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds of `session_store_call_seconds`, in seconds: from an in-memory call (well
/// under a millisecond) to a Redis call waiting out a failover.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// How often [`spawn_upkeep`] drains the recorder's histogram samples into their buckets.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder as this process's `metrics` recorder and registers the
/// store metrics' help texts. Once per process: a second call fails.
///
/// # Errors
/// [`BuildError`] when a recorder is already installed.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(CALL_SECONDS.to_owned()), &LATENCY_BUCKETS)?
        .install_recorder()?;
    session_store::metrics::describe();
    Ok(handle)
}

/// Runs the recorder's upkeep every [`UPKEEP_INTERVAL`] (`install_recorder` leaves that to
/// the application), so histogram samples do not pile up between scrapes.
pub fn spawn_upkeep(handle: PrometheusHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            every.tick().await;
            handle.run_upkeep();
        }
    })
}
