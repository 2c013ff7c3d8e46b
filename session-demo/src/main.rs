//! `cargo run -p session-demo`: the demo service (see the library docs for routes and settings).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match session_demo::run_from_env().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("session-demo: {error}");
            ExitCode::from(2)
        }
    }
}
