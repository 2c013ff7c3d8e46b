//! Password and ACL user authentication; secrets never shown.

mod common;

use std::time::Duration;

use redis_harness::{RedisServer, ServerSpec};
use session_core::{SessionStore, SessionStoreExt};
use session_redis::{RedisConfig, RedisStore};

fn config(server: &RedisServer, vars: &[(&str, &str)]) -> RedisConfig {
    let port = server.port().to_string();
    let mut config = RedisConfig::from_lookup(|name| match name {
        "REDIS_PORT" => Some(port.clone()),
        _ => vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string()),
    })
    .unwrap();
    config.connect_timeout = Duration::from_millis(500);
    config
}

#[tokio::test]
async fn requirepass_works_with_redis_password_and_never_shows_it() {
    let server = RedisServer::start_with(ServerSpec::redis().requirepass("pa55-word-xyzzy"));
    let good = config(&server, &[("REDIS_PASSWORD", "pa55-word-xyzzy")]);
    assert!(!format!("{good:?}").contains("pa55-word-xyzzy"));
    let store = RedisStore::connect(good).await.unwrap();
    let session = store.create(common::seed_data("hal")).await.unwrap();
    assert!(store.exists(session.id()).await.unwrap());

    let wrong = config(&server, &[("REDIS_PASSWORD", "wrong-secret-qwerty")]);
    let err = RedisStore::connect(wrong)
        .await
        .expect_err("wrong password");
    assert!(!err.is_retryable(), "{err:?}");
    let mut shown = format!("{err} {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        shown.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    assert!(
        !shown.contains("wrong-secret-qwerty") && !shown.contains("pa55"),
        "{shown}"
    );

    let missing = config(&server, &[]);
    assert!(RedisStore::connect(missing).await.is_err());
}

#[tokio::test]
async fn acl_user_from_redis_url() {
    let server = RedisServer::start_with(
        ServerSpec::redis()
            .config("user default off")
            .config("user svc on >svc-secret-1 ~* &* +@all"),
    );
    let url = format!("redis://svc:svc-secret-1@127.0.0.1:{}/0", server.port());
    let config = config(&server, &[("REDIS_URL", url.as_str())]);
    assert_eq!(config.username.as_deref(), Some("svc"));
    assert!(!format!("{config:?}").contains("svc-secret-1"));
    let store = RedisStore::connect(config).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 0);
}
