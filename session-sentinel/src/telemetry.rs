//! Failover and rediscovery counters through the `metrics` facade (see the
//! [crate docs](crate#metrics)). Labels carry the backend name and the configured master name,
//! never an address or a credential.

use crate::error::BACKEND;

/// `session_sentinel_failovers_total{backend,master}`: a master at a different address than
/// the previous one was installed (after `+switch-master` or any rediscovery that found the
/// master moved).
pub const FAILOVERS_TOTAL: &str = "session_sentinel_failovers_total";
/// `session_sentinel_rediscoveries_total{backend,master,reason}`: discovery ran again after
/// the first connect. `reason` is one of [`REDISCOVERY_REASONS`].
pub const REDISCOVERIES_TOTAL: &str = "session_sentinel_rediscoveries_total";

/// Every value of the `reason` label of [`REDISCOVERIES_TOTAL`]:
/// - `switch_master`: a Sentinel announced `+switch-master` to another address;
/// - `connection_error`: a connection to the master failed or timed out;
/// - `readonly`: the master answered `READONLY` (it was demoted);
/// - `masterdown`: the master answered `MASTERDOWN`;
/// - `wait_refused`: `WAIT` was refused (the node is a replica);
/// - `fenced`: writes were refused by the failover fence and no `+switch-master` has moved
///   the store yet (at most every 250 ms);
/// - `retry`: a request found the previous discovery failed and started another;
/// - `invalidate`: [`SentinelConnection::invalidate`](crate::SentinelConnection::invalidate)
///   was called.
pub const REDISCOVERY_REASONS: &[&str] = &[
    "switch_master",
    "connection_error",
    "readonly",
    "masterdown",
    "wait_refused",
    "fenced",
    "retry",
    "invalidate",
];

/// Registers the descriptions with the installed recorder.
pub(crate) fn describe() {
    metrics::describe_counter!(
        FAILOVERS_TOTAL,
        "Times the Sentinel store switched to a master at a new address"
    );
    metrics::describe_counter!(
        REDISCOVERIES_TOTAL,
        "Times the Sentinel store ran master discovery again, by reason"
    );
}

pub(crate) fn failover(master_name: &str) {
    metrics::counter!(FAILOVERS_TOTAL, "backend" => BACKEND, "master" => master_name.to_owned())
        .increment(1);
}

pub(crate) fn rediscovery(master_name: &str, reason: &'static str) {
    debug_assert!(REDISCOVERY_REASONS.contains(&reason), "{reason}");
    metrics::counter!(
        REDISCOVERIES_TOTAL,
        "backend" => BACKEND,
        "master" => master_name.to_owned(),
        "reason" => reason
    )
    .increment(1);
}
