//! What the background copier keeps between batches and reports.

use session_core::ScanCursor;

/// Where the copier is: the cursor into `old` and what it has done so far.
#[derive(Debug, Default)]
pub(crate) struct CopierState {
    pub(crate) cursor: Option<ScanCursor>,
    pub(crate) progress: CopyProgress,
}

/// Counter of sessions the copier moved from `old` to `new`:
/// `session_migrate_copied_total{store="migrating", from, to}` (`from` and `to` are the two
/// stores' backend names). Reported through the `metrics` facade (a no-op unless the
/// application installed a recorder).
pub const COPIED_TOTAL: &str = "session_migrate_copied_total";

/// Gauge of live sessions left in `old` after the copier's last batch:
/// `session_migrate_remaining{store="migrating", from, to}`; 0 once the move is complete.
pub const REMAINING: &str = "session_migrate_remaining";

/// What the copier has done since the store was built.
///
/// The copier also reports [`CopyProgress::copied`] as the counter [`COPIED_TOTAL`] and
/// [`CopyProgress::remaining`] as the gauge [`REMAINING`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyProgress {
    /// Sessions moved from `old` to `new` by the copier.
    pub copied: u64,
    /// Sessions found in both stores (an earlier move was interrupted): `new` kept its copy.
    pub already_in_new: u64,
    /// Sessions gone from `old` between listing and moving (deleted, moved by a request, or
    /// expired).
    pub vanished: u64,
    /// Live sessions left in `old` after the last batch.
    pub remaining: u64,
    /// `old` holds no live session any more.
    pub complete: bool,
}
