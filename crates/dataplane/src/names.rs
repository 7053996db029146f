//! Names of the devices and namespaces the data plane creates, derived
//! from ids so that every agent (and the drivers that plug guests in)
//! agrees on them without asking, and a restarted agent finds its own.

/// Linux limits interface names to 15 characters.
pub const IFNAMSIZ_MAX: usize = 15;

/// The bridge of a network: `brq` + the first 11 characters of its id (as
/// Neutron's Linux bridge agent names it).
pub fn bridge_name(network_id: &str) -> String {
    iface_name("brq", network_id)
}

/// The tap of a port (the host end of a guest's NIC): `tap` + the first 11
/// characters of its id, as Nova names it.
pub fn tap_name(port_id: &str) -> String {
    iface_name("tap", port_id)
}

/// The VXLAN device of a network: `vxlan-` + the VNI.
pub fn vxlan_name(vni: u32) -> String {
    format!("vxlan-{vni}")
}

/// The host end of the veth into a network's namespace: `dhb` + id.
pub fn ns_bridge_end(network_id: &str) -> String {
    iface_name("dhb", network_id)
}

/// The namespace end of that veth: `dhn` + id.
pub fn ns_inner_end(network_id: &str) -> String {
    iface_name("dhn", network_id)
}

/// `prefix` + as much of `id` as fits in an interface name, keeping only
/// characters that are safe in one (ids are UUIDs; anything else is
/// dropped).
pub fn iface_name(prefix: &str, id: &str) -> String {
    let room = IFNAMSIZ_MAX.saturating_sub(prefix.len());
    let tail: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(room.min(11))
        .collect();
    format!("{prefix}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_interface_names() {
        let net = "9f8e7d6c-5b4a-4321-8765-43210fedcba0";
        assert_eq!(bridge_name(net), "brq9f8e7d6c-5b");
        assert_eq!(tap_name("a0b2c3d4-e5f6-4a7b"), "tapa0b2c3d4-e5");
        assert_eq!(vxlan_name(16_777_215), "vxlan-16777215");
        for n in [
            bridge_name(net),
            ns_bridge_end(net),
            ns_inner_end(net),
            vxlan_name(16_777_215),
        ] {
            assert!(n.len() <= IFNAMSIZ_MAX, "{n}");
        }
        // Nothing from an odd id can break out of the name.
        assert_eq!(bridge_name("a b/c;d"), "brqabcd");
    }
}
