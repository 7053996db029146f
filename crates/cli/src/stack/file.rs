//! The stack file's YAML shapes, exactly as users write them; unknown keys
//! are errors, so a typo never passes silently.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StackFile {
    pub(crate) stack: String,
    #[serde(default)]
    pub(crate) keypairs: Vec<KeypairSpec>,
    #[serde(default)]
    pub(crate) server_groups: Vec<ServerGroupSpec>,
    #[serde(default)]
    pub(crate) security_groups: Vec<SecurityGroupSpec>,
    #[serde(default)]
    pub(crate) networks: Vec<NetworkSpec>,
    #[serde(default)]
    pub(crate) subnets: Vec<SubnetSpec>,
    #[serde(default)]
    pub(crate) servers: Vec<ServerSpec>,
    #[serde(default)]
    pub(crate) routers: Vec<RouterSpec>,
    #[serde(default)]
    pub(crate) floating_ips: Vec<FloatingIpSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeypairSpec {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) public_key: Option<String>,
    #[serde(default)]
    pub(crate) public_key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerGroupSpec {
    pub(crate) name: String,
    pub(crate) policy: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecurityGroupSpec {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default)]
    pub(crate) rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum PortSpec {
    Num(u16),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleSpec {
    #[serde(default = "ingress")]
    pub(crate) direction: String,
    #[serde(default = "ipv4")]
    pub(crate) ethertype: String,
    #[serde(default)]
    pub(crate) protocol: Option<String>,
    #[serde(default)]
    pub(crate) port: Option<PortSpec>,
    #[serde(default)]
    pub(crate) remote_ip_prefix: Option<String>,
    #[serde(default)]
    pub(crate) remote_group: Option<String>,
}

fn ingress() -> String {
    "ingress".into()
}
fn ipv4() -> String {
    "IPv4".into()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkSpec {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default = "yes")]
    pub(crate) admin_state_up: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubnetSpec {
    pub(crate) name: String,
    pub(crate) network: String,
    pub(crate) cidr: String,
    #[serde(default)]
    pub(crate) gateway_ip: Option<String>,
    #[serde(default = "yes")]
    pub(crate) enable_dhcp: bool,
    #[serde(default)]
    pub(crate) dns_nameservers: Vec<String>,
    #[serde(default)]
    pub(crate) description: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum NicSpec {
    Name(String),
    Full {
        network: String,
        #[serde(default)]
        fixed_ip: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSpec {
    pub(crate) name: String,
    pub(crate) flavor: String,
    pub(crate) image: String,
    #[serde(default)]
    pub(crate) networks: Vec<NicSpec>,
    #[serde(default)]
    pub(crate) key_name: Option<String>,
    #[serde(default)]
    pub(crate) security_groups: Vec<String>,
    #[serde(default)]
    pub(crate) server_group: Option<String>,
    #[serde(default)]
    pub(crate) availability_zone: Option<String>,
    #[serde(default)]
    pub(crate) user_data: Option<String>,
    #[serde(default)]
    pub(crate) metadata: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouterSpec {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) external_network: Option<String>,
    #[serde(default = "yes")]
    pub(crate) enable_snat: bool,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default)]
    pub(crate) interfaces: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FloatingIpSpec {
    /// Its name in the stack (default: the server's).
    #[serde(default)]
    pub(crate) name: Option<String>,
    pub(crate) server: String,
    pub(crate) network: String,
}
