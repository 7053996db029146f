//! cloud-api: the OpenStack-compatible HTTP API.
//!
//! One listener serves the four OpenStack services under path prefixes, as
//! a devstack deployment does: identity at `/identity`, compute at
//! `/compute`, image at `/image` and network at `/network`. The token's
//! catalog points clients at them.
//!
//! Layout: each service is a module with one file per resource; handlers
//! parse input, check the policy, call the store (or, for servers, the
//! control plane) and render the service's JSON shape. Errors are rendered
//! per service by [`error::render_faults`].

pub mod auth;
pub mod bootstrap;
pub mod compute;
pub mod config;
pub mod console_proxy;
pub mod console_tokens;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod identity;
pub mod image;
pub mod metadata;
pub mod network;
pub mod openapi;
pub mod request_id;
pub mod server;
pub mod state;

pub use config::ApiConfig;
pub use server::{ServeHandle, serve};
pub use state::AppState;
