//! A standalone server for one test.

use std::path::Path;
use std::time::Duration;

use crate::process::{Process, ServerSpec};

/// A `redis-server` owned by one test: started on a free loopback port, killed on drop.
///
/// ```no_run
/// use redis_harness::{RedisServer, ServerSpec};
///
/// let server = RedisServer::start_with(ServerSpec::redis().requirepass("s3cret"));
/// let mut con = server.connection(); // authenticates with the password
/// let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
/// ```
#[derive(Debug)]
pub struct RedisServer {
    process: Process,
}

impl RedisServer {
    /// A default server (see [`ServerSpec::redis`]).
    ///
    /// # Panics
    /// If `redis-server` is missing or does not start.
    pub fn start() -> Self {
        Self::start_with(ServerSpec::redis())
    }

    /// A server with extra configuration (passwords, ACL users, memory limits).
    pub fn start_with(spec: ServerSpec) -> Self {
        RedisServer {
            process: Process::start(spec),
        }
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// `redis://127.0.0.1:PORT/` (no credentials; plain text, also on a TLS server).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port())
    }

    /// The loopback port serving TLS.
    ///
    /// # Panics
    /// If the spec did not ask for TLS ([`ServerSpec::tls`]).
    pub fn tls_port(&self) -> u16 {
        self.process
            .tls_port()
            .expect("not a TLS server: start it with ServerSpec::tls")
    }

    /// `rediss://127.0.0.1:TLS_PORT/` (no credentials); clients must trust the CA of the
    /// spec's [`TlsFiles`](crate::tls::TlsFiles).
    ///
    /// # Panics
    /// If the spec did not ask for TLS.
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.tls_port())
    }

    /// The server's temp dir.
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    /// The underlying process, for topologies and fault tests.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// A client for assertions, authenticated if the spec set a password.
    pub fn client(&self) -> redis::Client {
        let mut info = redis::IntoConnectionInfo::into_connection_info(self.url())
            .expect("the harness URL is valid");
        if let Some(password) = self.process.spec().password() {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        redis::Client::open(info).expect("the harness URL is valid")
    }

    /// A blocking connection for assertions (raw `GET`, `EXISTS`, `SCAN`, `INFO`).
    ///
    /// # Panics
    /// If the server does not accept it within 5 seconds.
    pub fn connection(&self) -> redis::Connection {
        self.client()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("cannot connect to the test redis: {e}"))
    }

    /// A multiplexed async connection for assertions in async tests.
    pub async fn async_connection(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test redis: {e}"))
    }

    /// SIGKILLs the server and waits for it to exit.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.process.restart();
    }
}
