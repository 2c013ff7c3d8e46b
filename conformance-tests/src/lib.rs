//! # conformance-tests: the behaviour every `SessionStore` must show
//!
//! One suite, generic over any store, is the specification of the contract: each
//! `# Behavior` bullet in `session_core::SessionStore` and `SessionStoreExt` has a case of the
//! same name in [`cases`], plus two generated cases checked against a plain reference model
//! that computes lifetimes and users itself:
//!
//! - [`cases::model_based_property`] runs random sequences of every operation (`put` in
//!   every mode, with and without an idle timeout or a whole lifetime, expired ones
//!   included), interleaved with clock jumps across expiry boundaries, and shrinks failures
//!   to a minimal sequence;
//! - [`cases::concurrent_histories_linearize`] runs many small concurrent histories (2–3
//!   tasks of 2–4 single-session operations on 3 shared ids, the clock standing still) and
//!   checks that some order of each history, keeping program and real-time order, explains
//!   every result and the final state.
//!
//! A backend joins with one line in its tests:
//!
//! ```text
//! conformance_tests::conformance_suite!(memory, MemoryFactory);
//! ```
//!
//! which stamps one `#[tokio::test]` per case into a module `memory`, so a failure reads
//! `memory::put_if_version_does_not_resurrect`. The factory implements [`StoreFactory`]; each
//! case asks it for fresh stores with a [`ManualClock`](session_core::ManualClock) and a
//! unique key prefix.
//! The crate using the macro needs `tokio` (with `macros` and `rt-multi-thread`) as a
//! dev-dependency.
#![deny(missing_docs)]

pub mod cases;
mod ctx;
mod factory;
mod gen;
mod history;
mod linearize;
mod model;
mod observe;
mod property;

use std::sync::Arc;

use futures::future::BoxFuture;

pub use ctx::{data, unique_prefix, Ctx, IDLE};
pub use factory::StoreFactory;
pub use gen::{LifeSpec, Opts, Seed};
pub use history::{History, HistoryPut, Start, Step, HISTORIES};
pub use property::{Op, PutKind, MAX_OPS, MIN_CASES};

/// A case as a plain function pointer, for running the suite by hand (see [`all_cases`]).
pub type CaseFn = fn(Arc<dyn StoreFactory>) -> BoxFuture<'static, ()>;

/// Every case with its name, in suite order: for harnesses that run the suite themselves,
/// such as the check that a deliberately faulty store is caught.
pub fn all_cases() -> &'static [(&'static str, CaseFn)] {
    conformance_suite!(@cases [list])
}

/// Stamps the whole suite for one store: `conformance_suite!(module_name, factory_expr);`
///
/// `factory_expr` is evaluated once per test and must implement [`StoreFactory`]; it is
/// written inside the generated module, which imports the parent module's items.
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $factory:expr $(,)?) => {
        $crate::conformance_suite! { @cases [stamp $name, $factory] }
    };
    // The one list of cases. Keep it in the order of the trait docs.
    (@cases [$($how:tt)*]) => {
        $crate::conformance_suite! { @go [$($how)*]
            oversized_write_is_rejected,
            reserved_key_is_rejected,
            load_missing_is_none,
            load_returns_what_was_stored,
            load_expired_is_none,
            load_does_not_extend,
            put_create_stores_new_session,
            put_create_never_overwrites_live_session,
            put_create_over_expired_session_starts_fresh,
            put_upsert_then_load,
            put_upsert_replaces_data_and_slides_idle_expiry,
            put_upsert_keeps_creation_and_absolute_expiry,
            put_upsert_over_expired_session_starts_fresh,
            put_with_idle_timeout,
            put_if_live_replaces_live_session,
            put_if_live_does_not_resurrect,
            put_if_version_persists_changes,
            put_if_version_returns_the_new_version,
            put_if_version_of_stale_session_conflicts,
            put_if_version_does_not_resurrect,
            put_with_lifetime_keeps_it,
            put_with_expired_lifetime_writes_nothing,
            delete_removes_session,
            delete_missing_is_false,
            exists_follows_liveness,
            refresh_slides_idle_expiry,
            refresh_missing_is_false,
            refresh_never_passes_absolute_expiry,
            refresh_keeps_the_version,
            rotate_moves_data_to_fresh_id,
            rotate_missing_is_none,
            rotate_keeps_user_index,
            count_counts_live_sessions,
            list_user_finds_their_sessions,
            list_user_follows_data_changes,
            list_user_skips_dead_sessions,
            delete_user_ends_all_their_sessions,
            cleanup_purges_only_expired,
            scan_yields_every_live_session,
            create_mints_fresh_ids,
            update_applies_change,
            update_missing_is_none,
            concurrent_updates_keep_every_change,
            concurrent_creates_are_distinct,
            update_racing_delete_stays_deleted,
            rotate_racing_update_loses_nothing,
            import_keeps_lifetime,
            import_never_overwrites,
            import_of_expired_record_is_skipped,
            import_without_token_is_unsupported,
            model_based_property,
            concurrent_histories_linearize,
        }
    };
    (@go [stamp $name:ident, $factory:expr] $($case:ident,)*) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let factory: ::std::sync::Arc<dyn $crate::StoreFactory> =
                        ::std::sync::Arc::new($factory);
                    $crate::cases::$case(factory).await;
                }
            )*
        }
    };
    (@go [list] $($case:ident,)*) => {
        &[$((
            stringify!($case),
            (|f| ::std::boxed::Box::pin($crate::cases::$case(f))) as $crate::CaseFn,
        )),*]
    };
}

#[cfg(test)]
mod tests {
    /// Every `# Behavior` bullet in the contract has a case of the same name, and back, in
    /// the order of the docs (`SessionStore`, then `SessionStoreExt`), followed by the
    /// generated cases.
    #[test]
    fn behavior_bullets_match_cases() {
        let docs = [
            include_str!("../../session-core/src/store.rs"),
            include_str!("../../session-core/src/ext.rs"),
        ];
        let mut bullets: Vec<&str> = docs
            .iter()
            .flat_map(|d| d.lines())
            .filter_map(|l| l.trim().strip_prefix("/// - `"))
            .filter_map(|l| l.split_once("`:").map(|(name, _)| name))
            .collect();
        bullets.extend(["model_based_property", "concurrent_histories_linearize"]);
        let cases: Vec<&str> = super::all_cases().iter().map(|(n, _)| *n).collect();
        assert_eq!(bullets, cases);
    }
}
