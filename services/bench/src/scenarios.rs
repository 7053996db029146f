//! One module per scenario, each with its flags and a `run` returning a
//! [`crate::report::Report`].

pub mod boot;
pub mod contention;
pub mod dataplane;
pub mod list;
pub mod resources;
pub mod scheduler;
