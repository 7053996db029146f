//! The single-node cloud's external network, `public`: a flat network on
//! the physical network `public`, which the local host maps to its end of
//! a veth pair whose host end holds the subnet's gateway (172.24.4.1) with
//! NAT towards the host's own routes (see `cloud_dataplane::uplink`).
//! Floating IPs from it are reachable from the machine itself; routers
//! with a gateway on it reach what the machine reaches.
//!
//! To put a real uplink on it instead, run `cloud-compute` with
//! `[network.physical_interfaces] public = "<interface>"` and create the
//! external network on that interface's subnet.

use cloud_dataplane::uplink::HostUplink;
use cloud_model::network::{AllocationPool, Ipv4Cidr, Network, NetworkType, Segment};
use cloud_model::{NetworkId, ProjectId, Timestamp};
use cloud_store::{NewSubnet, Scope, Store, VniRange};
use std::net::Ipv4Addr;

/// The physical network `public` rides on.
pub const PHYSNET: &str = "public";
/// The network's name.
pub const NAME: &str = "public";
/// The host's end of the uplink.
pub const HOST_INTERFACE: &str = "cloudpub0";
/// The data plane's end.
pub const PHYSICAL_INTERFACE: &str = "cloudpub1";

fn cidr() -> Ipv4Cidr {
    Ipv4Cidr::parse("172.24.4.0/24").expect("a valid CIDR")
}

fn gateway() -> Ipv4Addr {
    Ipv4Addr::new(172, 24, 4, 1)
}

/// The uplink of the local host.
pub fn uplink() -> HostUplink {
    HostUplink {
        host_interface: HOST_INTERFACE.to_owned(),
        physical_interface: PHYSICAL_INTERFACE.to_owned(),
        cidr: cidr(),
        gateway: gateway(),
        nat: true,
    }
}

/// Creates the `public` network and its subnet in the admin project,
/// unless an external network of that name exists.
pub async fn ensure(store: &Store, admin_project: &ProjectId) -> anyhow::Result<()> {
    let existing = store
        .network_list(
            &Scope::All,
            &[
                ("name".to_owned(), NAME.to_owned()),
                ("router:external".to_owned(), "true".to_owned()),
            ]
            .into_iter()
            .collect(),
        )
        .await?;
    if !existing.is_empty() {
        return Ok(());
    }
    let now = Timestamp::now();
    let net = store
        .network_create(
            &Network {
                id: NetworkId::new(),
                project_id: admin_project.clone(),
                name: NAME.to_owned(),
                description: "The external network of this single-node cloud".to_owned(),
                admin_state_up: true,
                shared: false,
                external: true,
                mtu: 1500,
                segment: Segment {
                    network_type: NetworkType::Flat,
                    physical_network: Some(PHYSNET.to_owned()),
                    segmentation_id: None,
                },
                port_security_enabled: true,
                subnet_ids: Vec::new(),
                created_at: now,
                updated_at: now,
                revision: 1,
            },
            VniRange::default(),
        )
        .await?;
    store
        .subnet_create(&NewSubnet {
            network_id: net.id,
            project_id: admin_project.clone(),
            name: "public-subnet".to_owned(),
            description: String::new(),
            cidr: cidr(),
            gateway_ip: Some(gateway()),
            enable_dhcp: false,
            dns_nameservers: Vec::new(),
            allocation_pools: vec![AllocationPool {
                start: Ipv4Addr::new(172, 24, 4, 10),
                end: Ipv4Addr::new(172, 24, 4, 250),
            }],
            host_routes: Vec::new(),
        })
        .await?;
    println!("External network '{NAME}' (172.24.4.0/24) created for floating IPs");
    Ok(())
}
