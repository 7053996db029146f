//! Networks, subnets and ports have quotas as in Neutron (issue 16,
//! finding 10): 100, 100 and 500 by default next to routers' 10 and
//! floating IPs' 50, set by an admin with `PUT /v2.0/quotas/{project}`
//! (`openstack quota set --networks`), reset with `DELETE`, and enforced
//! on create with Neutron's 409 `OverQuota`. Before, a project could
//! create networks, subnets and ports without end.

use cloud_test_utils::{TestApi, TestDb, both_backends};
use serde_json::json;
use support::{assert_fault, id, post_port};

mod support;

both_backends!(
    network_subnet_and_port_quotas_are_enforced,
    |db: TestDb| async move {
        let api = TestApi::start_with(db, |_| {}).await;
        let admin = api.admin().await.client;
        let user = api.account("nq", "nina", "member").await;
        let c = &user.client;
        let path = format!("/network/v2.0/quotas/{}", user.project_id);

        let r = c.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        for (name, limit) in [
            ("network", 100),
            ("subnet", 100),
            ("port", 500),
            ("router", 10),
            ("floatingip", 50),
        ] {
            assert_eq!(r.body["quota"][name], limit, "{}", r.body);
        }

        // Only an admin sets them; bad values change nothing.
        let limits = json!({"quota": {"network": 1, "subnet": 1, "port": 1}});
        let r = c.put(&path, limits.clone()).await;
        assert_eq!(r.status, 403, "{}", r.body);
        for bad in [
            json!({"quota": {"network": 1, "bogus": 1}}),
            json!({"quota": {"network": 1, "port": -2}}),
            json!({"quota": {"network": "many"}}),
        ] {
            let r = admin.put(&path, bad.clone()).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.body);
        }
        assert_eq!(c.get(&path).await.body["quota"]["network"], 100);
        let r = admin.put(&path, limits).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["quota"]["network"], 1, "{}", r.body);
        assert_eq!(r.body["quota"]["router"], 10, "{}", r.body);

        let net = c
            .post("/network/v2.0/networks", json!({"network": {"name": "a"}}))
            .await;
        assert_eq!(net.status, 201, "{}", net.body);
        let net = id(&net, "network");
        let r = c
            .post("/network/v2.0/networks", json!({"network": {"name": "b"}}))
            .await;
        assert_fault(&r, 409, "Quota exceeded for resources: ['network']");
        assert_eq!(r.body["NeutronError"]["type"], "OverQuota");

        let subnet = |cidr: &str| json!({"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4, "enable_dhcp": false}});
        let r = c
            .post("/network/v2.0/subnets", subnet("10.40.0.0/24"))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let r = c
            .post("/network/v2.0/subnets", subnet("10.41.0.0/24"))
            .await;
        assert_fault(&r, 409, "Quota exceeded for resources: ['subnet']");

        let r = post_port(c, json!({"network_id": net})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let r = post_port(c, json!({"network_id": net})).await;
        assert_fault(&r, 409, "Quota exceeded for resources: ['port']");

        let r = c.get(&format!("{path}/details")).await;
        assert_eq!(
            r.body["quota"]["port"],
            json!({"limit": 1, "used": 1, "reserved": 0}),
            "{}",
            r.body
        );

        // Reset: back to the defaults, and creating works again.
        assert_eq!(c.delete(&path).await.status, 403);
        assert_eq!(admin.delete(&path).await.status, 204);
        assert_eq!(c.get(&path).await.body["quota"]["network"], 100);
        let r = c
            .post("/network/v2.0/networks", json!({"network": {"name": "b"}}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
);
