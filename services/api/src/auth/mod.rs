//! Authentication and authorization: password hashing, tokens, the
//! request context built from a token, and the policy table.

pub mod context;
pub mod password;
pub mod policy;
pub mod token;

pub use context::Ctx;
pub use policy::Action;
