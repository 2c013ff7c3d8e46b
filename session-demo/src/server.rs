//! Starting the service: configuration, metrics recorder, store, cleanup task, listener,
//! banner, graceful shutdown.

use std::future::Future;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use session_store::{BackendConfig, SessionStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::DemoConfig;
use crate::metrics;
use crate::routes::router;
use crate::state::AppState;
use crate::users::{self, DEMO_CREDENTIALS};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A setting is missing or malformed (the message names the variable).
    #[error(transparent)]
    Config(session_store::Error),
    /// The session store could not be reached.
    #[error("cannot connect to the session store: {0}")]
    Store(session_store::Error),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from `DEMO_ADDR`.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(io::Error),
}

/// Runs the service as the binary does: settings from the environment, the Prometheus
/// recorder behind `GET /metrics` (see [`crate::metrics`]), the store named by
/// `SESSION_BACKEND` (metered), the cleanup task (`DEMO_CLEANUP_SECONDS`), the banner and
/// `listening on http://…/` on stdout, until Ctrl-C or SIGTERM.
///
/// # Errors
/// See [`ServeError`].
pub async fn run_from_env() -> Result<(), ServeError> {
    let config = DemoConfig::from_env().map_err(ServeError::Config)?;
    let backend = BackendConfig::from_env().map_err(ServeError::Config)?;
    let addr = config.addr;
    let cleanup_interval = config.cleanup_interval;
    // Before the store reports anything: the recorder is the process's, once.
    let recorder = match metrics::install() {
        Ok(handle) => Some(handle),
        Err(error) => {
            tracing::warn!(%error, "no metrics recorder: GET /metrics is off");
            None
        }
    };
    let mut state = connect(backend, config).await?;
    let mut tasks = Vec::new();
    if let Some(handle) = recorder {
        tasks.push(metrics::spawn_upkeep(handle.clone()));
        state = state.with_metrics(handle);
    }
    if let Some(every) = cleanup_interval {
        tasks.push(spawn_cleanup(state.clone(), every));
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    print_banner(&state, local);
    let served = serve(listener, state, shutdown_signal()).await;
    for task in tasks {
        task.abort();
    }
    served
}

/// Connects the store `backend` describes, wrapped in a `MeteredStore`
/// (`session_store::metered`), and builds the app's state over it, with the backend's user
/// keys (what [`run_from_env`] does after reading the environment).
///
/// # Errors
/// [`ServeError::Store`] when the store cannot be reached.
pub async fn connect(backend: BackendConfig, config: DemoConfig) -> Result<AppState, ServeError> {
    let session_config = backend.session_config().clone();
    let store = backend
        .connect()
        .await
        .map_err(ServeError::Store)?
        .into_dyn();
    Ok(AppState::new(
        session_store::metered(store),
        &session_config,
        config,
    ))
}

/// Every `every` (first after one period): `cleanup`, then `count`, which sets the
/// live-sessions gauge (`session_store::metrics::cleanup_and_count`) and is sampled into the
/// admin chart's history ([`AppState::record_live`]). A failed pass is logged and the next one
/// runs as planned.
fn spawn_cleanup(state: AppState, every: Duration) -> JoinHandle<()> {
    let store: Arc<dyn SessionStore> = state.store_arc();
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + every;
        let mut ticks = tokio::time::interval_at(start, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match session_store::metrics::cleanup_and_count(&*store).await {
                Ok((report, live)) => {
                    state.record_live(live);
                    tracing::debug!(
                        removed = report.removed,
                        repaired = report.repaired,
                        live,
                        "session cleanup"
                    );
                }
                Err(error) => tracing::warn!(%error, "session cleanup failed"),
            }
        }
    })
}

/// Serves the demo on `listener` until `shutdown` completes, then finishes the requests in
/// flight.
///
/// # Errors
/// [`ServeError::Serve`] if the server fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Serve)
}

/// The startup banner: backend, demo credentials (public by design), and the URL, flushed so
/// a parent process reading stdout sees the port at once.
fn print_banner(state: &AppState, local: SocketAddr) {
    let mut out = io::stdout().lock();
    // Printing is best effort: a closed stdout must not stop the service.
    let _ = writeln!(
        out,
        "session-demo: sessions in the {} backend (SESSION_BACKEND)",
        state.store().backend()
    );
    let _ = writeln!(out, "demo users (a demo: these passwords are public):");
    for (name, password) in DEMO_CREDENTIALS {
        let role = users::find(name).map_or("?", |u| u.role.as_str());
        let _ = writeln!(out, "  {name:<8} password {password:<12} role {role}");
    }
    let _ = writeln!(out, "listening on http://{local}/");
    let _ = out.flush();
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No Ctrl-C handling available: wait for the other signal only.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use session_store::memory::MemoryStore;
    use session_store::{
        Clock as _, SessionConfig, SessionData, SessionStoreExt as _, SystemClock,
    };

    use super::*;

    #[tokio::test]
    async fn the_cleanup_task_samples_the_live_count_into_the_history() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        store.create(SessionData::new()).await.unwrap();
        store.create(SessionData::new()).await.unwrap();
        let state = AppState::new(store, &SessionConfig::default(), DemoConfig::default());
        let task = spawn_cleanup(state.clone(), Duration::from_millis(20));
        let sampled = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let minutes = state.history().per_minute(SystemClock.now());
                if let Some(live) = minutes.into_iter().flatten().next_back() {
                    return live;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        task.abort();
        assert_eq!(sampled.expect("a sample within 10 s"), 2);
    }
}
