//! `sessionctl`: inspect, clean and copy sessions from a shell.
//!
//! Configured like the services (`SESSION_BACKEND`, `REDIS_HOST`, …, see `session-store`) or
//! by `--url`. Every subcommand has `--json` output; tokens are printed only by
//! `list --show-tokens`. Exit codes: 0 success, 1 not found, 2 usage or configuration error,
//! 3 backend error, 4 verify mismatch, 5 sessions that could not be copied (`sessionctl
//! --help` has the details).

mod cli;
mod commands;
mod migrate;
mod output;
mod redis_side;
mod stats;

use std::process::ExitCode;

use clap::Parser as _;
use session_store::BackendConfig;

// `migrate` allocates and frees a few buffers per session (values, commands, replies): glibc's
// malloc cost a fifth of its CPU time under perf, mimalloc much less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use crate::cli::{Cli, Command};
use crate::output::{Exit, Failure, Out};

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors exit 2 (clap's default)
    let out = Out { json: cli.json };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            out.fail(&Failure::new(
                Exit::Backend,
                format!("cannot start the runtime: {e}"),
            ));
            return Exit::Backend.into();
        }
    };
    match runtime.block_on(run(cli, out)) {
        Ok(()) => Exit::Ok.into(),
        Err(failure) => {
            out.fail(&failure);
            failure.exit.into()
        }
    }
}

async fn run(cli: Cli, out: Out) -> Result<(), Failure> {
    if let Command::Migrate(args) = &cli.command {
        return migrate::migrate(args, out).await;
    }
    // A malformed token is a usage error whether or not the server is up.
    let id = match &cli.command {
        Command::Set { token, data, .. } if token == "-" && data == "-" => {
            return Err(Failure::usage(
                "only one of TOKEN and JSON can be read from stdin",
            ))
        }
        Command::Get { token }
        | Command::Delete { token }
        | Command::Refresh { token }
        | Command::Set { token, .. } => Some(commands::parse_token(token)?),
        _ => None,
    };
    let config = match &cli.url {
        Some(url) => BackendConfig::from_url(url)?,
        None => BackendConfig::from_env()?,
    };
    let session_config = config.session_config().clone();
    let connected = config.connect().await?;
    let redis = redis_side::redis_side(&connected);
    let store = connected.into_dyn();
    let store_ref = store.as_ref();
    match &cli.command {
        Command::Count => commands::count(store_ref, out).await,
        Command::List(args) => commands::list(store.clone(), &session_config, out, args).await,
        Command::Get { .. } => commands::get(store_ref, out, token_of(&id)).await,
        Command::Set { data, ttl, .. } => {
            commands::set(store_ref, out, token_of(&id), data, *ttl).await
        }
        Command::Delete { .. } => commands::delete(store_ref, out, token_of(&id)).await,
        Command::Refresh { .. } => commands::refresh(store_ref, out, token_of(&id)).await,
        Command::RevokeUser { user } => commands::revoke_user(store_ref, out, user).await,
        Command::Cleanup => commands::cleanup(store_ref, out).await,
        Command::Stats { active_minutes } => {
            stats::stats(store.clone(), redis, &session_config, out, *active_minutes).await
        }
        Command::Migrate(_) => unreachable!("handled above"),
    }
}

/// The token parsed up front for the subcommands that take one.
fn token_of(id: &Option<session_store::SessionId>) -> &session_store::SessionId {
    id.as_ref().expect("parsed before connecting")
}
