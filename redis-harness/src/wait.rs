//! Waiting by condition with a deadline: the only kind of waiting tests do.

use std::time::{Duration, Instant};

/// How long a freshly spawned server may take to answer `PING`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Polls `condition` every few milliseconds until it returns `true` or `timeout` passes.
/// Returns whether the condition became true.
///
/// ```
/// let start = std::time::Instant::now();
/// let ok = redis_harness::wait_until(std::time::Duration::from_secs(1), || start.elapsed().as_millis() > 20);
/// assert!(ok);
/// ```
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        // The poll interval, not a guess at how long something takes.
        std::thread::sleep(Duration::from_millis(5));
    }
}
