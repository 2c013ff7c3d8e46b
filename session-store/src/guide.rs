//! Moving a service from a map of sessions to `session-store` (also `docs/MIGRATING.md`).
#![doc = include_str!("../../docs/MIGRATING.md")]
