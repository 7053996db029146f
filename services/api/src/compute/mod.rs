//! Compute (Nova v2.1 subset), mounted at `/compute`; the catalog points
//! at `/compute/v2.1`.
//!
//! One file per resource. Every response carries the microversion headers
//! and every fault is in Nova's format: both are layers put around this
//! router where it is mounted (`crate::openapi::api_router`), so they also
//! cover unknown paths. Handlers that render version-dependent shapes take
//! a [`microversion::Microversion`] argument.

pub mod availability_zones;
pub mod flavor_access;
pub mod flavor_extra_specs;
pub mod flavors;
pub mod hosts;
pub mod keypairs;
pub mod limits;
pub mod microversion;
pub mod params;
pub mod quotas;
pub mod server_actions;
pub mod server_console;
pub mod server_crash_dump;
pub mod server_create;
pub mod server_create_schema;
pub mod server_groups;
pub mod server_info;
pub mod server_interfaces;
pub mod server_lock;
pub mod server_metadata;
pub mod server_pause;
pub mod server_quota;
pub mod server_rebuild;
pub mod server_rescue;
pub mod server_security_groups;
pub mod server_shelve;
pub mod server_snapshot;
pub mod server_views;
pub mod servers;
pub mod ssh_keys;
pub mod versions;
pub mod views;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of the compute service that concern servers and hosts.
pub fn server_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(servers::server_list, server_create::server_create))
        .routes(routes!(servers::server_list_detail))
        .routes(routes!(
            servers::server_show,
            servers::server_update,
            servers::server_delete
        ))
        .routes(routes!(server_actions::server_action))
        .routes(routes!(
            server_metadata::server_metadata_list,
            server_metadata::server_metadata_replace,
            server_metadata::server_metadata_merge
        ))
        .routes(routes!(
            server_metadata::server_metadata_show,
            server_metadata::server_metadata_set,
            server_metadata::server_metadata_delete
        ))
        .routes(routes!(
            server_metadata::server_tags_list,
            server_metadata::server_tags_replace,
            server_metadata::server_tags_clear
        ))
        .routes(routes!(
            server_metadata::server_tag_check,
            server_metadata::server_tag_add,
            server_metadata::server_tag_delete
        ))
        .routes(routes!(server_info::server_ips))
        .routes(routes!(server_info::server_ips_network))
        .routes(routes!(server_info::server_security_groups))
        .routes(routes!(server_info::instance_action_list))
        .routes(routes!(server_info::instance_action_show))
        .routes(routes!(
            server_interfaces::server_interface_list,
            server_interfaces::server_interface_attach
        ))
        .routes(routes!(
            server_interfaces::server_interface_show,
            server_interfaces::server_interface_detach
        ))
        .routes(routes!(
            server_groups::server_group_list,
            server_groups::server_group_create
        ))
        .routes(routes!(
            server_groups::server_group_show,
            server_groups::server_group_delete
        ))
        .routes(routes!(hosts::hypervisor_list))
        .routes(routes!(hosts::hypervisor_list_detail))
        .routes(routes!(hosts::hypervisor_statistics))
        .routes(routes!(hosts::hypervisor_show))
        .routes(routes!(hosts::service_list))
        .routes(routes!(hosts::service_update))
        .routes(routes!(hosts::service_delete))
}

/// Routes of the compute service, relative to its prefix; one `.routes`
/// per path.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(versions::compute_versions))
        .routes(routes!(versions::compute_v2))
        .routes(routes!(versions::compute_v21))
        .routes(routes!(flavors::flavor_list, flavors::flavor_create))
        .routes(routes!(flavors::flavor_list_detail))
        .routes(routes!(flavors::flavor_show, flavors::flavor_delete))
        .routes(routes!(flavor_access::flavor_action))
        .routes(routes!(flavor_access::flavor_access_list))
        .routes(routes!(
            flavor_extra_specs::flavor_extra_specs_list,
            flavor_extra_specs::flavor_extra_specs_create
        ))
        .routes(routes!(
            flavor_extra_specs::flavor_extra_spec_show,
            flavor_extra_specs::flavor_extra_spec_update,
            flavor_extra_specs::flavor_extra_spec_delete
        ))
        .routes(routes!(keypairs::keypair_list, keypairs::keypair_create))
        .routes(routes!(keypairs::keypair_show, keypairs::keypair_delete))
        .routes(routes!(limits::limits_show))
        .routes(routes!(
            quotas::quota_set_show,
            quotas::quota_set_update,
            quotas::quota_set_delete
        ))
        .routes(routes!(quotas::quota_set_defaults))
        .routes(routes!(quotas::quota_set_detail))
        .routes(routes!(availability_zones::availability_zone_list))
        .routes(routes!(availability_zones::availability_zone_detail))
        .merge(server_routes())
}
