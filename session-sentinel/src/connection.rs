//! `SentinelConnection`: a `redis` connection that follows the master through failovers.
//!
//! Shared state is the current master `(address, connections, generation)` behind a
//! `std::sync::RwLock` that is only ever held for a few instructions, never across an
//! `await`. Re-resolution is single-flight: the first request (or event) that needs it spawns
//! one discovery task; every other request waits on a `watch` channel for its outcome.
//! Invalidation names the generation it saw fail, so a late error from an old connection
//! never tears down a newer master.
//!
//! How each request is carried out (reads and asynchronous writes on the shared connection,
//! replicated writes on connections of their own, the fence, settling) is in `exec`.

mod exec;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use session_redis::durability::{self, Classifier, DurabilityPolicy, Request};
use tokio::sync::{watch, OnceCell};

use crate::config::SentinelConfig;
use crate::discovery::{self, Counters, Found};
use crate::durable::Pool;
use crate::error::{Addr, SentinelError};
use crate::fence::Fence;
use crate::settle::ClientTag;

/// How long a request waits for discovery before failing with
/// [`SentinelError::NoMaster`] (the store then retries within its budget).
pub(crate) const RESOLVE_WAIT: Duration = Duration::from_secs(2);
/// How many distinct scripts are remembered for preloading.
const MAX_SCRIPTS: usize = 64;

/// The longest one request can take on the connection, every step at its bound: waiting for
/// discovery; for a replicated write, a free connection, opening one and its `CLIENT INFO`,
/// and the write with its `WAIT`; settling an interrupted write (a connect and a
/// `CLIENT KILL`). Plus a margin for scheduling.
pub(crate) fn attempt_bound(config: &SentinelConfig) -> Duration {
    let (connect, response, wait) = (
        config.redis.connect_timeout,
        config.redis.response_timeout,
        config.max_wait(),
    );
    RESOLVE_WAIT + connect * 2 + response * 6 + wait * 3 + Duration::from_millis(500)
}

/// A connection to whichever node the Sentinels name master, following failovers.
///
/// Implements [`ConnectionLike`], so `RedisStore<SentinelConnection>` runs the Redis
/// backend's scripts on it unchanged. Cloning is cheap and shares everything. A background
/// task subscribed to `+switch-master` (rotating across Sentinels) stops when the last clone
/// is dropped.
///
/// Re-resolves on: connection errors and timeouts, `READONLY`, `WAIT` refused by a replica,
/// `+switch-master` for its name. Writes (told from reads by command name) covered by a
/// [`Durability::Replicated`](crate::Durability) setting are pipelined with `WAIT`, each on
/// a connection of its own; no write is sent to a master a Sentinel announced it is failing
/// over.
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
    classifier: Classifier,
    /// `config`'s two durability settings.
    policy: DurabilityPolicy,
    /// Masters a Sentinel announced it is failing over: no write goes there.
    fence: Fence,
    /// When a write refused by the fence last made us ask the Sentinels again.
    fenced_check: Mutex<Option<Instant>>,
    /// Script bodies seen in `SCRIPT LOAD`, loaded into every new master before it is used
    /// (Redis does not replicate its script cache).
    scripts: Mutex<Vec<Vec<u8>>>,
}

enum State {
    Resolving,
    Ready(Arc<Node>),
    Failed(SentinelError),
}

struct Node {
    host: String,
    port: u16,
    /// Reads and asynchronous writes.
    conn: MultiplexedConnection,
    /// `conn`'s identity on the server, to settle writes whose answer is lost.
    tag: Option<ClientTag>,
    /// Whether `conn`'s server side is known closed, once one write on it was interrupted
    /// (every write interrupted with it shares the answer).
    conn_settled: OnceCell<bool>,
    /// Connections for replicated writes.
    pool: Pool,
    generation: u64,
}

impl Node {
    fn addr(&self) -> String {
        Addr(&self.host, self.port).to_string()
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
            classifier: Classifier::new(),
            policy: config.policy(),
            fence: Fence::default(),
            fenced_check: Mutex::new(None),
            scripts: Mutex::new(Vec::new()),
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
            tag: found.tag,
            conn_settled: OnceCell::new(),
            pool: Pool::new(self.config.wait_pool_size),
            generation,
        };
        tracing::info!(master = %node.addr(), generation, "sentinel master installed");
        *self.write_state() = State::Ready(Arc::new(node));
        self.changed.send_modify(|v| *v += 1);
    }

    /// Remembers the body of a `SCRIPT LOAD` (a few distinct ones at most: the backend's).
    fn learn_script(&self, cmd: &Cmd) {
        if let Some(body) = durability::script_load_body(cmd) {
            let mut scripts = self.scripts.lock().unwrap_or_else(|e| e.into_inner());
            if scripts.len() < MAX_SCRIPTS && !scripts.iter().any(|s| s.as_slice() == body) {
                scripts.push(body.to_vec());
            }
        }
    }

    /// Loads every script seen so far into a master found by rediscovery, so its first
    /// writes do not meet `NOSCRIPT`: a replicated one would wait out a futile `WAIT` before
    /// the script is loaded and it is sent again. Best effort, one round trip.
    async fn preload_scripts(&self, conn: &mut MultiplexedConnection) {
        let scripts = self
            .scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if scripts.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for body in &scripts {
            pipe.cmd("SCRIPT").arg("LOAD").arg(body.as_slice()).ignore();
        }
        if let Err(e) = pipe.exec_async(conn).await {
            tracing::debug!(error = %e, "scripts not preloaded");
        }
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
                Ok(mut found) => {
                    inner.preload_scripts(&mut found.conn).await;
                    inner.install(found);
                }
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
        // The new master is no longer being failed over (it may be one fenced earlier, now
        // promoted back).
        if let Ok(new_port) = parts[4].parse::<u16>() {
            self.fence.lift(parts[3], new_port);
        }
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

    /// `+selected-slave … @ <name> <ip> <port>`: the leader is about to promote a replica of
    /// that master; fence it (see `fence`).
    pub(crate) fn on_failover_started(&self, payload: &str) {
        if let Some((host, port)) = crate::fence::selected_slave(payload, &self.config.master_name)
        {
            tracing::info!(master = %Addr(&host, port), "failover started: writes fenced");
            self.fence.raise(&host, port);
        }
    }

    /// `-failover-abort-slave-timeout master <name> <ip> <port>`: the master stays; lift its
    /// fence.
    pub(crate) fn on_failover_aborted(&self, payload: &str) {
        if let Some((host, port)) = crate::fence::aborted(payload, &self.config.master_name) {
            tracing::info!(master = %Addr(&host, port), "failover aborted: fence lifted");
            self.fence.lift(&host, port);
        }
    }
}

impl ConnectionLike for SentinelConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.inner.learn_script(cmd);
            let handling = self
                .inner
                .classifier
                .handling_of_command(&self.inner.policy, cmd);
            let mut values = self.inner.execute(Request::Cmd(cmd), handling).await?;
            values.pop().ok_or_else(|| {
                redis::RedisError::from((redis::ErrorKind::Client, "no reply to a command"))
            })
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipe: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let handling = self
                .inner
                .classifier
                .handling_of_pipeline(&self.inner.policy, pipe);
            let request = Request::Pipe {
                pipe,
                offset,
                count,
            };
            self.inner.execute(request, handling).await
        })
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

    fn failover_aborted(&self, payload: &str) {
        self.on_failover_aborted(payload);
    }
}
