//! Fixtures for the unit tests: a typical `VmSpec`.

use cloud_driver::{FlavorSpec, ImageSpec, NicSpec, VmSpec};
use cloud_model::InstanceId;
use std::collections::BTreeMap;

/// A one-NIC, 1 vCPU / 256 MiB spec with user data and a key.
pub fn spec() -> VmSpec {
    VmSpec {
        id: InstanceId::parse("6d1f6a43-4c43-4b1e-9c0e-0e5e3b7c8a10").unwrap(),
        name: "web-1".into(),
        hostname: "web-1".into(),
        project_id: "proj1".into(),
        user_id: "user1".into(),
        flavor: FlavorSpec {
            id: "f1".into(),
            name: "m1.tiny".into(),
            vcpus: 1,
            ram_mb: 256,
            disk_gb: 1,
            swap_mb: 0,
            ephemeral_gb: 0,
            extra_specs: BTreeMap::new(),
        },
        image: ImageSpec {
            id: "0b0d1f3e-1111-4222-8333-444455556666".into(),
            disk_format: "qcow2".into(),
            size: 1,
            checksum: String::new(),
            sha512: None,
            properties: BTreeMap::new(),
        },
        kernel: None,
        ramdisk: None,
        nics: vec![nic(0)],
        user_data: Some(b"#!/bin/sh\necho hi\n".to_vec()),
        metadata: BTreeMap::from([("role".to_string(), "web".to_string())]),
        key: Some(("k1".into(), "ssh-ed25519 AAAAC3Nza test@host".into())),
        availability_zone: "nova".into(),
        launch_index: 0,
        numa: None,
    }
}

/// NIC number `i` on network `net-<i>`.
pub fn nic(i: u8) -> NicSpec {
    NicSpec {
        port_id: format!("a{i}b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"),
        network_id: format!("9f8e7d6c-5b4a-4321-8765-43210fedcba{i}"),
        mac: format!("fa:16:3e:00:00:0{i}"),
        ip: Some(format!("10.0.{i}.5").parse().unwrap()),
        prefix: Some(24),
        gateway: Some(format!("10.0.{i}.1").parse().unwrap()),
        dns: vec!["10.0.0.2".parse().unwrap()],
        dhcp: true,
        mtu: 1450,
    }
}
