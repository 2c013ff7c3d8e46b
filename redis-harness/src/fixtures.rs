//! Test data shared by the tests and benchmarks that need sessions shaped like real ones.

use serde_json::{json, Map, Value};

/// Session data shaped like the existing service's (see
/// `../shared/reference/existing-service-redis-sessions.md`): `user` with `username`, `email`,
/// `role`, `sub`, `preferred_username`, a ~620-character `access_token`, a float `created`
/// and a `csrf_token`; about 900 bytes of compact JSON.
///
/// ```
/// let data = redis_harness::fixtures::existing_service_session("aaron");
/// assert_eq!(data["user"]["username"], "aaron");
/// assert!(serde_json::to_vec(&data).unwrap().len() > 850);
/// ```
pub fn existing_service_session(user: &str) -> Map<String, Value> {
    let value = json!({
        "user": {
            "username": user,
            "email": format!("{user}@example.com"),
            "role": "admin",
            "sub": format!("{user}-7f3c9a2e-4b1d-4e8f-9a6c-2d5e8b1f0c3a"),
            "preferred_username": user,
        },
        "access_token": format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", "x".repeat(620)),
        "created": 1_717_171_717.25,
        "csrf_token": "Zx3_k9-ab8lJf1mN2oP3qR4sT5uV6wX7yZ8aB9cD0eE",
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}
