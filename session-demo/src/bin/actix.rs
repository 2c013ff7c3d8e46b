//! `cargo run -p session-demo --bin session-demo-actix`: the demo's login on actix-web +
//! actix-session, over the same store as the axum demo (see `session_demo::actix`).
//!
//! Settings: the store's (`SESSION_BACKEND`, `REDIS_HOST`, …, as `session_store::from_env`),
//! `DEMO_ACTIX_ADDR` (default `127.0.0.1:3001`), `DEMO_SECURE_COOKIE`.

use std::net::SocketAddr;
use std::process::ExitCode;

use actix_web::cookie::Key;
use actix_web::{App, HttpServer};
use session_demo::actix::{ActixDemo, DEFAULT_ACTIX_ADDR};
use session_demo::users::{self, DEMO_CREDENTIALS};
use session_demo::DemoConfig;
use session_store::BackendConfig;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match actix_web::rt::System::new().block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("session-demo-actix: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("DEMO_ACTIX_ADDR")
        .ok()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ACTIX_ADDR.into())
        .trim()
        .parse()
        .map_err(|_| "DEMO_ACTIX_ADDR: expected IP:PORT, like 127.0.0.1:3001")?;
    let secure_cookie = DemoConfig::from_env()?.secure_cookie;
    // What `session_store::from_env()` does, keeping the configuration for the TTL and the
    // user keys.
    let backend = BackendConfig::from_env()?;
    let session_config = backend.session_config().clone();
    let store = session_store::metered(backend.connect().await?.into_dyn());
    let backend_name = store.backend();
    let demo = ActixDemo::new(store, &session_config, secure_cookie);
    // One key per process: cookies do not survive a restart of this binary (the sessions in
    // the store do). Several instances would share one key.
    let key = Key::generate();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(demo.middleware(key.clone()))
            .configure(demo.clone().routes())
    })
    .bind(addr)?;
    let local = server.addrs().first().copied().unwrap_or(addr);
    println!("session-demo-actix: sessions in the {backend_name} backend (SESSION_BACKEND)");
    println!("demo users (a demo: these passwords are public):");
    for (name, password) in DEMO_CREDENTIALS {
        let role = users::find(name).map_or("?", |u| u.role.as_str());
        println!("  {name:<8} password {password:<12} role {role}");
    }
    println!("listening on http://{local}/");
    server.run().await?;
    Ok(())
}
