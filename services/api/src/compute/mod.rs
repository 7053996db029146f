//! Compute (Nova v2.1 subset), mounted at `/compute`.

pub mod hosts;
pub mod server_actions;
pub mod server_create;
pub mod server_groups;
pub mod server_info;
pub mod server_metadata;
pub mod server_views;
pub mod servers;

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
        .routes(routes!(server_info::instance_action_list))
        .routes(routes!(server_info::instance_action_show))
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

/// Routes of the compute service, relative to its prefix.
pub fn router() -> OpenApiRouter<AppState> {
    server_routes()
}
