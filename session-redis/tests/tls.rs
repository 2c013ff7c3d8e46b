//! `rediss://` against a real TLS `redis-server` whose certificate a throwaway CA signed
//! (`REDIS_TLS_CA_FILE`): a full round trip, and typed errors within the timeouts for a CA
//! that did not sign it, the public roots, and a scheme that does not match the port.
//! Needs the `tls` feature (`[[test]] required-features` in Cargo.toml).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_harness::tls::TlsFiles;
use redis_harness::{RedisServer, ServerSpec};
use session_core::{Error, SessionStore, SessionStoreExt};
use session_redis::{RedisConfig, RedisStore};

const PASSWORD: &str = "tls-test-secret-8d1f";

/// A TLS server (with a password, to check it never shows) and its CA files.
fn tls_server() -> (RedisServer, Arc<TlsFiles>) {
    let files = Arc::new(TlsFiles::generate());
    let server =
        RedisServer::start_with(ServerSpec::redis().requirepass(PASSWORD).tls(files.clone()));
    (server, files)
}

/// Settings as a deployment sets them: `REDIS_URL`, `REDIS_TLS_CA_FILE`, short timeouts.
fn config(url: &str, ca_file: Option<&Path>) -> RedisConfig {
    let ca_file = ca_file.map(|p| p.display().to_string());
    RedisConfig::from_lookup(|name| match name {
        "REDIS_URL" => Some(url.to_owned()),
        "REDIS_TLS_CA_FILE" => ca_file.clone(),
        "REDIS_CONNECT_TIMEOUT_MS" | "REDIS_RESPONSE_TIMEOUT_MS" => Some("500".into()),
        "REDIS_RECONNECT_RETRIES" => Some("1".into()),
        _ => None,
    })
    .unwrap()
}

fn with_password(url: &str) -> String {
    url.replacen("://", &format!("://:{PASSWORD}@"), 1)
}

/// The error, its `Debug` and every source in its chain, as one string.
fn chain(err: &Error) -> String {
    let mut shown = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        shown.push_str(&format!(" | {s}"));
        source = s.source();
    }
    shown
}

/// Connecting fails, within the bound, with a typed error that keeps the password out.
async fn connect_fails(config: RedisConfig) -> Error {
    let bound = (config.connect_timeout + Duration::from_millis(250)) * 2 + Duration::from_secs(2);
    let started = Instant::now();
    let err = RedisStore::connect(config)
        .await
        .expect_err("must not connect");
    let took = started.elapsed();
    assert!(took < bound, "took {took:?}, bound {bound:?}: {err:?}");
    assert!(!chain(&err).contains(PASSWORD), "{}", chain(&err));
    err
}

#[tokio::test]
async fn round_trip_over_tls_with_a_private_ca() {
    let (server, files) = tls_server();
    let config = config(&with_password(&server.tls_url()), Some(&files.ca_cert()));
    assert!(config.tls);
    assert!(!format!("{config:?}").contains(PASSWORD));
    let store = RedisStore::connect(config).await.expect("connect over TLS");

    let session = store.create(common::seed_data("tess")).await.unwrap();
    let id = session.id().clone();
    let loaded = store.get(&id).await.unwrap().expect("loads");
    assert_eq!(loaded.data(), session.data());
    let updated = store
        .update(&id, |d| {
            d.insert("theme".into(), "dark".into());
        })
        .await
        .unwrap()
        .expect("updates");
    assert_ne!(updated.version(), session.version());
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().data()["theme"],
        "dark"
    );
    assert_eq!(store.count().await.unwrap(), 1);
    let user = session.data()["user"]["sub"].as_str().unwrap().to_owned();
    assert_eq!(store.list_user(&user).await.unwrap().len(), 1);

    // The session really is in this server (read over its plain port).
    let keys = common::all_keys(&mut server.connection());
    assert!(
        keys.iter()
            .any(|k| k.starts_with("session:") && !k.contains('~')),
        "{keys:?}"
    );

    assert!(store.delete(&id).await.unwrap());
    assert!(store.get(&id).await.unwrap().is_none());
    assert_eq!(store.count().await.unwrap(), 0);
}

#[tokio::test]
async fn a_ca_that_did_not_sign_the_certificate_is_refused() {
    let (server, files) = tls_server();
    let url = with_password(&server.tls_url());

    // Retrying cannot help: a non-retryable error that says TLS and names the problem.
    for ca_file in [Some(files.other_ca_cert()), None] {
        // (Without a CA file only the public roots are trusted: a private CA is refused too.)
        let err = connect_fails(config(&url, ca_file.as_deref())).await;
        assert!(
            matches!(
                err,
                Error::Backend {
                    backend: "redis",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        let shown = err.to_string();
        assert!(
            shown.contains("TLS")
                && shown.contains("certificate")
                && shown.contains("UnknownIssuer"),
            "{shown}"
        );
        assert!(shown.contains("REDIS_TLS_CA_FILE"), "{shown}");
    }
}

#[tokio::test]
async fn plain_text_to_the_tls_port_fails_in_time() {
    let (server, _files) = tls_server();
    let url = with_password(&format!("redis://127.0.0.1:{}/", server.tls_port()));
    let err = connect_fails(config(&url, None)).await;
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn tls_to_a_plain_port_fails_in_time() {
    let files = TlsFiles::generate();
    let server = RedisServer::start();
    let url = format!("rediss://127.0.0.1:{}/", server.port());
    let err = connect_fails(config(&url, Some(&files.ca_cert()))).await;
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_ca_file_that_is_not_a_certificate_is_a_config_error() {
    let (server, files) = tls_server();
    let url = server.tls_url();
    for path in [files.server_key(), files.dir().join("absent.pem")] {
        let err = RedisStore::connect(config(&url, Some(&path)))
            .await
            .expect_err("no usable CA");
        assert!(
            matches!(&err, Error::Config { variable, .. } if variable == "REDIS_TLS_CA_FILE"),
            "{err:?}"
        );
        // The key file's contents never show, only its path.
        assert!(!chain(&err).contains("PRIVATE KEY"), "{}", chain(&err));
    }
}
