//! A tour of the session store on the in-memory backend: no server needed.
//!
//! Run: `cargo run -p session-memory --example walkthrough`

use std::sync::Arc;

use serde_json::json;
use session_core::{Error, SessionId, SessionStore, SessionStoreExt};
use session_memory::MemoryStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // The service holds one `Arc<dyn SessionStore>`; Redis and Sentinel plug in the same way.
    let sessions: Arc<dyn SessionStore> = Arc::new(MemoryStore::from_env()?);

    // Login: the existing service's session shape, under a freshly minted id.
    let login = json!({
        "user": {"username": "aaron", "email": "aaron@example.com", "role": "admin",
                 "sub": "user-uuid", "preferred_username": "aaron"},
        "access_token": "keycloak_access_token",
        "created": 1234567890.0,
    });
    let session = sessions.create(login.as_object().unwrap().clone()).await?;
    println!(
        "created {} (the token itself is never printed)",
        session.id()
    );

    // A later request presents the cookie: validate it before any lookup.
    let cookie = session.id().expose_token().to_owned();
    let id: SessionId = cookie.parse()?;
    assert!("not-a-token".parse::<SessionId>().is_err());

    // Two requests change different keys at once: both changes survive.
    let (a, b) = tokio::join!(
        sessions.update(&id, |d| {
            d.insert("csrf_token".into(), json!("t-1"));
        }),
        sessions.update(&id, |d| {
            d.insert("theme".into(), json!("dark"));
        }),
    );
    a?;
    b?;
    let now = sessions.get(&id).await?.expect("live");
    println!(
        "after two concurrent updates: csrf_token={} theme={}",
        now.data()["csrf_token"],
        now.data()["theme"]
    );

    // Privilege change: same data under a fresh id; the old cookie is dead.
    let rotated = sessions.rotate(&id).await?.expect("live");
    println!(
        "rotated to {}; old id live: {}",
        rotated.id(),
        sessions.exists(&id).await?
    );

    // A second device, then "log out everywhere".
    sessions.create(login.as_object().unwrap().clone()).await?;
    println!(
        "aaron's sessions: {}",
        sessions.list_user("user-uuid").await?.len()
    );
    println!(
        "logged out everywhere: {} sessions",
        sessions.delete_user("user-uuid").await?
    );
    println!("live sessions now: {}", sessions.count().await?);
    Ok(())
}
