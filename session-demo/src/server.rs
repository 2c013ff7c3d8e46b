//! Starting the service: configuration, store, listener, banner, graceful shutdown.

use std::future::Future;
use std::io::{self, Write as _};
use std::net::SocketAddr;

use session_store::BackendConfig;
use tokio::net::TcpListener;

use crate::config::DemoConfig;
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

/// Runs the service as the binary does: settings from the environment, the store named by
/// `SESSION_BACKEND`, the banner and `listening on http://…/` on stdout, until Ctrl-C or
/// SIGTERM.
///
/// # Errors
/// See [`ServeError`].
pub async fn run_from_env() -> Result<(), ServeError> {
    let config = DemoConfig::from_env().map_err(ServeError::Config)?;
    let backend = BackendConfig::from_env().map_err(ServeError::Config)?;
    let addr = config.addr;
    let state = connect(backend, config).await?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    print_banner(&state, local);
    serve(listener, state, shutdown_signal()).await
}

/// Connects the store `backend` describes and builds the app's state over it, with the
/// backend's user keys (what [`run_from_env`] does after reading the environment).
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
    Ok(AppState::new(store, &session_config, config))
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
