//! The scheduler's decision logic, as pure functions.
//!
//! Input: a [`RequestSpec`] (what the server needs) and a snapshot of the
//! candidate hosts ([`HostState`]). Output: the chosen host and
//! alternates ([`Selection`]), or a [`NoValidHost`] that says which filter
//! removed how many hosts and why. No I/O: the scheduler service builds
//! the snapshot from the store (after a SQL prefilter) and claims the
//! result atomically; this crate only decides, so it is fast, testable and
//! deterministic.

mod filters;
mod host;
mod numa;
mod select;
mod weighers;

pub use filters::{FILTERS, Filter, Rejection};
pub use host::{CellState, GroupPolicy, GroupSpec, HostState, Inventory, RequestSpec};
pub use numa::{NumaRequest, fit_numa};
pub use select::{Candidate, NoValidHost, Selection, select};
pub use weighers::WeigherConfig;
