//! Interface hotplug on a real guest (issue 13): a port attached through
//! `os-interface` appears in the running test guest as a second NIC with
//! the port's MAC, which gets the port's fixed IP by DHCP from the data
//! plane; detaching it removes the NIC from the guest and the domain.

use crate::support::{RealCloud, count, domain, port_ids, value};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attached_interface_is_a_second_nic_in_the_real_guest() {
    let cloud = RealCloud::start().await;
    let id = cloud.boot_ready_guest("vm-hotplug", None).await;
    let (second, _) = cloud.network().await;

    let r = cloud
        .client()
        .post(
            &format!("/compute/v2.1/servers/{id}/os-interface"),
            json!({"interfaceAttachment": {"net_id": second}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let att = r.body["interfaceAttachment"].clone();
    let port = att["port_id"].as_str().unwrap().to_owned();
    let mac = att["mac_addr"].as_str().unwrap().to_owned();
    let ip = att["fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(port_ids(&cloud, &id).await.len(), 2);
    cloud
        .wait_marker(&id, &format!("HOTPLUG=add NIC=eth1 MAC={mac}"), 1)
        .await;
    // The guest's DHCP on the new NIC gets the port's address.
    let console = cloud
        .wait_marker(&id, &format!("NIC=eth1 MAC={mac} IP={ip}"), 1)
        .await;
    assert_eq!(count(&console, "BOOTED"), 1, "no reboot: {console}");
    // The NIC is in the persistent definition too (it survives a stop).
    let inactive = domain(&id)
        .xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)
        .unwrap();
    assert!(inactive.contains(&mac), "{inactive}");
    let server = cloud.wait(&id, &["ACTIVE"]).await;
    let addresses = server["addresses"].to_string();
    assert!(addresses.contains(&ip), "{addresses}");

    let r = cloud
        .client()
        .delete(&format!("/compute/v2.1/servers/{id}/os-interface/{port}"))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    cloud.wait_marker(&id, "HOTPLUG=remove NIC=eth1", 1).await;
    let live = domain(&id).xml_desc(0).unwrap();
    assert!(!live.contains(&mac), "{live}");
    let inactive = domain(&id)
        .xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)
        .unwrap();
    assert!(!inactive.contains(&mac), "{inactive}");
    assert_eq!(port_ids(&cloud, &id).await.len(), 1);
    let console = cloud.console(&id).await;
    assert!(!value(&console, "IP").is_empty());
    cloud.delete(&id).await;
}
