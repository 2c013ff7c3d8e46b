//! One example case per `# Behavior` bullet of `SessionStore` and `SessionStoreExt`.
//!
//! Every case is `pub async fn name(factory: Arc<dyn StoreFactory>)` and panics on failure.

mod basic;
mod ext;
mod index;
mod writes;

pub use basic::*;
pub use ext::*;
pub use index::*;
pub use writes::*;

pub use crate::property::model_based_property;
