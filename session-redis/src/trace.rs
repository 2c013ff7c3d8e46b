//! One `tracing` span per store operation: backend, op, outcome, round trips, and at most a
//! session fingerprint (never a token, password or data).

use session_core::{Error, Result, SessionId};
use tracing::field::Empty;
use tracing::Span;

/// Opens the span of one operation.
pub(crate) fn span(backend: &'static str, op: &'static str, id: Option<&SessionId>) -> Span {
    let span = tracing::debug_span!(
        "session_store",
        backend,
        op,
        sid = Empty,
        outcome = Empty,
        round_trips = Empty
    );
    if let Some(id) = id {
        if !span.is_disabled() {
            span.record("sid", id.fingerprint());
        }
    }
    span
}

/// Records how the operation ended.
pub(crate) fn finish<T>(span: &Span, result: &Result<T>, round_trips: u32) {
    // A span no subscriber wanted records nothing, but each `record` would still look its
    // field up by name (and, with tracing's `log` feature, ask the logger): about 2 % of a
    // load's client CPU.
    if !span.is_disabled() {
        span.record("round_trips", round_trips);
        span.record("outcome", outcome(result));
    }
    if let Err(err @ Error::Corrupt { .. }) = result {
        // Error's Display shows only the fingerprint and the reason.
        tracing::warn!(parent: span, error = %err, "corrupt session record");
    }
}

fn outcome<T>(result: &Result<T>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(Error::Conflict) => "conflict",
        Err(Error::NotFound) => "not_found",
        Err(Error::Unavailable { .. }) => "unavailable",
        Err(Error::Backend { .. }) => "backend_error",
        Err(Error::Corrupt { .. }) => "corrupt",
        Err(Error::TooLarge { .. }) => "too_large",
        Err(Error::InvalidData { .. }) => "invalid_data",
        Err(_) => "error",
    }
}
