//! `SentinelConnection`: a `redis` connection that follows the master through failovers.
//!
//! Shared state is the current master `(address, connections, generation)` behind a
//! `std::sync::RwLock` that is only ever held for a few instructions, never across an
//! `await`. Re-resolution is single-flight: the first request (or event) that needs it spawns
//! one discovery task; every other request waits on a `watch` channel for its outcome.
//! Invalidation names the generation it saw fail, so a late error from an old connection
//! never tears down a newer master.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Arg, Cmd, ErrorKind, Pipeline, RedisFuture, RedisResult, ServerErrorKind, Value};
use tokio::sync::watch;

use crate::config::{Durability, SentinelConfig};
use crate::discovery::{self, Counters, Found};
use crate::error::{Addr, SentinelError};

/// How long a request waits for discovery before failing with
/// [`SentinelError::NoMaster`] (the store then retries within its budget).
pub(crate) const RESOLVE_WAIT: Duration = Duration::from_secs(2);
/// How long a failover announcement fences replicated writes on the old master at most (by
/// then the switch happened, or the failover was aborted and the master stays).
const FENCE_MAX: Duration = Duration::from_secs(10);

/// A connection to whichever node the Sentinels name master, following failovers.
///
/// Implements [`ConnectionLike`], so `RedisStore<SentinelConnection>` runs the Redis
/// backend's scripts on it unchanged. Cloning is cheap and shares everything. A background
/// task subscribed to `+switch-master` (rotating across Sentinels) stops when the last clone
/// is dropped.
///
/// Re-resolves on: connection errors and timeouts, `READONLY`, `WAIT` refused by a replica,
/// `+switch-master` for its name. Writes the store's scripts classify as covered by a
/// [`Durability::Replicated`] setting are pipelined with `WAIT` on a dedicated connection.
#[derive(Clone)]
pub struct SentinelConnection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SentinelConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelConnection")
            .field("master_name", &self.inner.config.master_name)
            .field("master", &self.master_addr())
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

/// What discovery has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiscoveryStats {
    /// Discoveries run (the first connect included).
    pub resolutions: u64,
    /// Times a named master failed the `ROLE` check or could not be reached.
    pub role_mismatches: u64,
    /// Times a Sentinel could not be reached or did not answer.
    pub sentinel_failures: u64,
    /// `+switch-master` messages for this master name received.
    pub switch_events: u64,
    /// Masters installed (the generation counter).
    pub masters: u64,
}

pub(crate) struct Inner {
    pub(crate) config: SentinelConfig,
    pub(crate) sentinels: Mutex<Vec<(String, u16)>>,
    state: RwLock<State>,
    /// Bumped after every state change; requests wait on it.
    changed: watch::Sender<u64>,
    generations: AtomicU64,
    pub(crate) counters: Counters,
    pub(crate) switch_events: AtomicU64,
    /// Address of the last master installed, to tell a failover from a reconnect.
    last_master: Mutex<Option<(String, u16)>>,
    /// Dropped with `Inner`: background tasks watching it stop.
    pub(crate) shutdown: watch::Sender<()>,
    save_scripts: Vec<String>,
    revoke_scripts: Vec<String>,
}

enum State {
    Resolving,
    Ready(Arc<Node>),
    Failed(SentinelError),
}

struct Node {
    host: String,
    port: u16,
    conn: MultiplexedConnection,
    durable: MultiplexedConnection,
    generation: u64,
    /// Set when a Sentinel announced a failover of this node: until then, replicated writes
    /// are not acknowledged from it.
    fenced_until: Mutex<Option<Instant>>,
}

impl Node {
    fn addr(&self) -> String {
        Addr(&self.host, self.port).to_string()
    }

    fn fenced(&self) -> bool {
        let until = *self.fenced_until.lock().unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|t| Instant::now() < t)
    }

    fn failover_started(&self, applied: bool) -> redis::RedisError {
        SentinelError::FailoverStarted {
            addr: self.addr(),
            applied,
        }
        .into_redis()
    }
}

impl SentinelConnection {
    /// Discovers the master (spec steps 1–3) and starts the `+switch-master` subscriber.
    ///
    /// # Errors
    /// [`SentinelError::NoSentinelReachable`], [`SentinelError::MasterNameUnknown`], or
    /// [`SentinelError::NotMaster`] when the named master stays unusable for the discovery's
    /// time (about 2 s: a failover in progress).
    pub async fn connect(config: &SentinelConfig) -> Result<Self, SentinelError> {
        let scripts = session_redis::scripts::scripts();
        let hash = |s: &redis::Script| s.get_hash().to_owned();
        let inner = Arc::new(Inner {
            sentinels: Mutex::new(config.sentinels.clone()),
            config: config.clone(),
            state: RwLock::new(State::Resolving),
            changed: watch::Sender::new(0),
            generations: AtomicU64::new(0),
            counters: Counters::default(),
            switch_events: AtomicU64::new(0),
            last_master: Mutex::new(None),
            shutdown: watch::Sender::new(()),
            save_scripts: [&scripts.write, &scripts.refresh].map(hash).to_vec(),
            revoke_scripts: [&scripts.delete, &scripts.delete_user, &scripts.rotate]
                .map(hash)
                .to_vec(),
        });
        crate::telemetry::describe();
        let found = discovery::discover(&inner.config, &inner.sentinels, &inner.counters).await;
        inner.install(found.inspect_err(|e| {
            *inner.write_state() = State::Failed(e.clone());
        })?);
        crate::watcher::spawn(&inner, inner.shutdown.subscribe());
        Ok(SentinelConnection { inner })
    }

    /// The master in use, as `host:port`, if one is.
    pub fn master_addr(&self) -> Option<String> {
        match &*self.inner.read_state() {
            State::Ready(node) => Some(node.addr()),
            _ => None,
        }
    }

    /// The master in use, if one is.
    pub fn master(&self) -> Option<(String, u16)> {
        match &*self.inner.read_state() {
            State::Ready(node) => Some((node.host.clone(), node.port)),
            _ => None,
        }
    }

    /// Increases by one each time a master is installed.
    pub fn generation(&self) -> u64 {
        self.inner.generations.load(Ordering::SeqCst)
    }

    /// The Sentinel list in its current order (responsive first, refreshed from
    /// `SENTINEL sentinels`).
    pub fn sentinels(&self) -> Vec<(String, u16)> {
        self.inner.sentinel_list()
    }

    /// Counters of discovery activity.
    pub fn stats(&self) -> DiscoveryStats {
        let c = &self.inner.counters;
        DiscoveryStats {
            resolutions: c.resolutions.load(Ordering::Relaxed),
            role_mismatches: c.role_mismatches.load(Ordering::Relaxed),
            sentinel_failures: c.sentinel_failures.load(Ordering::Relaxed),
            switch_events: self.inner.switch_events.load(Ordering::Relaxed),
            masters: self.generation(),
        }
    }

    /// Drops the current master and discovers again (what a connection error does).
    pub fn invalidate(&self) {
        self.inner.invalidate_current("invalidate");
    }
}

impl Inner {
    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn sentinel_list(&self) -> Vec<(String, u16)> {
        self.sentinels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn install(&self, found: Found) {
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        let previous = self
            .last_master
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace((found.host.clone(), found.port));
        if previous.is_some_and(|(host, port)| host != found.host || port != found.port) {
            crate::telemetry::failover(&self.config.master_name);
        }
        let node = Node {
            host: found.host,
            port: found.port,
            conn: found.conn,
            durable: found.durable,
            generation,
            fenced_until: Mutex::new(None),
        };
        tracing::info!(master = %node.addr(), generation, "sentinel master installed");
        *self.write_state() = State::Ready(Arc::new(node));
        self.changed.send_modify(|v| *v += 1);
    }

    /// Starts one discovery unless one is running. Called with the state write-locked.
    /// `reason` is the `reason` label of the rediscovery counter.
    fn start_resolving(self: &Arc<Self>, state: &mut State, reason: &'static str) {
        if matches!(state, State::Resolving) {
            return;
        }
        *state = State::Resolving;
        crate::telemetry::rediscovery(&self.config.master_name, reason);
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let found = discovery::discover(&inner.config, &inner.sentinels, &inner.counters).await;
            match found {
                Ok(found) => inner.install(found),
                Err(e) => {
                    tracing::warn!(error = %e, "sentinel discovery failed");
                    *inner.write_state() = State::Failed(e);
                    inner.changed.send_modify(|v| *v += 1);
                }
            }
        });
    }

    /// The current master, discovering one if needed; waits at most [`RESOLVE_WAIT`].
    async fn node(self: &Arc<Self>) -> Result<Arc<Node>, SentinelError> {
        let started = Instant::now();
        let mut changes = self.changed.subscribe();
        let mut joined = false;
        loop {
            {
                let mut state = self.write_state();
                match &*state {
                    State::Ready(node) => return Ok(Arc::clone(node)),
                    State::Failed(e) if joined => return Err(e.clone()),
                    State::Resolving => {}
                    State::Failed(_) => self.start_resolving(&mut state, "retry"),
                }
                joined = true;
            }
            let left = RESOLVE_WAIT.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, changes.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in `self`; a closed channel cannot happen while we hold it.
                Ok(Err(_)) | Err(_) => {
                    return Err(SentinelError::NoMaster {
                        waited: started.elapsed(),
                    })
                }
            }
        }
    }

    /// Drops the master of `generation` (if still current) and starts discovery at once.
    /// `why` is also the `reason` label of the rediscovery counter.
    fn invalidate(self: &Arc<Self>, generation: u64, why: &'static str) {
        let mut state = self.write_state();
        if let State::Ready(node) = &*state {
            if node.generation == generation {
                tracing::info!(master = %node.addr(), generation, why, "sentinel master dropped");
                self.start_resolving(&mut state, why);
                drop(state);
                self.changed.send_modify(|v| *v += 1);
            }
        }
    }

    pub(crate) fn invalidate_current(self: &Arc<Self>, why: &'static str) {
        let current = match &*self.read_state() {
            State::Ready(node) => Some(node.generation),
            _ => None,
        };
        if let Some(generation) = current {
            self.invalidate(generation, why);
        }
    }

    /// `+switch-master name old-ip old-port new-ip new-port` from `from`: unless already
    /// there, re-resolve asking `from` first, since it has the newer configuration.
    pub(crate) fn on_switch_master(self: &Arc<Self>, from: &(String, u16), payload: &str) {
        let parts: Vec<&str> = payload.split_whitespace().collect();
        if parts.len() != 5 || parts[0] != self.config.master_name {
            return;
        }
        self.switch_events.fetch_add(1, Ordering::Relaxed);
        let current = match &*self.read_state() {
            State::Ready(node) => Some((node.generation, node.host.clone(), node.port)),
            _ => None,
        };
        if let Some((generation, host, port)) = current {
            if parts[3] != host || parts[4] != port.to_string() {
                discovery::move_to(&self.sentinels, from, discovery::Position::Front);
                self.invalidate(generation, "switch_master");
            }
        }
    }

    /// `+selected-slave slave <ip:port> <ip> <port> @ <name> <master-ip> <master-port>`: the
    /// leader is about to promote a replica of that master. From here a replica still
    /// attached to the old master can confirm writes the promoted one never receives, so
    /// replicated writes on the old master are fenced until the switch (or [`FENCE_MAX`]).
    pub(crate) fn on_failover_started(&self, payload: &str) {
        let parts: Vec<&str> = payload.split_whitespace().collect();
        if parts.len() != 8 || parts[5] != self.config.master_name {
            return;
        }
        if let State::Ready(node) = &*self.read_state() {
            if parts[6] == node.host && parts[7] == node.port.to_string() {
                tracing::info!(master = %node.addr(), "failover started: replicated writes fenced");
                *node.fenced_until.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(Instant::now() + FENCE_MAX);
            }
        }
    }

    /// The durability covering this command: `EVALSHA` of one of the store's write scripts.
    fn durability_of(&self, cmd: &Cmd) -> Durability {
        let mut args = cmd.args_iter();
        let (Some(Arg::Simple(name)), Some(Arg::Simple(sha))) = (args.next(), args.next()) else {
            return Durability::Async;
        };
        if !name.eq_ignore_ascii_case(b"EVALSHA") {
            return Durability::Async;
        }
        let is = |list: &[String]| list.iter().any(|h| h.as_bytes() == sha);
        if is(&self.revoke_scripts) {
            self.config.revoke_durability
        } else if is(&self.save_scripts) {
            self.config.save_durability
        } else {
            Durability::Async
        }
    }

    /// Reacts to what a node answered: connection failures and demotion drop the node.
    fn check<T>(self: &Arc<Self>, node: &Node, result: RedisResult<T>) -> RedisResult<T> {
        match result {
            Err(e) if is_readonly(&e) => {
                self.invalidate(node.generation, "readonly");
                Err(demoted(node))
            }
            Err(e) if is_connection_failure(&e) => {
                self.invalidate(node.generation, "connection_error");
                Err(e)
            }
            other => other,
        }
    }

    fn check_value(self: &Arc<Self>, node: &Node, value: Value) -> RedisResult<Value> {
        match &value {
            Value::ServerError(e) if e.kind() == Some(ServerErrorKind::ReadOnly) => {
                self.invalidate(node.generation, "readonly");
                Err(demoted(node))
            }
            Value::ServerError(e) if e.kind() == Some(ServerErrorKind::MasterDown) => {
                self.invalidate(node.generation, "masterdown");
                Ok(value)
            }
            _ => Ok(value),
        }
    }

    async fn command(self: &Arc<Self>, cmd: &Cmd) -> RedisResult<Value> {
        let node = self.node().await.map_err(SentinelError::into_redis)?;
        match self.durability_of(cmd) {
            Durability::Async => {
                let mut conn = node.conn.clone();
                let value = self.check(&node, conn.req_packed_command(cmd).await)?;
                self.check_value(&node, value)
            }
            Durability::Replicated { replicas, timeout } => {
                if node.fenced() {
                    return Err(node.failover_started(false));
                }
                let mut pipe = redis::pipe();
                pipe.add_command(cmd.clone())
                    .cmd("WAIT")
                    .arg(replicas)
                    .arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
                let mut conn = node.durable.clone();
                let values = self.check(&node, conn.req_packed_commands(&pipe, 0, 2).await)?;
                let mut values = values.into_iter();
                let (Some(reply), Some(waited)) = (values.next(), values.next()) else {
                    return Err(redis::RedisError::from((
                        ErrorKind::Client,
                        "short reply to a write pipelined with WAIT",
                    )));
                };
                let reply = self.check_value(&node, reply)?;
                if matches!(reply, Value::ServerError(_)) {
                    return Ok(reply); // nothing written (NOSCRIPT, script error): no WAIT due
                }
                match waited {
                    // Confirmed, but maybe by a replica that is about to be re-synced from
                    // the promoted one.
                    Value::Int(_) if node.fenced() => Err(node.failover_started(true)),
                    Value::Int(n) if n >= i64::from(replicas) => Ok(reply),
                    Value::Int(acked) => Err(SentinelError::NotReplicated {
                        acked,
                        wanted: replicas,
                        timeout,
                    }
                    .into_redis()),
                    // "WAIT cannot be used with replica instances": demoted under us.
                    _ => {
                        self.invalidate(node.generation, "wait_refused");
                        Err(demoted(&node))
                    }
                }
            }
        }
    }

    async fn pipeline(
        self: &Arc<Self>,
        pipe: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let node = self.node().await.map_err(SentinelError::into_redis)?;
        let mut conn = node.conn.clone();
        let values = self.check(&node, conn.req_packed_commands(pipe, offset, count).await)?;
        values
            .into_iter()
            .map(|v| self.check_value(&node, v))
            .collect()
    }
}

fn demoted(node: &Node) -> redis::RedisError {
    SentinelError::Demoted { addr: node.addr() }.into_redis()
}

fn is_readonly(e: &redis::RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
}

fn is_connection_failure(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

impl ConnectionLike for SentinelConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move { self.inner.command(cmd).await })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipe: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move { self.inner.pipeline(pipe, offset, count).await })
    }

    fn get_db(&self) -> i64 {
        self.inner.config.redis.db
    }
}

impl crate::watcher::Listener for Inner {
    fn sentinel_list(&self) -> Vec<(String, u16)> {
        Inner::sentinel_list(self)
    }

    fn config(&self) -> &SentinelConfig {
        &self.config
    }

    fn switch_master(self: Arc<Self>, from: &(String, u16), payload: &str) {
        self.on_switch_master(from, payload);
    }

    fn failover_started(&self, payload: &str) {
        self.on_failover_started(payload);
    }
}
