//! Domain types shared by every layer of the cloud.
//!
//! This crate does no I/O. It holds what the API, the store, the bus and the
//! compute agents must agree on: typed identifiers (so a network id can never
//! be passed where a port id is expected), the resource records, the
//! instance state machine and its mapping onto the API's status strings, and
//! the one public [`Error`] type that every layer returns and only the API
//! turns into HTTP.

pub mod error;
pub mod flavor;
pub mod identity;
pub mod ids;
pub mod image;
pub mod instance;
pub mod keypair;
pub mod network;
pub mod quota;
pub mod time;

pub use error::{Error, ResourceKind};
pub use ids::*;
pub use time::Timestamp;
