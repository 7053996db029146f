//! The store contract of layer 3, on PostgreSQL and on SQLite: routers
//! with their gateway and interfaces, floating IPs and their association,
//! what the conductor reads for a network node, and the DHCP port of a
//! routed subnet (one, however many concurrent callers).

use cloud_model::network::{
    AllocationPool, DEVICE_OWNER_DHCP, Ipv4Cidr, Network, NetworkType, Segment, Subnet,
};
use cloud_model::{DomainId, Error, NetworkId, ProjectId, Timestamp};
use cloud_store::{
    AddressRequest, Association, FloatingIpUpdate, GatewayRequest, InterfaceRequest, NewFloatingIp,
    NewPort, NewRouter, NewSubnet, PortFilter, RouterUpdate, Scope, Store, VniRange,
};
use cloud_test_utils::{TestDb, both_backends, record_network_node};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

async fn project(store: &Store, name: &str) -> ProjectId {
    store.domain_ensure_default().await.unwrap();
    store
        .project_create(&DomainId::default_domain(), name, "", true)
        .await
        .unwrap()
        .id
}

/// A network with one /24 subnet whose gateway is .1.
async fn network(s: &Store, p: &ProjectId, cidr: &str, external: bool) -> (NetworkId, Subnet) {
    let now = Timestamp::now();
    let net = Network {
        id: NetworkId::new(),
        project_id: p.clone(),
        name: cidr.to_owned(),
        description: String::new(),
        admin_state_up: true,
        shared: false,
        external,
        mtu: 1450,
        segment: Segment {
            network_type: NetworkType::Vxlan,
            physical_network: None,
            segmentation_id: None,
        },
        port_security_enabled: true,
        subnet_ids: Vec::new(),
        created_at: now,
        updated_at: now,
        revision: 1,
    };
    let net = s.network_create(&net, VniRange::default()).await.unwrap();
    let cidr = Ipv4Cidr::parse(cidr).unwrap();
    let gateway = Ipv4Addr::from(u32::from(cidr.network()) + 1);
    let subnet = s
        .subnet_create(&NewSubnet {
            network_id: net.id,
            project_id: p.clone(),
            name: String::new(),
            description: String::new(),
            cidr,
            gateway_ip: Some(gateway),
            enable_dhcp: true,
            dns_nameservers: Vec::new(),
            allocation_pools: vec![AllocationPool {
                start: Ipv4Addr::from(u32::from(gateway) + 9),
                end: cidr.last_host(),
            }],
            host_routes: Vec::new(),
        })
        .await
        .unwrap();
    (net.id, subnet)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

both_backends!(
    routers_and_floating_ips_round_trip,
    |db: TestDb| async move {
        let s = &db.store;
        let p = project(s, "p1").await;
        let (ext, ext_subnet) = network(s, &p, "203.0.113.0/24", true).await;
        let (net, subnet) = network(s, &p, "10.0.0.0/24", false).await;
        let since = Timestamp::now().plus_seconds(-60);

        // No network node yet: the router exists, unplaced; interfaces wait.
        let new = |name: &str| NewRouter {
            project_id: p.clone(),
            name: name.into(),
            description: String::new(),
            admin_state_up: true,
            gateway: None,
        };
        let r0 = s.router_create(&new("r0"), -1, since).await.unwrap();
        assert_eq!((r0.host.as_deref(), r0.status.as_str()), (None, "ACTIVE"));
        let err = s
            .router_add_interface(r0.id, InterfaceRequest::Subnet(subnet.id), since)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("No network node"), "{err}");
        s.router_delete(r0.id).await.unwrap();

        record_network_node(s, "net1").await.unwrap();
        let gateway = GatewayRequest {
            network_id: ext,
            enable_snat: true,
            addresses: vec![AddressRequest {
                subnet_id: None,
                ip_address: Some(ip("203.0.113.50")),
            }],
        };
        let r = s
            .router_create(
                &NewRouter {
                    gateway: Some(gateway),
                    ..new("r1")
                },
                1,
                since,
            )
            .await
            .unwrap();
        assert_eq!(r.host.as_deref(), Some("net1"));
        let gw = r.gateway.clone().unwrap();
        assert_eq!((gw.network_id, gw.enable_snat), (ext, true));
        assert_eq!(gw.fixed_ips[0].ip_address, ip("203.0.113.50"));
        assert!(matches!(
            s.router_create(&new("r2"), 1, since).await,
            Err(Error::QuotaExceeded { .. })
        ));
        assert_eq!(s.router_get(r.id, &Scope::All).await.unwrap(), r);
        assert_eq!(
            s.router_list(&Scope::Project(p.clone())).await.unwrap(),
            std::slice::from_ref(&r)
        );

        // An interface takes the subnet's gateway address, once.
        let iface = s
            .router_add_interface(r.id, InterfaceRequest::Subnet(subnet.id), since)
            .await
            .unwrap();
        assert_eq!((iface.ip_address, iface.network_id), (ip("10.0.0.1"), net));
        let again = s
            .router_add_interface(r.id, InterfaceRequest::Subnet(subnet.id), since)
            .await;
        assert!(
            matches!(again, Err(Error::InvalidRequest { .. })),
            "{again:?}"
        );
        let port = s
            .port_list(&PortFilter {
                device_id: Some(r.id.to_string()),
                network_id: Some(net),
                ..PortFilter::all(Scope::All)
            })
            .await
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(port.binding_host.as_deref(), Some("net1"));
        assert_eq!(port.device_owner, "network:router_interface");

        // Extra routes: next hops on the router's subnets only.
        let route = |hop: &str| cloud_model::network::HostRoute {
            destination: Ipv4Cidr::parse("192.168.0.0/16").unwrap(),
            nexthop: ip(hop),
        };
        let up = |hop: &str| RouterUpdate {
            routes: Some(vec![route(hop)]),
            ..RouterUpdate::default()
        };
        assert!(
            s.router_update(r.id, &up("172.16.0.1"), since)
                .await
                .is_err()
        );
        let r = s.router_update(r.id, &up("10.0.0.7"), since).await.unwrap();
        assert_eq!(r.routes, [route("10.0.0.7")]);

        // A floating IP, associated with a guest port's only address.
        let guest = s
            .port_create(&NewPort {
                network_id: net,
                project_id: p.clone(),
                name: String::new(),
                description: String::new(),
                fixed_ips: Vec::new(),
                mac_address: None,
                device_id: None,
                device_owner: "compute:nova".into(),
                admin_state_up: true,
                security_groups: Vec::new(),
                port_security_enabled: true,
                allowed_address_pairs: Vec::new(),
            })
            .await
            .unwrap();
        let fixed = guest.fixed_ips[0].ip_address;
        let new_fip = NewFloatingIp {
            project_id: p.clone(),
            floating_network_id: ext,
            address: AddressRequest::default(),
            description: "web".into(),
            association: Some(Association {
                port_id: guest.id,
                fixed_ip: None,
            }),
        };
        let fip = s.floating_ip_create(&new_fip, 50).await.unwrap();
        assert_eq!(fip.floating_ip_address, ip("203.0.113.10"));
        assert_eq!(
            (fip.port_id, fip.fixed_ip_address),
            (Some(guest.id), Some(fixed))
        );
        assert_eq!((fip.router_id, fip.status.as_str()), (Some(r.id), "ACTIVE"));
        assert_eq!(s.floating_ip_get(fip.id, &Scope::All).await.unwrap(), fip);
        assert_eq!(
            s.floating_ip_path(ext, subnet.id).await.unwrap(),
            Some(r.id)
        );
        // One floating IP per fixed IP.
        let second = s.floating_ip_create(&new_fip, 50).await;
        assert!(matches!(second, Err(Error::Conflict { .. })), "{second:?}");
        // Exact addresses: taken is a conflict.
        let taken = NewFloatingIp {
            address: AddressRequest {
                subnet_id: Some(ext_subnet.id),
                ip_address: Some(ip("203.0.113.10")),
            },
            association: None,
            ..new_fip.clone()
        };
        assert!(matches!(
            s.floating_ip_create(&taken, 50).await,
            Err(Error::Conflict { .. })
        ));

        // What the network node runs.
        let on_host = s.routers_on_host("net1").await.unwrap();
        assert_eq!(on_host.len(), 1);
        let hr = &on_host[0];
        assert_eq!(hr.router.id, r.id);
        assert_eq!(hr.interfaces, std::slice::from_ref(&iface));
        let leg = hr.gateway.clone().unwrap();
        assert_eq!(
            (leg.address, leg.next_hop, leg.snat),
            (ip("203.0.113.50"), Some(ip("203.0.113.1")), true)
        );
        assert_eq!(hr.floating_ips, [(ip("203.0.113.10"), fixed)]);
        assert_eq!(
            s.floating_ips_of_router(r.id).await.unwrap(),
            hr.floating_ips
        );
        assert_eq!(
            s.subnets_with_router_interface(&[net, ext]).await.unwrap(),
            BTreeSet::from([subnet.id])
        );
        assert!(s.routers_on_host("other").await.unwrap().is_empty());

        // The interface, the gateway and the router stay while needed.
        let needed = s
            .router_remove_interface(r.id, InterfaceRequest::Subnet(subnet.id))
            .await;
        assert!(matches!(needed, Err(Error::Conflict { .. })), "{needed:?}");
        assert!(s.router_set_gateway(r.id, None, since).await.is_err());
        assert!(matches!(
            s.router_delete(r.id).await,
            Err(Error::Conflict { .. })
        ));

        // Disassociation: explicit, then by deleting the port.
        assert_eq!(
            s.floating_ips_disassociate_ports(&[guest.id])
                .await
                .unwrap(),
            1
        );
        let fip = s.floating_ip_get(fip.id, &Scope::All).await.unwrap();
        assert_eq!(
            (fip.port_id, fip.router_id, fip.status.as_str()),
            (None, None, "DOWN")
        );
        let assoc = FloatingIpUpdate {
            association: Some(Some(Association {
                port_id: guest.id,
                fixed_ip: Some(fixed),
            })),
            description: None,
        };
        assert!(
            s.floating_ip_update(fip.id, &assoc)
                .await
                .unwrap()
                .port_id
                .is_some()
        );
        s.port_delete(guest.id).await.unwrap();
        let fip = s.floating_ip_get(fip.id, &Scope::All).await.unwrap();
        assert_eq!(
            (fip.port_id, fip.fixed_ip_address, fip.router_id),
            (None, None, None)
        );
        assert!(s.floating_ips_of_router(r.id).await.unwrap().is_empty());

        // Routes hold the interface; then it goes, with the subnet's DHCP port.
        s.dhcp_port_ensure(net, subnet.id).await.unwrap();
        let needed = s
            .router_remove_interface(r.id, InterfaceRequest::Port(iface.port_id))
            .await;
        assert!(matches!(needed, Err(Error::Conflict { .. })), "{needed:?}");
        let no_routes = RouterUpdate {
            routes: Some(Vec::new()),
            ..RouterUpdate::default()
        };
        s.router_update(r.id, &no_routes, since).await.unwrap();
        let removed = s
            .router_remove_interface(r.id, InterfaceRequest::Subnet(subnet.id))
            .await
            .unwrap();
        assert_eq!(removed, iface);
        let dhcp = PortFilter {
            device_owner: Some(DEVICE_OWNER_DHCP.into()),
            ..PortFilter::all(Scope::All)
        };
        assert!(s.port_list(&dhcp).await.unwrap().is_empty());
        let deleted = s.router_delete(r.id).await.unwrap();
        assert_eq!(deleted.id, r.id);
        s.floating_ip_delete(fip.id).await.unwrap();
        // Nothing is left on the external network: it can go.
        s.network_delete(ext).await.unwrap();
        assert_eq!(s.l3_counts(&p).await.unwrap()["router"], 0);
    }
);

both_backends!(dhcp_port_ensure_makes_one_port, |db: TestDb| async move {
    let s = &db.store;
    let p = project(s, "p1").await;
    let (net, subnet) = network(s, &p, "10.1.0.0/24", false).await;
    let calls = (0..10).map(|_| {
        let s = s.clone();
        let subnet = subnet.id;
        tokio::spawn(async move { s.dhcp_port_ensure(net, subnet).await.unwrap() })
    });
    let mut addresses = BTreeSet::new();
    for c in calls {
        addresses.insert(c.await.unwrap());
    }
    assert_eq!(addresses, BTreeSet::from([ip("10.1.0.10")]));
    let ports = s
        .port_list(&PortFilter {
            device_owner: Some(DEVICE_OWNER_DHCP.into()),
            ..PortFilter::all(Scope::All)
        })
        .await
        .unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(
        (ports[0].binding_host.as_deref(), &ports[0].project_id),
        (None, &p)
    );
    assert_eq!(
        s.dhcp_port_ensure(net, subnet.id).await.unwrap(),
        ip("10.1.0.10")
    );
    let (other, _) = network(s, &p, "10.2.0.0/24", false).await;
    assert!(matches!(
        s.dhcp_port_ensure(other, subnet.id).await,
        Err(Error::InvalidRequest { .. })
    ));
});
