//! The state store.
//!
//! One [`Store`] serves both backends: PostgreSQL in production and SQLite
//! as the embedded default. Queries are written once in the SQL both
//! understand and run through sqlx's `Any` driver; the few places where the
//! dialects differ (how a write transaction takes its lock) are in
//! [`Store::begin`]. The schema is defined only by the files in
//! `migrations/`, applied by [`Store::migrate`]. Why this shape rather than
//! two implementations of a trait: docs/adr/0001-one-store-two-backends.md.
//!
//! Each resource family has its own module; row types stay private to it
//! and every function returns `cloud_model` types. Every query that reads a
//! project's resources takes the caller's scope explicitly.

mod actions;
mod conductors;
mod console_tokens;
mod data_plane;
mod db;
mod failover;
mod flavors;
mod floating_ips;
mod hosts;
mod idempotency;
mod identity;
mod images;
mod instance_create;
mod instance_rebuild;
mod instance_shelve;
mod instances;
mod keypairs;
mod l3_host;
mod l3_ports;
mod migrations;
mod networks;
mod placement;
mod port_attachments;
mod ports;
mod project_delete;
mod quotas;
mod router_interfaces;
mod routers;
mod row;
mod security_groups;
mod server_addresses;
mod server_groups;
mod server_security_groups;
mod workflows;
mod zones;

pub use conductors::ConductorPresence;
pub use data_plane::BoundPort;
pub use db::{Backend, Store, is_transient};
pub use flavors::FlavorFilter;
pub use floating_ips::{Association, FloatingIpUpdate, NewFloatingIp};
pub use hosts::{
    ComputeNode, HostReport, InventoryState, Prefilter, RESOURCE_CLASSES, ServiceRecord,
};
pub use idempotency::{IdempotencyClaim, IdempotencyHold, IdempotencyKey, IdempotencyRecord};
pub use identity::NewUser;
pub use images::{ImageFilter, ImageUpload};
pub use instance_rebuild::{REBUILD_FROM, RebuildChange, rebuild_refusal};
pub use instance_shelve::ShelveRecord;
pub use instances::{InstanceFilter, StateUpdate};
pub use l3_host::{GatewayLeg, HostRouter};
pub use l3_ports::AddressRequest;
pub use networks::{NewSubnet, SubnetUpdate, VniRange};
pub use placement::{Claim, ClaimError};
pub use port_attachments::PortOrigin;
pub use ports::{NewPort, PortFilter, RequestedIp, random_mac};
pub use quotas::QuotaUsage;
pub use router_interfaces::InterfaceRequest;
pub use routers::{GatewayRequest, NewRouter, RouterUpdate};
pub use security_groups::NewRule;
pub use server_addresses::ServerNic;
pub use server_security_groups::GroupChange;
pub use workflows::{Workflow, workflow_id};
pub use zones::{INTERNAL_ZONE, ZoneMember};

/// Which projects a query may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Only this project's resources (plus shared/public ones where the
    /// resource has such a notion).
    Project(cloud_model::ProjectId),
    /// Every project (admins, and the control plane itself).
    All,
}

impl Scope {
    /// The project to filter by, or `None` for all.
    pub fn project(&self) -> Option<&cloud_model::ProjectId> {
        match self {
            Scope::Project(p) => Some(p),
            Scope::All => None,
        }
    }
}
