//! The failover fence: once a Sentinel announces it is failing our master over, no write is
//! acknowledged from that master.
//!
//! After `+selected-slave` the leader promotes the chosen replica within a Sentinel tick or
//! two, but the old master stays writable (for about 10 s with default settings, until
//! Sentinel converts it) and keeps answering: every write it acknowledges from the promotion
//! on is thrown away when it resyncs from the new master. So from the announcement on, writes
//! of every durability are not sent there (the store retries them on the new master within
//! its budget), and a write whose answer arrives after it fails with
//! [`SentinelError::FailoverStarted`](crate::SentinelError) (`applied: true`), since the
//! promoted replica may not have it.
//!
//! The fence names an address, not a connection, so a rediscovery that finds the old master
//! again (the Sentinels name it until the promotion is confirmed) is fenced too. It lifts when
//! the failover is aborted (`-failover-abort-slave-timeout`), when a `+switch-master` names
//! that address as the new master (a later failover back to it), or after [`FENCE_MAX`]; by
//! then the switch happened or the master stays.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a failover announcement fences its master at most.
pub(crate) const FENCE_MAX: Duration = Duration::from_secs(10);

/// The addresses being failed over, with when each fence ends.
#[derive(Debug, Default)]
pub(crate) struct Fence {
    fenced: Mutex<Vec<(String, u16, Instant)>>,
}

impl Fence {
    /// Fences `host:port` for [`FENCE_MAX`].
    pub(crate) fn raise(&self, host: &str, port: u16) {
        let mut fenced = self.fenced.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        fenced.retain(|(h, p, until)| *until > now && !(h == host && *p == port));
        fenced.push((host.to_owned(), port, now + FENCE_MAX));
    }

    /// Lifts the fence of `host:port`, if any.
    pub(crate) fn lift(&self, host: &str, port: u16) {
        let mut fenced = self.fenced.lock().unwrap_or_else(|e| e.into_inner());
        fenced.retain(|(h, p, _)| !(h == host && *p == port));
    }

    /// Whether writes to `host:port` are fenced now.
    pub(crate) fn covers(&self, host: &str, port: u16) -> bool {
        let fenced = self.fenced.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        fenced
            .iter()
            .any(|(h, p, until)| h == host && *p == port && *until > now)
    }
}

/// The master a `+selected-slave` payload names, if it is `name`'s:
/// `slave <ip:port> <ip> <port> @ <name> <master-ip> <master-port>`.
pub(crate) fn selected_slave(payload: &str, name: &str) -> Option<(String, u16)> {
    let parts: Vec<&str> = payload.split_whitespace().collect();
    match parts.as_slice() {
        [_, _, _, _, "@", n, host, port] if *n == name => {
            Some(((*host).to_owned(), port.parse().ok()?))
        }
        _ => None,
    }
}

/// The master a `-failover-abort-*` payload names, if it is `name`:
/// `master <name> <ip> <port>`.
pub(crate) fn aborted(payload: &str, name: &str) -> Option<(String, u16)> {
    let parts: Vec<&str> = payload.split_whitespace().collect();
    match parts.as_slice() {
        ["master", n, host, port] if *n == name => Some(((*host).to_owned(), port.parse().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_an_address_until_lifted() {
        let fence = Fence::default();
        assert!(!fence.covers("10.0.0.1", 6379));
        fence.raise("10.0.0.1", 6379);
        assert!(fence.covers("10.0.0.1", 6379));
        assert!(!fence.covers("10.0.0.1", 6380));
        fence.lift("10.0.0.1", 6379);
        assert!(!fence.covers("10.0.0.1", 6379));
    }

    #[test]
    fn parses_the_announcements_of_our_master_only() {
        let selected = "slave 127.0.0.1:6380 127.0.0.1 6380 @ mymaster 127.0.0.1 6379";
        assert_eq!(
            selected_slave(selected, "mymaster"),
            Some(("127.0.0.1".into(), 6379))
        );
        assert_eq!(selected_slave(selected, "other"), None);
        assert_eq!(selected_slave("garbage", "mymaster"), None);
        let abort = "master mymaster 127.0.0.1 6379";
        assert_eq!(aborted(abort, "mymaster"), Some(("127.0.0.1".into(), 6379)));
        assert_eq!(aborted(abort, "other"), None);
    }
}
