//! Interface attach and detach (`POST`/`DELETE /servers/{id}/os-interface`)
//! through the real HTTP API and fake hosts, on both backends (issue 13):
//! a new port on a network or the user's own port is plugged into the
//! running VM and shows in the server's addresses and interfaces; detach
//! deletes the port made for the server and unbinds the user's; Nova's
//! 400s, 404s and 409s; a failed hotplug leaves no port behind.

use cloud_driver::Driver;
use cloud_driver_fake::FakeConfig;
use cloud_e2e::active_image;
use cloud_model::InstanceId;
use cloud_store::Backend;
use cloud_test_utils::{
    Client, ControlPlane, PlaneOptions, Reply, boot, create_network, wait_for_status,
};
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

async fn attach(c: &Client, id: &str, body: Value) -> Reply {
    c.post(
        &format!("/compute/v2.1/servers/{id}/os-interface"),
        json!({ "interfaceAttachment": body }),
    )
    .await
}

async fn detach(c: &Client, id: &str, port: &str) -> Reply {
    c.delete(&format!("/compute/v2.1/servers/{id}/os-interface/{port}"))
        .await
}

/// The server's interfaces as listed.
async fn interfaces(c: &Client, id: &str) -> Vec<Value> {
    let r = c
        .get(&format!("/compute/v2.1/servers/{id}/os-interface"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["interfaceAttachments"].as_array().unwrap().clone()
}

/// The network names in the server's `addresses`, sorted.
async fn address_networks(c: &Client, id: &str) -> Vec<String> {
    let s = c.get(&format!("/compute/v2.1/servers/{id}")).await.body["server"].clone();
    let mut names: Vec<String> = s["addresses"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

async fn port(c: &Client, id: &str) -> Reply {
    c.get(&format!("/network/v2.0/ports/{id}")).await
}

async fn new_port(c: &Client, net: &str) -> String {
    let r = c
        .post("/network/v2.0/ports", json!({"port": {"network_id": net}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["port"]["id"].as_str().unwrap().to_owned()
}

async fn ports_on(c: &Client, net: &str) -> usize {
    let r = c
        .get(&format!("/network/v2.0/ports?network_id={net}"))
        .await;
    r.body["ports"].as_array().unwrap().len()
}

async fn attach_and_detach(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let store = &plane.api.db.store;
    let image = active_image(store, &admin.project_id).await;
    let demo = plane.api.account("demo", "demo", "member").await;
    let c = &demo.client;
    let (net1, _) = create_network(c, "net-a", "10.9.0.0/24", json!({})).await;
    let (net2, _) = create_network(c, "net-b", "10.10.0.0/24", json!({})).await;
    let r = boot(
        c,
        "vm1",
        "1",
        &image.to_string(),
        json!({"networks": [{"uuid": net1}]}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let host = admin
        .client
        .get(&format!("/compute/v2.1/servers/{id}"))
        .await
        .body["server"]["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .unwrap()
        .to_owned();
    let driver = plane.driver(&host);
    let vm = InstanceId::parse(&id).unwrap();
    assert_eq!(interfaces(c, &id).await.len(), 1);

    // Bad requests: 400 (both or neither id), 404 (unknown network or port).
    let r = attach(
        c,
        &id,
        json!({"port_id": new_port(c, &net1).await, "net_id": net2}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.error_message().contains("mutually exclusive"),
        "{}",
        r.body
    );
    let r = attach(c, &id, json!({})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = attach(c, &id, json!({"net_id": InstanceId::new().to_string()})).await;
    assert_eq!(r.status, 404, "{}", r.body);
    // Another project's port is not found.
    let other = plane.api.account("other", "other", "member").await;
    let (other_net, _) = create_network(&other.client, "net-o", "10.11.0.0/24", json!({})).await;
    let foreign = new_port(&other.client, &other_net).await;
    let r = attach(c, &id, json!({"port_id": foreign})).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(interfaces(c, &id).await.len(), 1);

    // Attach by network, with an address: a second NIC in the guest.
    let r = attach(
        c,
        &id,
        json!({"net_id": net2, "fixed_ips": [{"ip_address": "10.10.0.50"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let made = r.body["interfaceAttachment"].clone();
    assert_eq!(made["net_id"], net2.as_str(), "{made}");
    assert_eq!(made["fixed_ips"][0]["ip_address"], "10.10.0.50", "{made}");
    assert_eq!(made["port_state"], "ACTIVE", "{made}");
    let made_port = made["port_id"].as_str().unwrap().to_owned();
    let made_mac = made["mac_addr"].as_str().unwrap().to_owned();
    assert_eq!(interfaces(c, &id).await.len(), 2);
    assert_eq!(address_networks(c, &id).await, ["net-a", "net-b"]);
    let macs = driver.nic_macs(vm).unwrap();
    assert_eq!(macs.len(), 2);
    assert_eq!(macs[1], made_mac);
    let console = driver.console_output(vm, 1 << 20).await.unwrap();
    assert!(
        console.contains(&format!("HOTPLUG=add NIC=eth1 MAC={made_mac}")),
        "{console}"
    );
    // The host's data plane carries the new port.
    let (applied, _) = driver.network();
    assert!(
        format!("{applied:?}").contains(&made_port),
        "the host's network lacks {made_port}"
    );

    // Attach the user's own port.
    let mine = new_port(c, &net1).await;
    let r = attach(c, &id, json!({"port_id": mine})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["interfaceAttachment"]["port_id"], mine.as_str());
    assert_eq!(interfaces(c, &id).await.len(), 3);
    assert_eq!(port(c, &mine).await.body["port"]["device_id"], id.as_str());
    // A rebuild keeps the attached NICs (the guest is made anew from the
    // server's ports).
    let r = c
        .post(
            &format!("/compute/v2.1/servers/{id}/action"),
            json!({"rebuild": {"imageRef": image.to_string()}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let macs = driver.nic_macs(vm).unwrap();
    assert_eq!(macs.len(), 3, "{macs:?}");
    assert!(macs.contains(&made_mac), "{macs:?}");
    // A port in use (here: by this server already) is a 409.
    let r = attach(c, &id, json!({"port_id": mine})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.error_message().contains("in use"), "{}", r.body);

    // A hotplug the host fails leaves no port behind, and the user's port
    // unbound.
    driver.fail_next_attaches(1, "no free PCI slot");
    let before = ports_on(c, &net2).await;
    let r = attach(c, &id, json!({"net_id": net2})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.error_message().contains("no free PCI slot"), "{}", r.body);
    assert_eq!(ports_on(c, &net2).await, before);
    let spare = new_port(c, &net2).await;
    driver.fail_next_attaches(1, "no free PCI slot");
    let r = attach(c, &id, json!({"port_id": spare})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let p = port(c, &spare).await.body["port"].clone();
    assert_eq!(p["device_id"], "", "{p}");
    assert_eq!(p["binding:host_id"], "", "{p}");
    assert_eq!(interfaces(c, &id).await.len(), 3);
    assert_eq!(driver.nic_macs(vm).unwrap().len(), 3);

    // Detach the port made for the server: it is deleted.
    let r = detach(c, &id, &made_port).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(port(c, &made_port).await.status, 404);
    assert_eq!(address_networks(c, &id).await, ["net-a"]);
    assert!(!driver.nic_macs(vm).unwrap().contains(&made_mac));
    let console = driver.console_output(vm, 1 << 20).await.unwrap();
    assert!(console.contains("HOTPLUG=remove NIC=eth1"), "{console}");
    // Detach the user's port: kept, unbound.
    let r = detach(c, &id, &mine).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let p = port(c, &mine).await.body["port"].clone();
    assert_eq!(p["device_id"], "", "{p}");
    assert_eq!(p["device_owner"], "", "{p}");
    assert_eq!(interfaces(c, &id).await.len(), 1);
    assert_eq!(driver.nic_macs(vm).unwrap().len(), 1);
    // A port the server does not have is a 404.
    let r = detach(c, &id, &mine).await;
    assert_eq!(r.status, 404, "{}", r.body);

    // Both actions are recorded with their events (the failed attaches
    // with an error event).
    let r = c
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await;
    let actions: Vec<Value> = r.body["instanceActions"].as_array().unwrap().clone();
    for (name, result) in [
        ("attach_interface", "Success"),
        ("attach_interface", "Error"),
        ("detach_interface", "Success"),
    ] {
        let mut seen = Vec::new();
        for a in actions.iter().filter(|a| a["action"] == name) {
            let req = a["request_id"].as_str().unwrap();
            let r = c
                .get(&format!(
                    "/compute/v2.1/servers/{id}/os-instance-actions/{req}"
                ))
                .await;
            seen.extend(
                r.body["instanceAction"]["events"]
                    .as_array()
                    .unwrap()
                    .clone(),
            );
        }
        assert!(
            seen.iter()
                .any(|e| e["event"] == format!("compute_{name}") && e["result"] == result),
            "{name} {result}: {seen:?}"
        );
    }

    // A stopped server gets the NIC in its definition only.
    let r = c
        .post(
            &format!("/compute/v2.1/servers/{id}/action"),
            json!({"os-stop": null}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    wait_for_status(c, &id, &["SHUTOFF"], T).await;
    let r = attach(c, &id, json!({"port_id": mine})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(driver.nic_macs(vm).unwrap().len(), 2);

    // Deleting the server keeps the user's attached port, unbound.
    let r = c.delete(&format!("/compute/v2.1/servers/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let deadline = std::time::Instant::now() + T;
    while c.get(&format!("/compute/v2.1/servers/{id}")).await.status != 404 {
        assert!(std::time::Instant::now() < deadline, "server not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = port(c, &mine).await;
    assert_eq!(r.status, 200, "the user's port was deleted with the server");
    assert_eq!(r.body["port"]["device_id"], "", "{}", r.body);

    // A server still building refuses an attach (409 naming its state).
    driver.set_spawn_delay(Some(Duration::from_secs(5)));
    let r = boot(
        c,
        "vm2",
        "1",
        &image.to_string(),
        json!({"networks": [{"uuid": net1}]}),
    )
    .await;
    let building = r.body["server"]["id"].as_str().unwrap().to_owned();
    let r = attach(c, &building, json!({"net_id": net2})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.error_message().contains("while it is in"), "{}", r.body);
    driver.set_spawn_delay(None);
    // A shelved (offloaded) server refuses it too.
    let s = wait_for_status(c, &building, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let r = c
        .post(
            &format!("/compute/v2.1/servers/{building}/action"),
            json!({"shelve": null}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    wait_for_status(c, &building, &["SHELVED_OFFLOADED"], T).await;
    let r = attach(c, &building, json!({"net_id": net2})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.error_message().contains("shelved"), "{}", r.body);
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attach_and_detach_sqlite() {
    attach_and_detach(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attach_and_detach_rabbitmq_postgres() {
    attach_and_detach(Backend::Postgres).await;
}
