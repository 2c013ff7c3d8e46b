//! Moving a service from a map of sessions to `session-store` (also `docs/MIGRATING.md`).
// `MIGRATING.md` in this crate is a symlink to `docs/MIGRATING.md`: a published package holds
// only files inside the crate's directory.
#![doc = include_str!("../MIGRATING.md")]
