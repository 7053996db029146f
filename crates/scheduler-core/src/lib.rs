//! The scheduler's decision logic, as pure functions.
//!
//! Input: a [`RequestSpec`] (what the server needs) and a snapshot of the
//! candidate hosts ([`HostState`]). Output: the chosen host and its
//! alternates ([`Selection`]), each with its NUMA placement, or a
//! [`NoValidHost`] saying which filter removed how many hosts and why.
//!
//! No I/O, no async, no clock: the scheduler service builds the snapshot
//! from the store and claims the result atomically; this crate only
//! decides, so it is fast (10,000 hosts per decision), testable and
//! deterministic.
//!
//! * Filters ([`filters`]) run cheapest first and stop at the first that
//!   removes a host; their reasons are plain data ([`Reject`]), turned
//!   into words only for a [`NoValidHost`].
//! * Weighers ([`weighers`]) normalise each criterion over the survivors
//!   and apply Nova's multipliers ([`WeigherConfig`]).
//! * [`select`] ranks and returns the best host plus alternates;
//!   [`select_all`] places every server of a multi-create request.
//! * [`pinned_cpus`] and [`hugepages_used`] say what a NUMA placement
//!   takes, so the caller can record it (no two instances share a pinned
//!   CPU).

pub mod filters;
mod host;
mod no_valid_host;
mod numa_fit;
mod numa_request;
mod request;
mod select;
#[cfg(test)]
mod testing;
pub mod weighers;

pub use filters::{FilterKind, Prepared, Reject, Resource, filter_host, host_passes};
pub use host::{CellState, HostState, Inventory};
pub use no_valid_host::{NoValidHost, Removal};
pub use numa_fit::{NumaReject, fit_numa, hugepages_used, pinned_cpus};
pub use numa_request::{
    GuestCell, InvalidRequest, MAX_NUMA_NODES, NumaRequest, PageRequest, parse_cpu_list,
    parse_page_size,
};
pub use request::{GroupPolicy, GroupSpec, RequestSpec};
pub use select::{Candidate, Selection, select, select_all, select_prepared};
pub use weighers::{WeigherConfig, weigh};
