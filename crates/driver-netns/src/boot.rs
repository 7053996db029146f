//! Booting and halting a guest: what `spawn`, `power_on`, `power_off` and
//! `reboot` share.
//!
//! A boot converges rather than creates (whatever of the namespace and the
//! NICs exists is kept, whatever is missing is made), so the same code
//! serves a first spawn, a retried spawn and a power-on after the host's
//! namespace lost the guest's taps.

use crate::records::GuestFiles;
use crate::{NetnsDriver, dhcp_client, guest, script};
use anyhow::Context;
use cloud_driver::VmSpec;

impl NetnsDriver {
    /// Boots the guest from scratch: namespace and NICs (whatever is
    /// missing of them), links up, boot markers, a DHCP client per NIC.
    /// Returns without waiting for leases.
    pub(crate) async fn boot(&self, files: &GuestFiles, spec: &VmSpec) -> anyhow::Result<()> {
        let ns = self.guest_ns(spec.id);
        let dhcp = self.config.dhcp_timeout_secs > 0;
        if dhcp && !spec.nics.is_empty() {
            dhcp_client::busybox().await?;
        }
        // Clients of an earlier boot (a retried spawn) would not report
        // again to this boot's markers.
        dhcp_client::stop_all(&files.dir).await?;
        guest::ensure_namespace(&ns).await?;
        let ifaces: Vec<String> = (0..spec.nics.len()).map(guest::nic_iface).collect();
        for (i, nic) in spec.nics.iter().enumerate() {
            guest::ensure_nic(&self.dataplane, &ns, i, nic).await?;
        }
        guest::set_links(&ns, &ifaces, true).await?;

        let boot_dir = files.boot_dir();
        if boot_dir.exists() {
            std::fs::remove_dir_all(&boot_dir)
                .with_context(|| format!("cannot empty {}", boot_dir.display()))?;
        }
        std::fs::create_dir_all(&boot_dir)
            .with_context(|| format!("cannot create {}", boot_dir.display()))?;
        let mut lines = boot_markers(spec);
        if !dhcp || spec.nics.is_empty() {
            // Nothing will report: the guest is as ready as it gets.
            for (iface, nic) in ifaces.iter().zip(&spec.nics) {
                lines.push(format!("TESTGUEST NIC={iface} MAC={} IP=none", nic.mac));
            }
            lines.extend(
                [
                    "TESTGUEST IP=none",
                    "TESTGUEST GATEWAY=none",
                    "TESTGUEST READY",
                ]
                .map(String::from),
            );
        }
        files.console_append(&lines)?;
        if !dhcp || spec.nics.is_empty() {
            return Ok(());
        }

        let nics: Vec<(String, String)> = ifaces
            .iter()
            .cloned()
            .zip(spec.nics.iter().map(|n| n.mac.clone()))
            .collect();
        let text = script::dhcp_script(&script::ScriptParams {
            console: &files.console(),
            boot_dir: &boot_dir,
            resolv_conf: &files.resolv_conf(),
            nics: &nics,
        });
        write_executable(&files.dhcp_script(), &text)?;
        let hostname = dhcp_hostname(&spec.hostname);
        for iface in &ifaces {
            let client = dhcp_client::Client {
                netns: &ns,
                iface,
                script: &files.dhcp_script(),
                pid_file: &files.pid_file(iface),
                hostname: Some(&hostname),
                timeout_secs: self.config.dhcp_timeout_secs,
            };
            dhcp_client::start(&client, &files.client_log(iface)).await?;
        }
        Ok(())
    }

    /// Stops the guest: its DHCP clients end (keeping their addresses, as
    /// a powered-off VM's disk keeps its config) and its links go down.
    pub(crate) async fn halt(&self, files: &GuestFiles, spec: &VmSpec) -> anyhow::Result<()> {
        dhcp_client::stop_all(&files.dir).await?;
        let ns = self.guest_ns(spec.id);
        if guest::ns_exists(&ns) {
            let ifaces: Vec<String> = (0..spec.nics.len()).map(guest::nic_iface).collect();
            guest::set_links(&ns, &ifaces, false).await?;
        }
        Ok(())
    }

    /// Whether every DHCP client the guest should have runs.
    pub(crate) fn clients_running(&self, files: &GuestFiles, spec: &VmSpec) -> bool {
        self.config.dhcp_timeout_secs == 0
            || (0..spec.nics.len())
                .all(|i| dhcp_client::running_pid(&files.pid_file(&guest::nic_iface(i))).is_some())
    }
}

/// What a booting guest prints before its NICs report (the QEMU test
/// guest's first markers, with what a namespace has of them).
fn boot_markers(spec: &VmSpec) -> Vec<String> {
    vec![
        "TESTGUEST BOOTED".to_owned(),
        format!("TESTGUEST NAME={}", spec.name),
        format!("TESTGUEST UUID={}", spec.id),
        format!("TESTGUEST HOSTNAME={}", spec.hostname),
        format!("TESTGUEST AZ={}", spec.availability_zone),
        format!("TESTGUEST NICS={}", spec.nics.len()),
    ]
}

/// The hostname sent to the DHCP server: what DNS accepts of it (it is
/// passed as an argument, never through a shell, but dnsmasq refuses
/// odd names anyway).
fn dhcp_hostname(hostname: &str) -> String {
    hostname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(63)
        .collect()
}

fn write_executable(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_sent_to_dhcp_keep_only_what_dns_accepts() {
        assert_eq!(dhcp_hostname("web 1;rm -rf"), "web1rm-rf");
        assert_eq!(dhcp_hostname(&"a".repeat(80)).len(), 63);
    }
}
