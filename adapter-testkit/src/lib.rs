//! Test-only helper shared by the web framework adapters' tests (`session-tower`,
//! `session-actix`): one store fixture per backend ([`Backend`]), store wrappers that count or
//! bend what reaches the store ([`Hooked`], [`CountingStore`]), the save-versus-revocation race
//! bookkeeping ([`run_races`], [`lags`]) and a macro that stamps one test per backend and case
//! ([`backend_tests!`]).
//!
//! What is framework-specific (the apps under test, their clients, cookie handling) stays in
//! each adapter's own tests.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis_harness::timeshift::TimeShifted;
use redis_harness::{RedisServer, ServerSpec};
use session_core::{
    Capabilities, CleanupReport, Clock as _, Error, ManualClock, PutMode, Result, ScanCursor,
    ScanPage, Session, SessionConfig, SessionData, SessionId, SessionStore, SessionSummary,
    WriteOptions,
};
use session_memory::MemoryStore;
use session_migrate::MigratingStore;
use session_redis::{RedisConfig, RedisStore};
use tokio::task::JoinSet;

/// How long the fixtures' Redis stores wait for an answer: short, so that a test of an outage
/// fails fast.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// The same for the race tests, which keep dozens of requests in flight, maybe on a busy
/// machine: a slow answer there is no failure, only a hung server is.
pub const PATIENT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Races run at once, so that the Redis ones take seconds, not minutes, in a debug build.
pub const IN_FLIGHT: usize = 64;

/// Which backend a fixture stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The in-process memory store.
    Memory,
    /// A RedisStore on a real redis-server of its own.
    Redis,
    /// [`Kind::Redis`] that waits for slow answers (see [`PATIENT_RESPONSE_TIMEOUT`]).
    RedisPatient,
    /// A MigratingStore moving sessions from memory to a real Redis, as during a live cutover.
    Migrating,
    /// [`Kind::Migrating`] that waits for slow answers (see [`PATIENT_RESPONSE_TIMEOUT`]).
    MigratingPatient,
}

/// A store for one test, its manual clock, and the Redis server it lives on (if any).
pub struct Backend {
    pub store: Arc<dyn SessionStore>,
    pub clock: ManualClock,
    /// Held so the server lives as long as the test; read for raw TTL checks.
    pub redis: Option<(RedisServer, String)>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("store", &self.store)
            .field("prefix", &self.redis.as_ref().map(|(_, prefix)| prefix))
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// A fresh store of `kind`; Redis keys go under `<label>-<random>:`.
    pub async fn start(kind: Kind, label: &str) -> Self {
        match kind {
            Kind::Memory => Self::memory(),
            Kind::Redis => Self::redis(label, RESPONSE_TIMEOUT).await,
            Kind::RedisPatient => Self::redis(label, PATIENT_RESPONSE_TIMEOUT).await,
            Kind::Migrating => Self::migrating(label, RESPONSE_TIMEOUT).await,
            Kind::MigratingPatient => Self::migrating(label, PATIENT_RESPONSE_TIMEOUT).await,
        }
    }

    fn memory() -> Self {
        let clock = ManualClock::starting_now();
        Backend {
            store: Arc::new(memory_store(&clock)),
            clock,
            redis: None,
        }
    }

    async fn redis(label: &str, response_timeout: Duration) -> Self {
        let server = RedisServer::start();
        let clock = ManualClock::starting_now();
        let (store, prefix) = redis_store(&server, &clock, label, response_timeout).await;
        Backend {
            store,
            clock,
            redis: Some((server, prefix)),
        }
    }

    async fn migrating(label: &str, response_timeout: Duration) -> Self {
        let server = RedisServer::start();
        let clock = ManualClock::starting_now();
        let old = memory_store(&clock);
        let (new, prefix) = redis_store(&server, &clock, label, response_timeout).await;
        Backend {
            store: Arc::new(MigratingStore::new(Arc::new(old), new)),
            clock,
            redis: Some((server, prefix)),
        }
    }

    /// Whether a live session is stored under `id`.
    pub async fn is_stored_id(&self, id: &SessionId) -> bool {
        self.store.exists(id).await.unwrap()
    }

    /// The stored session under `id`.
    pub async fn stored_id(&self, id: &SessionId) -> Option<Session> {
        self.store.load(id).await.unwrap()
    }

    /// Time the store will keep the session under `id`, by the store's clock.
    pub async fn store_ttl_id(&self, id: &SessionId) -> Duration {
        let session = self.stored_id(id).await.expect("session stored");
        session.lifetime().remaining(self.clock.now())
    }

    /// Redis's `PTTL` of the key of `id` (plain key mode), when the store has a Redis.
    pub fn redis_pttl_ms(&self, id: &SessionId) -> Option<i64> {
        let (server, prefix) = self.redis.as_ref()?;
        let key = format!("{prefix}{}", id.expose_token());
        let ms: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query(&mut server.connection())
            .unwrap();
        Some(ms)
    }
}

fn memory_store(clock: &ManualClock) -> MemoryStore {
    MemoryStore::builder()
        .clock(Arc::new(clock.clone()))
        .build()
}

/// Settings for a store on `server` under a fresh random key prefix.
fn redis_config(
    server: &RedisServer,
    label: &str,
    response_timeout: Duration,
) -> (RedisConfig, String) {
    let prefix = format!(
        "{label}-{}:",
        &SessionId::generate().handle().fingerprint()[4..]
    );
    let session = SessionConfig {
        key_prefix: prefix.clone(),
        ..SessionConfig::default()
    };
    let config = RedisConfig {
        port: server.port(),
        connect_timeout: Duration::from_millis(500),
        response_timeout,
        session,
        ..RedisConfig::default()
    };
    (config, prefix)
}

/// A store on `server` whose TTLs follow `clock`'s jumps (Redis's own clock decides
/// liveness, and cannot be moved: the harness moves the TTLs instead, see [`TimeShifted`]).
async fn redis_store(
    server: &RedisServer,
    clock: &ManualClock,
    label: &str,
    response_timeout: Duration,
) -> (Arc<dyn SessionStore>, String) {
    let (config, prefix) = redis_config(server, label, response_timeout);
    let user_keys = config.session.user_keys.clone();
    let store = RedisStore::connect(config)
        .await
        .expect("connect to the test redis")
        .with_clock(Arc::new(clock.clone()));
    let con = server.async_connection().await;
    let shifted = TimeShifted::new(
        Arc::new(store),
        con,
        prefix.clone(),
        Arc::new(clock.clone()),
    )
    .with_user_keys(user_keys);
    (Arc::new(shifted), prefix)
}

/// A RedisStore (no clock, default settings) on a redis-server of its own that requires
/// `password`; the server is returned so it lives as long as the test.
pub async fn redis_with_password(password: &str) -> (RedisServer, RedisStore) {
    let server = RedisServer::start_with(ServerSpec::redis().requirepass(password));
    let config = RedisConfig {
        port: server.port(),
        password: Some(password.into()),
        ..RedisConfig::default()
    };
    let store = RedisStore::connect(config).await.unwrap();
    (server, store)
}

/// `actual` is within `slack` of `expected`.
pub fn assert_near(actual: Duration, expected: Duration, slack: Duration, what: &str) {
    let diff = actual.abs_diff(expected);
    assert!(
        diff <= slack,
        "{what}: {actual:?} is not within {slack:?} of {expected:?}"
    );
}

/// What a [`Hooked`] store does around the calls it passes through. Every method defaults to
/// nothing.
pub trait Hook: Send + Sync + 'static {
    /// Before every call.
    fn call(&self) {}

    /// Before a put: an error here answers the put instead of the store.
    fn before_put(&self, _mode: PutMode) -> Result<()> {
        Ok(())
    }

    /// After a put the store answered.
    fn after_put(&self, _mode: PutMode, _result: &Result<Session>) {}
}

/// Passes every call through to a store, with a [`Hook`] around them. Derefs to the hook.
pub struct Hooked<H> {
    inner: Arc<dyn SessionStore>,
    pub hook: H,
}

impl<H> Hooked<H> {
    pub fn with(inner: Arc<dyn SessionStore>, hook: H) -> Self {
        Hooked { inner, hook }
    }
}

impl<H> Deref for Hooked<H> {
    type Target = H;

    fn deref(&self) -> &H {
        &self.hook
    }
}

impl<H> fmt::Debug for Hooked<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooked")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<H: Hook> SessionStore for Hooked<H> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        self.hook.call();
        self.inner.load(id).await
    }

    async fn put(
        &self,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session> {
        self.hook.call();
        self.hook.before_put(mode)?;
        let result = self.inner.put(id, data, mode, options).await;
        self.hook.after_put(mode, &result);
        result
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        self.hook.call();
        self.inner.delete(id).await
    }

    async fn exists(&self, id: &SessionId) -> Result<bool> {
        self.hook.call();
        self.inner.exists(id).await
    }

    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        self.hook.call();
        self.inner.refresh(id).await
    }

    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>> {
        self.hook.call();
        self.inner.rotate(id).await
    }

    async fn count(&self) -> Result<u64> {
        self.hook.call();
        self.inner.count().await
    }

    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>> {
        self.hook.call();
        self.inner.list_user(user).await
    }

    async fn delete_user(&self, user: &str) -> Result<u64> {
        self.hook.call();
        self.inner.delete_user(user).await
    }

    async fn cleanup(&self) -> Result<CleanupReport> {
        self.hook.call();
        self.inner.cleanup().await
    }

    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        self.hook.call();
        self.inner.scan(cursor, limit).await
    }
}

/// What a [`CountingStore`] counts: every call, and how the adapter's updates (its `IfLive`
/// puts) ended: replacing the live session, or finding it gone.
#[derive(Debug, Default)]
pub struct Counts {
    /// Every call that reached the store.
    pub calls: AtomicU64,
    /// `IfLive` puts that replaced a live session.
    pub landed: AtomicU64,
    /// `IfLive` puts that found the session gone.
    pub dropped: AtomicU64,
}

impl Counts {
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Hook for Counts {
    fn call(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }

    fn after_put(&self, mode: PutMode, result: &Result<Session>) {
        if mode == PutMode::IfLive {
            match result {
                Ok(_) => _ = self.landed.fetch_add(1, Ordering::Relaxed),
                Err(Error::NotFound) => _ = self.dropped.fetch_add(1, Ordering::Relaxed),
                Err(_) => {}
            }
        }
    }
}

/// Passes every call through to a store, counting them (see [`Counts`]).
pub type CountingStore = Hooked<Counts>;

impl CountingStore {
    pub fn new(inner: Arc<dyn SessionStore>) -> Self {
        Hooked::with(inner, Counts::default())
    }
}

/// How the racing request ends the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// A logout in another request: the framework's `delete` (what its logout leads to).
    Delete,
    /// "Log out everywhere": the store's `delete_user`, for which the frameworks have no word.
    DeleteUser,
}

/// Stamps one multi-thread `#[tokio::test]` per backend and race case, in a module per
/// backend, so a failure reads `redis::save_vs_delete_user`. Each case runs
/// `races(Fixture, Revocation, usize)` at the calling crate's root (with `Fixture` in scope
/// there) with the backend's race count for that case (in the order of the cases).
///
/// ```ignore
/// adapter_testkit::race_tests!(
///     [save_vs_delete: Delete, save_vs_delete_user: DeleteUser];
///     memory: Memory => [crate::RACES, crate::RACES],
///     redis: RedisPatient => [crate::RACES, crate::RACES],
/// );
/// ```
#[macro_export]
macro_rules! race_tests {
    ($cases:tt; $($backend:ident: $kind:ident => $races:tt),+ $(,)?) => {
        $( $crate::race_tests!(@backend $cases; $backend: $kind => $races); )+
    };
    (@backend [$($case:ident: $revocation:ident),+ $(,)?];
        $backend:ident: $kind:ident => [$($races:expr),+ $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let fx = super::Fixture::start($crate::Kind::$kind).await;
                    super::races(fx, $crate::Revocation::$revocation, $races).await
                }
            )+
        }
    };
}

/// Runs `races` races, [`IN_FLIGHT`] at a time, prints the figures and checks them: no
/// session brought back (`one_race` gives `Some(race)` for a session still there once both
/// sides have returned), each `what` (the adapter's write, "save" or "update") one `IfLive`
/// put counted by `counted`, and `store` empty at the end.
pub async fn run_races<R, F, Fut>(
    store: &dyn SessionStore,
    counted: &CountingStore,
    what: &str,
    revocation: R,
    races: usize,
    mut one_race: F,
) where
    R: fmt::Debug,
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Option<usize>> + Send + 'static,
{
    let backend = store.backend();
    let started = Instant::now();

    let mut running = JoinSet::new();
    let mut resurrected = Vec::new();
    let mut collect = |joined: std::result::Result<Option<usize>, _>| {
        if let Some(race) = joined.expect("race task") {
            resurrected.push(race);
        }
    };
    for race in 0..races {
        if running.len() >= IN_FLIGHT {
            collect(running.join_next().await.expect("a running race"));
        }
        running.spawn(one_race(race));
    }
    while let Some(joined) = running.join_next().await {
        collect(joined);
    }
    let elapsed = started.elapsed();

    let landed = counted.landed.load(Ordering::Relaxed);
    let dropped = counted.dropped.load(Ordering::Relaxed);
    println!(
        "{backend} {what} vs {revocation:?}: {races} races in {elapsed:.2?}; {what}s landed \
         before the revocation: {landed}, dropped after it: {dropped}; resurrections: {}",
        resurrected.len()
    );
    resurrected.sort_unstable();
    assert!(
        resurrected.is_empty(),
        "{} of {races} sessions were brought back after {revocation:?} returned (races {:?}…)",
        resurrected.len(),
        &resurrected[..resurrected.len().min(10)]
    );
    assert_eq!(
        landed + dropped,
        races as u64,
        "each {what} is one IfLive put that either replaces the live session or finds it gone"
    );
    assert_eq!(store.count().await.unwrap(), 0, "every session was revoked");
}

/// How many times each side, the write and the revocation, yields to the scheduler after the
/// barrier that releases them together.
///
/// Released together, one side still tends to start first (the barrier's last arrival runs
/// on while the other is woken, and which that is depends on how the runtime queues the two
/// spawns), so left alone nearly every race would end the same way. Varying a small lag over
/// the races, on either side, spreads them over both orders. On Redis, where a round trip
/// takes far longer than a yield, the two requests are still in flight together.
pub fn lags(race: usize) -> (usize, usize) {
    let lag = (race / 2) % 8;
    if race % 2 == 0 {
        (lag, 0)
    } else {
        (0, lag)
    }
}

/// Yields to the scheduler `yields` times.
pub async fn lag(yields: usize) {
    for _ in 0..yields {
        tokio::task::yield_now().await;
    }
}

/// Stamps one `#[tokio::test]` per backend and case, in a module per backend, so a failure
/// reads `redis::save_never_creates`. Each case is an `async fn(Fixture)` at the calling
/// crate's root; `$fixture` is a type with `async fn start(Kind) -> Self`.
///
/// ```ignore
/// adapter_testkit::backend_tests!(crate::Fixture; [case_a, case_b]; memory: Memory, redis: Redis);
/// ```
#[macro_export]
macro_rules! backend_tests {
    ($fixture:ty; $cases:tt; $($backend:ident: $kind:ident),+ $(,)?) => {
        $( $crate::backend_tests!(@backend $fixture; $cases; $backend: $kind); )+
    };
    (@backend $fixture:ty; [$($case:ident),+ $(,)?]; $backend:ident: $kind:ident) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(<$fixture>::start($crate::Kind::$kind).await).await
                }
            )+
        }
    };
}
