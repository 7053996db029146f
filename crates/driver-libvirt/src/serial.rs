//! Serial consoles on libvirt: each guest's first serial port is a raw TCP
//! server of QEMU (`<serial type='tcp'>`, mode bind) on the configured
//! address, with a port of the configured range that stays in the domain's
//! definition, so hard reboots and agent restarts keep it. The port's
//! `<log>` keeps writing `console.log`, so `console log` works as before.
//!
//! Nova's `[serial_console]` settings: `proxyclient_address` (where the
//! console proxy reaches this host's guests) and `port_range`. The port is
//! read back from the live domain XML when a console is asked for, so the
//! definition is the only record of it.

use crate::LibvirtDriver;
use crate::connection::lookup;
use crate::domain_xml::DomainDef;
use crate::xml::Element;
use anyhow::{Context, anyhow, bail};
use cloud_driver::{DriverError, Op, SerialEndpoint};
use cloud_model::InstanceId;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// `[driver.serial_console]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SerialConsoleConfig {
    /// Give new guests a TCP serial port (false: the console log only, as
    /// before serial consoles existed).
    pub enabled: bool,
    /// The address QEMU listens on for serial consoles, which the console
    /// proxy (the API) connects to (Nova's `proxyclient_address`). Keep it
    /// on a network only the control plane reaches: the port is a raw,
    /// unauthenticated console.
    pub proxyclient_address: String,
    /// Ports handed to guests, `"FIRST:LAST"` (Nova's `port_range`).
    pub port_range: String,
}

impl Default for SerialConsoleConfig {
    fn default() -> Self {
        SerialConsoleConfig {
            enabled: true,
            proxyclient_address: "127.0.0.1".to_owned(),
            port_range: "10000:20000".to_owned(),
        }
    }
}

impl SerialConsoleConfig {
    /// The configured port range, checked.
    pub fn ports(&self) -> anyhow::Result<(u16, u16)> {
        let (a, b) = self
            .port_range
            .split_once(':')
            .ok_or_else(|| anyhow!("serial_console.port_range must be FIRST:LAST"))?;
        let first: u16 = a.trim().parse().context("serial_console.port_range")?;
        let last: u16 = b.trim().parse().context("serial_console.port_range")?;
        if first == 0 || first > last {
            bail!("serial_console.port_range {first}:{last} is empty");
        }
        Ok((first, last))
    }
}

/// A guest's serial port as a TCP server of QEMU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialTcp {
    /// Listen address.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// How long a port handed out stays reserved in this process, covering
/// the time until its domain is defined (then the definitions show it).
const RESERVATION: Duration = Duration::from_secs(300);

/// Ports handed out recently, so two guests spawned at once never get the
/// same one (process-wide: every driver of the process shares the host).
fn reserved() -> &'static Mutex<HashMap<u16, Instant>> {
    static RESERVED: OnceLock<Mutex<HashMap<u16, Instant>>> = OnceLock::new();
    RESERVED.get_or_init(Default::default)
}

impl DomainDef {
    /// The `<serial>` (`name` = "serial") or `<console>` device: the
    /// console log file, or a TCP server whose output is also logged.
    pub(crate) fn serial_device(&self, name: &str) -> Element {
        let log = self.console_log.display().to_string();
        let target = match name {
            "console" => Element::new("target")
                .attr("type", "serial")
                .attr("port", 0),
            _ => Element::new("target").attr("port", 0),
        };
        match &self.serial_tcp {
            None => Element::new(name)
                .attr("type", "file")
                .child(
                    Element::new("source")
                        .attr("path", &log)
                        .attr("append", "on"),
                )
                .child(target),
            Some(tcp) => Element::new(name)
                .attr("type", "tcp")
                .child(
                    Element::new("source")
                        .attr("mode", "bind")
                        .attr("host", &tcp.host)
                        .attr("service", tcp.port),
                )
                .child(Element::new("protocol").attr("type", "raw"))
                .child(Element::new("log").attr("file", &log).attr("append", "on"))
                .child(target),
        }
    }
}

/// Gives `def` a TCP serial port when serial consoles are enabled: the one
/// its domain already has (a redefinition keeps it), else a free port of
/// the range.
pub(crate) async fn assign(drv: &LibvirtDriver, def: &mut DomainDef) -> anyhow::Result<()> {
    let config = drv.config.serial_console.clone();
    if !config.enabled {
        return Ok(());
    }
    let (first, last) = config.ports()?;
    let id = def.uuid;
    let (own, used) = drv
        .virt
        .run(move |c| {
            let own = match lookup(c, id)? {
                Some(d) => tcp_serial(&d.xml_desc(0)?),
                None => None,
            };
            let mut used = HashSet::new();
            for d in c.list_all_domains(0)? {
                // Undefined between listing and reading: not in the way.
                if let Ok(xml) = d.xml_desc(0)
                    && let Some(tcp) = tcp_serial(&xml)
                {
                    used.insert(tcp.port);
                }
            }
            Ok((own, used))
        })
        .await?;
    if let Some(tcp) = own {
        def.serial_tcp = Some(tcp);
        return Ok(());
    }
    let port = pick(&config.proxyclient_address, first, last, &used)?;
    def.serial_tcp = Some(SerialTcp {
        host: config.proxyclient_address,
        port,
    });
    Ok(())
}

/// The lowest port of `first..=last` no domain uses, not reserved, and
/// free to bind on `addr` now; reserved for [`RESERVATION`].
fn pick(addr: &str, first: u16, last: u16, used: &HashSet<u16>) -> anyhow::Result<u16> {
    let mut reserved = reserved().lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    reserved.retain(|_, at| now.duration_since(*at) < RESERVATION);
    for port in first..=last {
        if used.contains(&port) || reserved.contains_key(&port) {
            continue;
        }
        if std::net::TcpListener::bind((addr, port)).is_ok() {
            reserved.insert(port, now);
            return Ok(port);
        }
    }
    bail!("no free serial console port in {first}:{last} on {addr}")
}

/// Where VM `id`'s serial console is served: read from its live domain.
pub(crate) async fn endpoint(
    drv: &LibvirtDriver,
    id: InstanceId,
) -> Result<SerialEndpoint, DriverError> {
    let op = Op::SerialConsole;
    let found = drv
        .virt
        .run(move |c| {
            let Some(d) = lookup(c, id)? else {
                return Ok(None);
            };
            Ok(Some((d.is_active()?, tcp_serial(&d.xml_desc(0)?))))
        })
        .await
        .map_err(|e| DriverError::backend(op, id, e))?;
    match found {
        None => Err(DriverError::NotFound(id)),
        Some((false, _)) => Err(DriverError::InvalidState {
            current: cloud_model::instance::PowerState::Shutdown,
            requested: op,
        }),
        Some((true, None)) => Err(DriverError::backend(
            op,
            id,
            anyhow!("the domain has no TCP serial port (serial consoles are off on this host)"),
        )),
        Some((true, Some(tcp))) => Ok(SerialEndpoint {
            host: tcp.host,
            port: tcp.port,
        }),
    }
}

/// The TCP serial port of a domain's XML (its first `<serial type='tcp'>`
/// in bind mode), if it has one.
pub(crate) fn tcp_serial(xml: &str) -> Option<SerialTcp> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let serial = doc.descendants().find(|n| {
        n.has_tag_name("serial")
            && n.attribute("type") == Some("tcp")
            && n.parent().is_some_and(|p| p.has_tag_name("devices"))
    })?;
    let source = serial
        .children()
        .find(|n| n.has_tag_name("source") && n.attribute("mode") == Some("bind"))?;
    Some(SerialTcp {
        host: source.attribute("host")?.to_owned(),
        port: source.attribute("service")?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_read_back_from_the_domain_xml() {
        let xml = "<domain><devices><serial type='tcp'><source mode='bind' host='10.0.0.5' \
                   service='10042'/><protocol type='raw'/></serial></devices></domain>";
        assert_eq!(
            tcp_serial(xml),
            Some(SerialTcp {
                host: "10.0.0.5".into(),
                port: 10042
            })
        );
        let file = "<domain><devices><serial type='file'><source path='/x'/></serial>\
                    </devices></domain>";
        assert_eq!(tcp_serial(file), None);
    }

    #[test]
    fn the_serial_port_is_a_logged_tcp_server_libvirt_accepts() {
        let ctx = crate::domain_xml::BuildContext {
            virt_type: crate::config::VirtType::Qemu,
            cpu_mode: crate::config::CpuMode::None,
            root_disk: "/i/x/disk".into(),
            config_drive: None,
            console_log: "/i/x/console.log".into(),
            kernel: None,
            nic_devices: Vec::new(),
            owner: "/i".into(),
        };
        let mut def = DomainDef::from_spec(&crate::testutil::spec(), &ctx);
        def.serial_tcp = Some(SerialTcp {
            host: "127.0.0.1".into(),
            port: 10007,
        });
        let xml = def.to_xml();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &xml).unwrap();
        let out = std::process::Command::new("virt-xml-validate")
            .arg(file.path())
            .arg("domain")
            .output()
            .expect("virt-xml-validate (libvirt-clients + libxml2-utils) must be installed");
        assert!(out.status.success(), "libvirt rejects: {out:?}\n{xml}");
        assert_eq!(tcp_serial(&xml), def.serial_tcp);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        for name in ["serial", "console"] {
            let dev = doc.descendants().find(|n| n.has_tag_name(name)).unwrap();
            assert_eq!(dev.attribute("type"), Some("tcp"), "{name}");
            let log = dev.children().find(|n| n.has_tag_name("log")).unwrap();
            assert_eq!(log.attribute("file"), Some("/i/x/console.log"), "{name}");
            assert_eq!(log.attribute("append"), Some("on"), "{name}");
        }
    }

    #[test]
    fn ranges() {
        let mut c = SerialConsoleConfig::default();
        assert_eq!(c.ports().unwrap(), (10000, 20000));
        for bad in ["20:10", "0:5", "x", "1-5"] {
            c.port_range = bad.into();
            assert!(c.ports().is_err(), "{bad}");
        }
    }

    #[test]
    fn picked_ports_skip_used_and_reserved_ones() {
        // A range of its own, so parallel tests do not share reservations.
        let used: HashSet<u16> = [41000].into();
        let a = pick("127.0.0.1", 41000, 41010, &used).unwrap();
        let b = pick("127.0.0.1", 41000, 41010, &used).unwrap();
        assert_ne!(a, 41000);
        assert_ne!(a, b);
        assert!(pick("127.0.0.1", 41000, 41000, &used).is_err());
    }
}
