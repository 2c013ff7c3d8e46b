//! Every operation traces backend, op, outcome and round trips; never a token or data.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use redis_harness::RedisServer;
use session_core::{ManualClock, SessionConfig, SessionStore, SessionStoreExt};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn spans_carry_fields_but_no_secrets() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = RedisServer::start();
    let store = common::store_on(
        &server,
        SessionConfig::default(),
        false,
        Arc::new(ManualClock::starting_now()),
    )
    .await;
    let session = store.create(common::seed_data("ivy")).await.unwrap();
    let token = session.id().expose_token().to_owned();
    store
        .update(session.id(), |d| {
            d.insert("k".into(), "v".into());
        })
        .await
        .unwrap();
    store
        .list_user("ivy-7f3c9a2e-4b1d-4e8f-9a6c-2d5e8b1f0c3a")
        .await
        .unwrap();
    store.delete(session.id()).await.unwrap();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for op in [
        "put_create",
        "load",
        "put_if_version",
        "list_user",
        "delete",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("op=\"{op}\"")) && l.contains("close"))
            .unwrap_or_else(|| panic!("no closed span for {op}:\n{text}"));
        assert!(line.contains("backend=\"redis\""), "{line}");
        assert!(line.contains("outcome=\"ok\""), "{line}");
        // list_user reads the user's index, then checks its sessions (one script per slot).
        let trips = if op == "list_user" { 2 } else { 1 };
        assert!(line.contains(&format!("round_trips={trips}")), "{line}");
    }
    assert!(text.contains(&session.id().fingerprint()));
    assert!(!text.contains(&token), "a token was traced");
    assert!(!text.contains("eyJhbGci"), "session data was traced");
}
