//! Fault tests of the cluster backend (issue 14), each on a real 3 + 3 Redis Cluster of its
//! own, with a concurrent workload through one [`ClusterStore`] (see [`workload`]):
//!
//! - [`failover`]: a primary SIGKILLed; its replica promoted; the store's unavailability
//!   measured against the cluster's own failover time; every acknowledged write checked
//!   (asynchronous replication: losses counted; every write replicated: none lost).
//! - [`reshard`]: a third of one primary's slots moved live (`redis-cli --cluster reshard`);
//!   no session lost, no error surfaced, `count` answering throughout, every whole `scan`
//!   iteration during the move yielding every session that lived through it, bursts of 128
//!   concurrent loads answered, `count` and `scan` exact afterwards.
//! - [`unreachable`]: a primary and its replica stopped (SIGSTOP): typed errors within the
//!   timeouts on their slots, the other slots unaffected, the same store recovers once the
//!   nodes are back.
//!
//! The cases run one at a time (a lock per binary): each starts six servers and a workload,
//! and their timings are only comparable on a machine they do not share with each other.
//! Figures go to stderr (`--nocapture`). Every bound is derived from what the test measured
//! (the cluster's failover time, the workload's own round trips) or from the store's
//! configured timeouts, never from a guess at the machine's speed.

mod failover;
mod reshard;
mod unreachable;
mod workload;

use std::time::Duration;

use redis_harness::cluster::ClusterTopology;
use session_cluster::{
    ClusterConfig, ClusterStore, Durability, DurabilityPolicy, NotReplicated, Saturated,
};
use session_core::{Error, SessionConfig, SessionId};
use session_redis::error::DeadlineExceeded;
use session_redis::RedisConfig;
use workload::Mix;

/// Workload tasks in every case.
const TASKS: usize = 16;
/// Each task does at most one operation per period.
const PERIOD: Duration = Duration::from_millis(10);
/// How long each phase may take to show what it waits for.
const PHASE: Duration = Duration::from_secs(30);
/// The store's timeouts in every case.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_millis(500),
    response: Duration::from_millis(1000),
};
/// Loads, writes and deletes of a steady workload (no slot favoured).
const STEADY: Mix = Mix {
    active: 8,
    load: 20,
    delete: 10,
    hot: None,
};
/// Every write asynchronous, revocations too.
const ALL_ASYNC: DurabilityPolicy = DurabilityPolicy {
    save: Durability::Async,
    revoke: Durability::Async,
};

/// One case at a time (see the module docs). A `tokio` mutex: it is held across awaits.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The store's timeouts for one case.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    connect: Duration,
    response: Duration,
}

impl Timeouts {
    /// The longest one round trip may take before the store gives up on it.
    fn deadline(self) -> Duration {
        self.connect + self.response
    }
}

/// A store on `cluster` under a fresh random key prefix, learning the cluster from every node,
/// with writes at `durability`.
async fn connect(
    cluster: &ClusterTopology,
    timeouts: Timeouts,
    durability: DurabilityPolicy,
) -> ClusterStore {
    let handle = SessionId::generate().handle();
    let prefix = format!("faults-{}:", &handle.as_str()[..12]);
    let nodes = cluster
        .ports()
        .into_iter()
        .map(|port| ("127.0.0.1".to_string(), port))
        .collect();
    let mut config = ClusterConfig::new(nodes);
    config.redis = RedisConfig {
        connect_timeout: timeouts.connect,
        response_timeout: timeouts.response,
        session: SessionConfig {
            key_prefix: prefix,
            ..SessionConfig::default()
        },
        ..RedisConfig::default()
    };
    config.save_durability = durability.save;
    config.revoke_durability = durability.revoke;
    ClusterStore::connect(config)
        .await
        .expect("connect to the test cluster")
}

/// A short name for what went wrong, to count errors by: the variant, and for
/// `Unavailable`/`Backend` what the client or server said (`TRYAGAIN`, `refused`,
/// `timeout`, `deadline`, …).
fn error_kind(err: &Error) -> String {
    match err {
        Error::Unavailable { source, .. } => format!("Unavailable({})", cause(source.as_ref())),
        Error::Backend { source, .. } => format!("Backend({})", cause(source.as_ref())),
        Error::NotFound => "NotFound".into(),
        Error::AlreadyExists => "AlreadyExists".into(),
        Error::Conflict => "Conflict".into(),
        other => format!("other: {other}"),
    }
}

fn cause(source: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    if source.downcast_ref::<DeadlineExceeded>().is_some() {
        return "deadline".into();
    }
    if source.downcast_ref::<NotReplicated>().is_some() {
        return "NotReplicated".into();
    }
    if source.downcast_ref::<Saturated>().is_some() {
        return "Saturated".into();
    }
    let Some(e) = source.downcast_ref::<redis::RedisError>() else {
        return "other".into();
    };
    if let Some(code) = e.code() {
        return code.to_string();
    }
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connection_refusal() {
        "refused"
    } else if e.is_connection_dropped() {
        "dropped"
    } else if e.is_io_error() {
        "io"
    } else {
        return format!("{:?}", e.kind());
    };
    what.into()
}

/// The `q`-quantile of `samples` (sorted here), zero for none.
fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let at = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[at]
}
