//! Every example configuration in deploy/config parses into its service's
//! configuration type (unknown keys are errors there, so a typo in an
//! example fails this test).

use cloud_service_common::config::parse_config;
use std::path::Path;

#[test]
fn example_configs_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/config exists") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".example.toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let result = if name.starts_with("api") {
            parse_config::<cloud_api::config::FileConfig>(&path, &text).map(|_| ())
        } else if name.starts_with("conductor") {
            parse_config::<cloud_conductor::config::FileConfig>(&path, &text).map(|_| ())
        } else if name.starts_with("scheduler") {
            parse_config::<cloud_scheduler::config::FileConfig>(&path, &text).map(|_| ())
        } else {
            // Compute configs are checked by cloud-compute's own test.
            continue;
        };
        if let Err(e) = result {
            panic!("{name}: {}", cloud_service_common::config::error_chain(&e));
        }
        seen += 1;
    }
    assert!(
        seen >= 3,
        "expected the api, conductor and scheduler examples"
    );
}
