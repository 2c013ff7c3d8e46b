//! # redis-harness: real `redis-server` processes for tests
//!
//! Tests against Redis start their own servers: each on a free loopback port, in its own
//! temporary directory, without persistence, owned by the test and killed when dropped (also
//! when the test panics). Nothing here ever touches port 6379 or a server the test did not
//! start.
//!
//! - [`RedisServer`]: one standalone server, with [`RedisServer::kill`] and
//!   [`RedisServer::restart`] (same port) for fault tests.
//! - [`ServerSpec`] + [`Process`]: the generic core, "spawn `redis-server` with these config
//!   lines in a temp dir", which topologies (replicas, sentinels) build on.
//! - [`cluster::ClusterTopology`]: a Redis Cluster (3 primaries, 1 replica each, by default)
//!   joined with `redis-cli --cluster create`, with kill/restart, failover and live-resharding
//!   helpers; needs `redis-cli` too (`apt-get install -y redis-tools`).
//! - [`tls::TlsFiles`] + [`ServerSpec::tls`]: servers that also serve TLS, with a throwaway
//!   CA and server certificate made by the `openssl` tool (topologies too:
//!   [`sentinel::TopologySpec::tls`]).
//! - [`wait_until`]: poll a condition with a deadline, instead of sleeping.
//! - [`timeshift::TimeShifted`]: a store wrapper that moves Redis TTLs along with a test's
//!   manual clock, for stores whose liveness Redis decides.
//!
//! If `redis-server` is not installed, starting a server panics with the install hint:
//! `install it: apt-get install -y redis-server`.
//!
//! ```no_run
//! use redis_harness::RedisServer;
//!
//! let server = RedisServer::start();
//! let mut con = server.connection();
//! let pong: String = redis::cmd("PING").query(&mut con).unwrap();
//! assert_eq!(pong, "PONG");
//! // Dropping `server` kills the process and removes its directory.
//! ```
#![deny(missing_docs)]

pub mod cluster;
pub mod fixtures;
mod port;
mod process;
pub mod sentinel;
mod server;
pub mod timeshift;
pub mod tls;
mod wait;

pub use port::free_port;
pub use process::{Process, ServerSpec, INSTALL_HINT};
pub use server::RedisServer;
pub use wait::{wait_until, READY_TIMEOUT};
