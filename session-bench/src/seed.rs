//! The session every store holds: shaped like the existing service's, about 900 bytes of JSON
//! (`redis_harness::fixtures::existing_service_session`, as in the Redis tests), and its form in each
//! competitor's data model.

use std::collections::HashMap;

use serde_json::{Map, Value};
use session_core::SessionData;

/// Most tasks any table runs; per-task session sets are laid out for this many.
pub const MAX_TASKS: usize = 64;

/// The idle TTL every store is given (the existing service's `SESSION_TTL`).
pub const TTL_SECS: u64 = 7200;

/// Session data shaped like the existing service's, for `user` (the same fixture the Redis
/// tests use).
pub fn data(user: &str) -> SessionData {
    redis_harness::fixtures::existing_service_session(user)
}

/// The same data as tower-sessions keeps it: a `HashMap` of JSON values.
pub fn tower_data(data: &SessionData) -> HashMap<String, Value> {
    data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The same data as actix-session keeps it: every value JSON-encoded to a string (what
/// `Session::insert` does), the map then JSON-encoded again by the store.
pub fn actix_state(data: &SessionData) -> HashMap<String, String> {
    data.iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect()
}

/// The bare payload the raw baselines store: `json.dumps(data)`.
pub fn payload(data: &SessionData) -> String {
    serde_json::to_string(data).expect("JSON data encodes")
}

/// The per-task session index: task `task` only ever touches its own `per_task` sessions.
pub fn slot(task: usize, i: u64, per_task: usize) -> usize {
    (i as usize % per_task) * MAX_TASKS + task
}

/// Parses a JSON object (the raw baselines' read-modify-write).
pub fn parse(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).expect("the baseline's own JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_is_about_900_bytes() {
        let len = payload(&data("aaron")).len();
        assert!((850..=950).contains(&len), "{len} bytes");
    }

    #[test]
    fn slots_of_different_tasks_never_meet() {
        let mut seen = std::collections::HashSet::new();
        for task in 0..MAX_TASKS {
            for i in 0..16 {
                seen.insert((slot(task, i, 16), task));
            }
        }
        let slots: std::collections::HashSet<_> = seen.iter().map(|(s, _)| *s).collect();
        assert_eq!(slots.len(), seen.len());
        assert!(slots.iter().all(|&s| s < MAX_TASKS * 16));
    }
}
