//! Every `deploy/config/compute*.example.toml` parses into the agent's
//! file configuration (unknown keys are errors, so a typo in an example
//! fails here), and a file without the libvirt driver's settings still
//! reads when it asks for the fake driver.

use cloud_compute::{DriverConfig, FileConfig};
use cloud_service_common::config::{error_chain, parse_config};
use std::path::Path;

#[test]
fn compute_example_configs_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("deploy/config exists") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("compute") && name.ends_with(".example.toml")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let config: FileConfig =
            parse_config(&path, &text).unwrap_or_else(|e| panic!("{name}: {}", error_chain(&e)));
        assert!(!config.agent.host.is_empty(), "{name}");
        if config.driver.needs_images() {
            assert!(config.image_api.is_some(), "{name}: [image_api] is needed");
        }
        kinds.push(config.driver.kind());
    }
    kinds.sort();
    assert_eq!(
        kinds,
        ["fake", "libvirt", "netns"],
        "one example per driver"
    );
}

#[test]
fn a_typo_is_an_error_naming_the_key() {
    let text = "[agent]\nhost = \"h\"\nheartbeat_sec = 1.0\n[driver]\nkind = \"fake\"\n[bus]\n";
    let err = parse_config::<FileConfig>(Path::new("x.toml"), text).unwrap_err();
    let chain = error_chain(&err);
    assert!(
        chain.contains("heartbeat_sec") && chain.contains("x.toml"),
        "{chain}"
    );
    let text = "[agent]\nhost = \"h\"\n[driver]\nkind = \"fake\"\n[bus]\n";
    let ok: FileConfig = parse_config(Path::new("x.toml"), text).unwrap();
    assert!(matches!(ok.driver, DriverConfig::Fake(_)));
    assert_eq!(ok.agent.maintenance_secs, 600.0);
}

#[test]
fn the_data_plane_settings_take_the_underlay_address_from_the_agent() {
    let text = "[agent]\nhost = \"h\"\nlocal_ip = \"192.0.2.7\"\n[driver]\nkind = \"netns\"\n\
                [network.physical_interfaces]\nphysnet1 = \"eth1\"\n[bus]\n";
    let c: FileConfig = parse_config(Path::new("x.toml"), text).unwrap();
    let n = c.network_config();
    assert_eq!(n.local_ip, Some("192.0.2.7".parse().unwrap()));
    assert_eq!(n.physical_interfaces["physnet1"], "eth1");
    assert_eq!(n.nft_table, "cloud");
    assert!(n.metadata.is_none());
}
