//! Turning failures into pages: store trouble is a 503 (retry later), anything else a 500.
//! Details go to the log (store errors never contain tokens), not to the browser.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::pages;

/// A handler failure.
#[derive(Debug)]
pub struct AppError(pub session_store::Error);

impl From<session_store::Error> for AppError {
    fn from(error: session_store::Error) -> Self {
        AppError(error)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "request failed");
        let (status, message) = if self.0.is_retryable() {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The session store is unavailable. Please try again in a moment.",
            )
        } else {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side.",
            )
        };
        (status, pages::error_page(status, message)).into_response()
    }
}
