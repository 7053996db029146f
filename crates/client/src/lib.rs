//! cloud-client: a typed client of the cloud's OpenStack-compatible API,
//! used by the `cloud` CLI and by integration tests.
//!
//! * [`Client::connect`] authenticates against Keystone v3 with a password
//!   (user and project by name within a domain, or by id) or an existing
//!   token; [`Client::with_token`] reuses a cached [`Token`]. A token the
//!   server rejects is renewed once, transparently.
//! * Endpoints come from the token's catalog ([`Client::endpoint`]);
//!   compute requests carry the microversion negotiated from the compute
//!   version document ([`Client::compute_microversion`]).
//! * Resources are `serde_json::Value`s with the API's field names; a
//!   [`Kind`] describes each collection, [`Client::find`] resolves names or
//!   ids (an ambiguous name is an error listing the matches); floating IPs
//!   are found by address.
//! * Routers and floating IPs ([`ROUTER`], [`FLOATING_IP`]) add interfaces,
//!   gateways and associations ([`Client::add_router_interface`],
//!   [`Client::associate_floating_ip`], ...).
//! * Every failure is an [`Error`]; answers from the server keep its
//!   message, HTTP status and request id ([`ApiError`]).
//! * `--debug`-style tracing: every exchange is logged at debug level
//!   under the `cloud_client` target, secrets redacted.

mod auth;
mod compute;
mod error;
mod image;
mod l3;
mod login;
mod microversion;
mod resource;
mod session;

pub use auth::{AuthOptions, Credentials, Domain, Endpoint, Named, Token};
pub use compute::{WaitOutcome, fault_of};
pub use error::{ApiError, Error, Result, fault_message};
pub use l3::{
    FLOATING_IP, Interface, ROUTER, ROUTER_INTERFACE_OWNER, floating_addresses, gateway_info,
};
pub use microversion::{CLIENT_MAX, CLIENT_MIN, Microversion, negotiate};
pub use reqwest::Method;
pub use resource::{
    COMPUTE_SERVICE, FLAVOR, HYPERVISOR, IMAGE, KEYPAIR, Kind, NETWORK, PORT, SECURITY_GROUP,
    SECURITY_GROUP_RULE, SERVER, SERVER_GROUP, SUBNET, ValueExt, encode_segment, looks_like_uuid,
};
pub use session::{Body, Client, Progress, Request, Response, Service};
