//! Command line: global flags and subcommands (clap derive).

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Backend: --url URL, or the environment the services read:
  SESSION_BACKEND=memory|redis|sentinel|cluster, REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_URL,
  REDIS_USERNAME, REDIS_PASSWORD, REDIS_SENTINELS, REDIS_MASTER_NAME, REDIS_CLUSTER_NODES,
  SESSION_TTL, SESSION_ABSOLUTE_TTL, SESSION_KEY_PREFIX, SESSION_USER_KEYS, SESSION_HASH_IDS, ...
  Use the service's own values: another SESSION_KEY_PREFIX or SESSION_HASH_IDS finds none
  of its sessions.
URL forms:
  memory://                                  (a new, empty store: for trying things out)
  redis://[user[:password]@]host[:port][/db]
  rediss://...                               (TLS; build with --features tls)
  redis+sentinel://[user[:password]@]host1[:port1][,host2[:port2]...]/master_name[/db]
  rediss+sentinel://...                      (TLS to the data nodes)
  redis+cluster://[user[:password]@]host1[:port1][,host2[:port2]...][/]
                                             (Redis Cluster: any of its nodes; no TLS yet)
  A URL is the whole address: REDIS_HOST, REDIS_PASSWORD, ... are then ignored.
  Sentinels' own credentials: REDIS_SENTINEL_USERNAME, REDIS_SENTINEL_PASSWORD.
TOKEN: a session token (43 URL-safe base64 characters), or - to read it from stdin
  (keeps it out of the process list and shell history).
Exit codes:
  0 success   1 not found (get/delete/refresh of an unknown session)
  2 usage or configuration error (including a malformed TOKEN)
  3 backend error (server unreachable, refused, corrupt record)
  4 migrate --verify found a mismatch   5 migrate could not copy some sessions
Each command's --help says what it prints and which of these it returns.";

/// The store line every subcommand's help ends with.
const STORE: &str = "\
Store: --url URL, or SESSION_BACKEND and the REDIS_* / SESSION_* variables the services
  read (`sessionctl --help` lists them and the URL forms).";

const COUNT_HELP: &str = "\
Prints the number (--json: {\"ok\":true,\"count\":N}). Redis: sessions another writer stored
directly are counted once this store or `sessionctl cleanup` has indexed them.
Exit codes: 0 success, 2 usage or configuration, 3 backend error.";

const LIST_HELP: &str = "\
One line per session: handle (the hex SHA-256 of the token, not the token), user, time left.
--user reads the per-user index (the user is the first of SESSION_USER_KEYS a session has).
Exit codes: 0 success (also when nothing is listed), 2 usage or configuration, 3 backend
  error.";

const GET_HELP: &str = "\
Prints the data as stored; --json adds the handle and the lifetime. Reading does not extend
the session.
Exit codes: 0 success, 1 no live session has TOKEN, 2 usage or configuration (a malformed
  TOKEN), 3 backend error.";

const SET_HELP: &str = "\
Creates the session, or replaces the data of the live one (an upsert): a live session keeps
its creation time and absolute expiry (SESSION_ABSOLUTE_TTL), and its idle expiry moves to
now + its idle timeout.
Exit codes: 0 success, 2 usage or configuration (a malformed TOKEN; JSON that is not an
  object, is larger than SESSION_MAX_BYTES or holds the reserved key __session__), 3 backend
  error.";

const DELETE_HELP: &str = "\
The token is dead at once: a request still carrying it finds no session.
Exit codes: 0 deleted, 1 no live session had TOKEN, 2 usage or configuration (a malformed
  TOKEN), 3 backend error.";

const REFRESH_HELP: &str = "\
Moves the idle expiry to now + the session's idle timeout, never past its absolute expiry.
Data and version stay (Redis: only the key's TTL moves).
Exit codes: 0 refreshed, 1 no live session has TOKEN, 2 usage or configuration (a malformed
  TOKEN), 3 backend error.";

const REVOKE_USER_HELP: &str = "\
Prints how many sessions were deleted (0 is a success too).
Exit codes: 0 success, 2 usage or configuration, 3 backend error.";

const CLEANUP_HELP: &str = "\
Safe to run at any time and as often as wanted: it never deletes a live session. Redis: it
also indexes the sessions another writer stored directly (the existing service's SETEX), so
count, list --user and revoke-user see them; run it periodically while such a writer is
active. Indexing one changes neither its data nor its remaining TTL. Prints the expired
sessions removed and the index entries repaired.
Exit codes: 0 success, 2 usage or configuration, 3 backend error.";

const STATS_HELP: &str = "\
Exit codes: 0 success, 2 usage or configuration, 3 backend error.";

const MIGRATE_HELP: &str = "\
Streams every session from --from to --to (both Redis-backed: redis://, rediss://,
redis+sentinel://, redis+cluster://), keeping each one's data byte for byte and its
remaining TTL, and gives the existing service's plain values their metadata and index
entries on the way. Nothing live in the target is overwritten, so a re-run copies only what
is missing.
The URLs are the whole addresses; the session settings come from the environment, for both
sides (SESSION_KEY_PREFIX, SESSION_HASH_IDS, SESSION_USER_KEYS, ...).
REDIS_RESPONSE_TIMEOUT_MS defaults to 30000 here (bulk calls run a whole page on the server).
Exit codes: 0 success, 2 usage or configuration (including a memory:// store), 3 backend
  error, 4 --verify found a session missing or different in the target, 5 some sessions
  could not be copied.";

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
    #[command(after_help = [COUNT_HELP, STORE].join("\n"))]
    Count,
    /// Live sessions: handle, user, time left (tokens only with --show-tokens).
    #[command(after_help = [LIST_HELP, STORE].join("\n"))]
    List(ListArgs),
    /// Print a session's data (a JSON object).
    #[command(after_help = [GET_HELP, STORE].join("\n"))]
    Get {
        /// The session token, or - for stdin.
        #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
        token: String,
    },
    /// Store a session (create or replace its data).
    #[command(after_help = [SET_HELP, STORE].join("\n"))]
    Set {
        /// The session token, or - for stdin.
        #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
        token: String,
        /// The data: a JSON object, or - for stdin.
        #[arg(value_name = "JSON", allow_hyphen_values = true)]
        data: String,
        /// Idle timeout of this session in seconds (default: a live session keeps its own, a
        /// new one gets SESSION_TTL).
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
        ttl: Option<u64>,
    },
    /// Delete a session.
    #[command(after_help = [DELETE_HELP, STORE].join("\n"))]
    Delete {
        /// The session token, or - for stdin.
        #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
        token: String,
    },
    /// Slide a session's idle expiry (as activity does).
    #[command(after_help = [REFRESH_HELP, STORE].join("\n"))]
    Refresh {
        /// The session token, or - for stdin.
        #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
        token: String,
    },
    /// Delete every session of a user ("log out everywhere").
    ///
    /// Runs a cleanup pass first, so sessions another writer stored directly (the existing
    /// service's SETEX) are indexed and revoked too.
    #[command(after_help = [REVOKE_USER_HELP, STORE].join("\n"))]
    RevokeUser {
        /// The user id (the value of the first of SESSION_USER_KEYS a session has).
        #[arg(value_name = "USER", allow_hyphen_values = true)]
        user: String,
    },
    /// Purge expired sessions and repair indexes.
    #[command(after_help = [CLEANUP_HELP, STORE].join("\n"))]
    Cleanup,
    /// Live sessions, distinct users, Redis memory, TTL distribution, active users.
    #[command(after_help = [STATS_HELP, STORE].join("\n"))]
    Stats {
        /// Window for "active users": sessions with activity in the last N minutes.
        #[arg(long, value_name = "N", default_value_t = 15)]
        active_minutes: u64,
    },
    /// Copy every session from one store to another, keeping remaining TTLs.
    #[command(after_help = MIGRATE_HELP)]
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
    /// The store to copy from (redis://, rediss://, redis+sentinel://, redis+cluster://).
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The store to copy to (redis://, rediss://, redis+sentinel://, redis+cluster://).
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
