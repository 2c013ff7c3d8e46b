//! One example case per `# Behavior` bullet of `SessionStore` and `SessionStoreExt`, plus the
//! two generated ones: [`model_based_property`] and [`concurrent_histories_linearize`].
//!
//! Every case is `pub async fn name(factory: Arc<dyn StoreFactory>)` and panics on failure.

mod basic;
mod conditional;
mod ext;
mod index;
mod put;
mod writes;

pub use basic::*;
pub use conditional::*;
pub use ext::*;
pub use index::*;
pub use put::*;
pub use writes::*;

pub use crate::history::concurrent_histories_linearize;
pub use crate::property::model_based_property;
