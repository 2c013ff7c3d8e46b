//! Command line: global flags and subcommands (clap derive).

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Backend: --url URL, or the environment the services read:
  SESSION_BACKEND=memory|redis|sentinel, REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_URL,
  REDIS_USERNAME, REDIS_PASSWORD, REDIS_SENTINELS, REDIS_MASTER_NAME, SESSION_TTL,
  SESSION_KEY_PREFIX, SESSION_USER_KEYS, ...
URL forms:
  memory://                                  (a new, empty store: for trying things out)
  redis://[user[:password]@]host[:port][/db]
  rediss://...                               (TLS; build with --features tls)
  redis+sentinel://[user[:password]@]host1[:port1][,host2[:port2]...]/master_name[/db]
  rediss+sentinel://...                      (TLS to the data nodes)
  A URL is the whole address: REDIS_HOST, REDIS_PASSWORD, ... are then ignored.
  Sentinels' own credentials: REDIS_SENTINEL_USERNAME, REDIS_SENTINEL_PASSWORD.
TOKEN: a session token (43 URL-safe base64 characters), or - to read it from stdin
  (keeps it out of the process list and shell history).
Exit codes:
  0 success   1 not found (get/delete/refresh of an unknown session)
  2 usage or configuration error (including a malformed TOKEN)
  3 backend error (server unreachable, refused, corrupt record)
  4 migrate --verify found a mismatch   5 migrate could not copy some sessions";

/// Inspect, clean and copy sessions in a session store.
#[derive(Debug, Parser)]
#[command(name = "sessionctl", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// The store, by URL (overrides SESSION_BACKEND and the REDIS_* address variables).
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,

    /// Machine-readable output: one JSON document on stdout (errors too).
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Number of live sessions.
    Count,
    /// Live sessions: handle, user, time left (tokens only with --show-tokens).
    List(ListArgs),
    /// Print a session's data (a JSON object).
    Get {
        /// The session token, or - for stdin.
        #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
        token: String,
    },
    /// Store a session (create or replace its data).
    Set {
        /// The session token, or - for stdin.
        #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
        token: String,
        /// The data: a JSON object, or - for stdin.
        #[arg(value_name = "JSON", allow_hyphen_values = true)]
        data: String,
        /// Idle timeout of this session in seconds (default SESSION_TTL).
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
        ttl: Option<u64>,
    },
    /// Delete a session.
    Delete {
        /// The session token, or - for stdin.
        #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
        token: String,
    },
    /// Slide a session's idle expiry (as activity does).
    Refresh {
        /// The session token, or - for stdin.
        #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
        token: String,
    },
    /// Delete every session of a user ("log out everywhere"). Runs a cleanup pass first, so
    /// sessions another writer stored directly (the existing service's SETEX) are indexed
    /// and revoked too.
    RevokeUser {
        /// The user id (the value of the first of SESSION_USER_KEYS a session has).
        #[arg(value_name = "USER", allow_hyphen_values = true)]
        user: String,
    },
    /// Purge expired sessions and repair indexes.
    Cleanup,
    /// Live sessions, distinct users, Redis memory, TTL distribution, active users.
    Stats {
        /// Window for "active users": sessions with activity in the last N minutes.
        #[arg(long, value_name = "N", default_value_t = 15)]
        active_minutes: u64,
    },
    /// Copy every session from one store to another, keeping remaining TTLs.
    Migrate(MigrateArgs),
}

/// `list` options.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this user's sessions.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Print tokens too. They are bearer credentials: anyone holding one is logged in.
    #[arg(long)]
    pub show_tokens: bool,
    /// Print at most N sessions.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

/// `migrate` options.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The store to copy from (redis://, rediss://, redis+sentinel://).
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The store to copy to (redis://, rediss://, redis+sentinel://).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Read and classify everything, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Afterwards, check every source session is in the target with equal data and TTL.
    #[arg(long)]
    pub verify: bool,
    /// Keys per SCAN page and sessions per write transaction.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch: u64,
    /// --verify: largest accepted difference between source and target TTLs, in ms.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub ttl_tolerance_ms: u64,
}
