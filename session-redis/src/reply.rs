//! Reading script replies: a status code first, then values.

use std::fmt;

use redis::Value;
use session_core::{Error, Result};

use crate::scripts::Status;

/// A script reply (an array) with typed accessors; shapes other than expected are
/// [`Error::Backend`] with an [`UnexpectedReply`] source.
#[derive(Debug)]
pub(crate) struct Reply {
    backend: &'static str,
    items: Vec<Value>,
}

impl Reply {
    pub(crate) fn new(backend: &'static str, value: Value) -> Result<Self> {
        match value {
            Value::Array(items) => Ok(Reply { backend, items }),
            _ => Err(unexpected(backend, "script reply is not an array")),
        }
    }

    pub(crate) fn status(&self) -> Result<Status> {
        self.int(0)
            .ok()
            .and_then(Status::from_code)
            .ok_or_else(|| unexpected(self.backend, "unknown script status"))
    }

    pub(crate) fn int(&self, index: usize) -> Result<i64> {
        match self.items.get(index) {
            Some(Value::Int(n)) => Ok(*n),
            _ => Err(unexpected(
                self.backend,
                "expected an integer in the script reply",
            )),
        }
    }

    /// A non-negative number, as an integer or as the digit string a script kept unformatted.
    pub(crate) fn uint(&self, index: usize) -> Result<u64> {
        match self.items.get(index) {
            Some(Value::BulkString(digits)) => std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| unexpected(self.backend, "expected digits in the script reply")),
            _ => u64::try_from(self.int(index)?)
                .map_err(|_| unexpected(self.backend, "negative number in the script reply")),
        }
    }

    /// A UTF-8 string item.
    pub(crate) fn text(&mut self, index: usize) -> Result<String> {
        let bytes = self.take_bytes(index)?;
        String::from_utf8(bytes)
            .map_err(|_| unexpected(self.backend, "expected text in the script reply"))
    }

    pub(crate) fn take_bytes(&mut self, index: usize) -> Result<Vec<u8>> {
        match self.items.get_mut(index) {
            Some(Value::BulkString(bytes)) => Ok(std::mem::take(bytes)),
            _ => Err(unexpected(
                self.backend,
                "expected a string in the script reply",
            )),
        }
    }
}

/// The server's answer had a shape this version of the store does not expect (for example a
/// script from another version under the same hash, which cannot happen, or a proxy in the
/// way).
#[derive(Debug, Clone, Copy)]
pub struct UnexpectedReply(pub &'static str);

impl fmt::Display for UnexpectedReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for UnexpectedReply {}

pub(crate) fn unexpected(backend: &'static str, what: &'static str) -> Error {
    Error::Backend {
        backend,
        source: Box::new(UnexpectedReply(what)),
    }
}
