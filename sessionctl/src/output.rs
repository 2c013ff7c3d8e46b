//! Exit codes, failures, and printing in human or JSON form.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::{json, Value};
use session_store::Error;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// get / delete / refresh of a session that does not exist (or expired).
    NotFound = 1,
    /// Usage or configuration error (clap's own usage errors exit 2 too).
    Usage = 2,
    /// The backend failed: unreachable, refused, answered an error, corrupt record.
    Backend = 3,
    /// `migrate --verify` found a difference.
    Mismatch = 4,
    /// `migrate` could not copy some sessions (corrupt or untransferable records).
    Partial = 5,
}

impl Exit {
    fn kind(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::NotFound => "not_found",
            Exit::Usage => "usage",
            Exit::Backend => "backend",
            Exit::Mismatch => "mismatch",
            Exit::Partial => "partial",
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// Why a command failed: its exit code and a message that holds no token or password.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong, with its causes.
    pub message: String,
    /// The command already printed its JSON result; `--json` prints no second document.
    pub reported: bool,
}

impl Failure {
    /// A failure with this code.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
            reported: false,
        }
    }

    /// A failure whose JSON result the command already printed.
    pub fn after_report(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            reported: true,
            ..Self::new(exit, message)
        }
    }

    /// Usage or configuration error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    /// The session asked for does not exist.
    pub fn not_found() -> Self {
        Self::new(
            Exit::NotFound,
            "session not found (unknown, deleted or expired)",
        )
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        let exit = match &err {
            Error::NotFound => Exit::NotFound,
            Error::InvalidId { .. }
            | Error::Config { .. }
            | Error::TooLarge { .. }
            | Error::InvalidData { .. }
            | Error::Unsupported { .. } => Exit::Usage,
            _ => Exit::Backend,
        };
        // The store's errors never hold tokens or passwords (their sources are client
        // errors and decoding errors); print the chain so "connection refused" shows.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                let _ = write!(message, ": {text}");
            }
            source = cause.source();
        }
        Failure::new(exit, message)
    }
}

/// Where results go: human text or one JSON document on stdout.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// `--json`.
    pub json: bool,
}

impl Out {
    /// Prints a result: `human` as text, or `value` as JSON.
    pub fn print(&self, human: impl FnOnce() -> String, value: impl FnOnce() -> Value) {
        if self.json {
            println!("{}", value());
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }

    /// Reports a failure (stderr; with `--json` also a JSON object on stdout).
    pub fn fail(&self, failure: &Failure) {
        if self.json && !failure.reported {
            println!(
                "{}",
                json!({"ok": false, "error": failure.exit.kind(), "exit_code": failure.exit as u8, "message": failure.message})
            );
        }
        eprintln!("sessionctl: {}", failure.message);
    }
}

/// `1h 02m 03s`-style text for a duration in ms.
pub fn human_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}
