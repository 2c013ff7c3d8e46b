//! The background copier: moves what live requests have not touched yet.

use std::time::Duration;

use session_core::{Error, Result};
use tokio::task::JoinHandle;

use crate::progress::{CopyProgress, COPIED_TOTAL, REMAINING};
use crate::store::{MigratingStore, Moved};

impl MigratingStore {
    /// Moves up to `max` sessions from `old` and reports progress. Safe to call repeatedly
    /// and concurrently with live requests; resumes where the last call stopped, and starts a
    /// new pass over `old` when one pass ends with sessions still there.
    pub async fn copy_batch(&self, max: usize) -> Result<CopyProgress> {
        let inner = &*self.inner;
        let mut state = inner.copier.lock().await;
        let page = inner.old.scan(state.cursor.take(), max.max(1)).await?;
        for record in page.sessions {
            let Some(id) = record.id else {
                return Err(Error::Unsupported {
                    backend: inner.old.backend(),
                    operation: "migrating sessions whose tokens are not stored (hashed ids)",
                });
            };
            let _id = inner.locks.lock(&id).await;
            match inner.move_id(&id).await? {
                Moved::Copied => {
                    state.progress.copied += 1;
                    self.report_copied(1);
                }
                Moved::AlreadyInNew => state.progress.already_in_new += 1,
                Moved::NotInOld => state.progress.vanished += 1,
            }
        }
        state.cursor = page.next;
        state.progress.remaining = inner.old.count().await?;
        state.progress.complete = state.progress.remaining == 0;
        self.report_remaining(state.progress.remaining);
        if state.progress.complete {
            // Expired leftovers are not sessions any more; purge them so `old` is empty.
            inner.old.cleanup().await?;
        }
        Ok(state.progress)
    }

    /// Adds `copied` to `session_migrate_copied_total` (see [`CopyProgress`]).
    fn report_copied(&self, copied: u64) {
        let (from, to) = self.metric_labels();
        metrics::counter!(COPIED_TOTAL, "store" => "migrating", "from" => from, "to" => to)
            .increment(copied);
    }

    /// Sets `session_migrate_remaining` (see [`CopyProgress`]).
    fn report_remaining(&self, remaining: u64) {
        let (from, to) = self.metric_labels();
        metrics::gauge!(REMAINING, "store" => "migrating", "from" => from, "to" => to)
            .set(remaining as f64);
    }

    fn metric_labels(&self) -> (&'static str, &'static str) {
        (self.inner.old.backend(), self.inner.new.backend())
    }

    /// Progress so far, without moving anything.
    pub async fn progress(&self) -> CopyProgress {
        self.inner.copier.lock().await.progress
    }

    /// Whether `old` holds no live session.
    pub async fn is_complete(&self) -> Result<bool> {
        Ok(self.inner.old.count().await? == 0)
    }

    /// Runs [`copy_batch`](Self::copy_batch) in a Tokio task, `batch` at a time with `pause`
    /// between batches, until `old` is empty; the task ends with the final progress. Errors
    /// end the task too (call again to resume where it stopped).
    pub fn spawn_copier(&self, batch: usize, pause: Duration) -> JoinHandle<Result<CopyProgress>> {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                let progress = store.copy_batch(batch).await?;
                tracing::debug!(
                    copied = progress.copied,
                    remaining = progress.remaining,
                    "session copier batch"
                );
                if progress.complete {
                    return Ok(progress);
                }
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        })
    }
}
