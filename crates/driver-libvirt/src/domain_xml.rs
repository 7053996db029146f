//! The libvirt domain definition as typed structs, built from a [`VmSpec`]
//! and rendered to XML through the escaping writer in [`crate::xml`].

use crate::config::{CpuMode, VirtType};
use crate::metadata::InstanceMetadata;
use crate::xml::Element;
use cloud_model::InstanceId;
use std::path::PathBuf;

pub use crate::domain_build::{BuildContext, DEFAULT_CMDLINE, domain_name};

/// A domain as we define it: one guest of ours.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainDef {
    /// `kvm` or `qemu`.
    pub virt_type: VirtType,
    /// Domain name, `instance-<uuid>`.
    pub name: String,
    /// Domain uuid = instance id.
    pub uuid: InstanceId,
    /// Our metadata element (marks the domain as ours).
    pub metadata: InstanceMetadata,
    /// Memory in MiB.
    pub memory_mb: u64,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// CPU model, topology and guest NUMA cells.
    pub cpu: CpuDef,
    /// Host NUMA binding and pinning, when the flavor asks for NUMA.
    pub tune: Option<NumaTune>,
    /// Huge page size in KiB, and the guest cells backed by it.
    pub hugepages: Option<HugePages>,
    /// Machine, arch and boot method.
    pub os: OsDef,
    /// Disks in bus order.
    pub disks: Vec<DiskDef>,
    /// NICs in order.
    pub interfaces: Vec<InterfaceDef>,
    /// The serial console log.
    pub console_log: PathBuf,
    /// The serial port as a TCP server (logged to `console_log` too);
    /// `None`: the serial port writes `console_log` only. Set after
    /// building, by `crate::serial::assign`.
    pub serial_tcp: Option<crate::serial::SerialTcp>,
}

/// `<cpu>`: model mode, topology and guest NUMA cells.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuDef {
    /// Model mode.
    pub mode: CpuMode,
    /// Sockets, cores per socket, threads per core.
    pub topology: (u32, u32, u32),
    /// Guest NUMA cells (empty: no NUMA).
    pub cells: Vec<GuestCell>,
}

/// One guest NUMA cell.
#[derive(Clone, Debug, PartialEq)]
pub struct GuestCell {
    /// Cell id.
    pub id: u32,
    /// Guest vCPUs in the cell.
    pub cpus: Vec<u32>,
    /// Memory in MiB.
    pub memory_mb: u64,
}

/// `<numatune>` and `<cputune>`.
#[derive(Clone, Debug, PartialEq)]
pub struct NumaTune {
    /// `(guest cell, host cell)`: where each guest cell's memory lives.
    pub memnodes: Vec<(u32, u32)>,
    /// `(guest vCPU, host CPU)` pins (empty when not pinned).
    pub vcpupins: Vec<(u32, u32)>,
}

/// `<memoryBacking><hugepages>`.
#[derive(Clone, Debug, PartialEq)]
pub struct HugePages {
    /// Page size in KiB.
    pub size_kb: u64,
    /// Guest cells backed by huge pages.
    pub cells: Vec<u32>,
}

/// `<os>`.
#[derive(Clone, Debug, PartialEq)]
pub struct OsDef {
    /// `x86_64` or `i686`.
    pub arch: String,
    /// Machine type; `pc`, so the config drive is an IDE CD-ROM.
    pub machine: String,
    /// Direct kernel boot instead of the disk's bootloader.
    pub direct_boot: Option<DirectBoot>,
}

/// Kernel + ramdisk boot (AKI/ARI images).
#[derive(Clone, Debug, PartialEq)]
pub struct DirectBoot {
    /// The kernel file.
    pub kernel: PathBuf,
    /// The initrd file.
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    pub cmdline: String,
}

/// A disk or CD-ROM backed by a file.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskDef {
    /// The file.
    pub source: PathBuf,
    /// `qcow2` or `raw`.
    pub format: &'static str,
    /// `disk` or `cdrom`.
    pub device: &'static str,
    /// Guest device name (`vda`, `hda`).
    pub target: &'static str,
    /// `virtio` or `ide`.
    pub bus: &'static str,
    /// Read-only.
    pub readonly: bool,
}

/// A virtio NIC on a Linux bridge.
#[derive(Clone, Debug, PartialEq)]
pub struct InterfaceDef {
    /// The port's MAC.
    pub mac: String,
    /// The network's bridge.
    pub bridge: String,
    /// The tap name (from the port id).
    pub tap: String,
    /// MTU (0: the bridge's).
    pub mtu: u32,
}

impl InterfaceDef {
    /// `<interface>`: the same device in a domain definition and in a
    /// hotplug (`virDomainAttachDeviceFlags`).
    pub(crate) fn to_element(&self) -> Element {
        Element::new("interface")
            .attr("type", "bridge")
            .child(Element::new("mac").attr("address", &self.mac))
            .child(Element::new("source").attr("bridge", &self.bridge))
            .child(Element::new("target").attr("dev", &self.tap))
            .child(Element::new("model").attr("type", "virtio"))
            .child_opt((self.mtu > 0).then(|| Element::new("mtu").attr("size", self.mtu)))
    }
}

impl DomainDef {
    /// The domain XML.
    pub fn to_xml(&self) -> String {
        self.to_element().render()
    }

    fn to_element(&self) -> Element {
        let kib = self.memory_mb * 1024;
        Element::new("domain")
            .attr("type", self.virt_type.as_str())
            .child(Element::leaf("name", &self.name))
            .child(Element::leaf("uuid", self.uuid))
            .child(Element::new("metadata").child(self.metadata.to_element()))
            .child(Element::new("memory").attr("unit", "KiB").text(kib))
            .child(Element::new("currentMemory").attr("unit", "KiB").text(kib))
            .child_opt(self.hugepages.as_ref().map(|h| {
                Element::new("memoryBacking").child(
                    Element::new("hugepages").child(
                        Element::new("page")
                            .attr("size", h.size_kb)
                            .attr("unit", "KiB")
                            .attr("nodeset", cpuset(&h.cells)),
                    ),
                )
            }))
            .child(
                Element::new("vcpu")
                    .attr("placement", "static")
                    .text(self.vcpus),
            )
            .child_opt(self.cputune())
            .child_opt(self.numatune())
            .child(self.os_element())
            .child(
                Element::new("features")
                    .child(Element::new("acpi"))
                    .child(Element::new("apic")),
            )
            .child(self.cpu_element())
            .child(
                Element::new("clock")
                    .attr("offset", "utc")
                    .child(
                        Element::new("timer")
                            .attr("name", "pit")
                            .attr("tickpolicy", "delay"),
                    )
                    .child(
                        Element::new("timer")
                            .attr("name", "rtc")
                            .attr("tickpolicy", "catchup"),
                    )
                    .child(
                        Element::new("timer")
                            .attr("name", "hpet")
                            .attr("present", "no"),
                    ),
            )
            .child(Element::leaf("on_poweroff", "destroy"))
            .child(Element::leaf("on_reboot", "restart"))
            .child(Element::leaf("on_crash", "destroy"))
            .child(self.devices())
    }

    fn cputune(&self) -> Option<Element> {
        let tune = self.tune.as_ref().filter(|t| !t.vcpupins.is_empty())?;
        let mut host: Vec<u32> = tune.vcpupins.iter().map(|(_, h)| *h).collect();
        host.sort_unstable();
        host.dedup();
        Some(
            Element::new("cputune")
                .children(tune.vcpupins.iter().map(|(vcpu, cpu)| {
                    Element::new("vcpupin")
                        .attr("vcpu", vcpu)
                        .attr("cpuset", cpu)
                }))
                .child(Element::new("emulatorpin").attr("cpuset", cpuset(&host))),
        )
    }

    fn numatune(&self) -> Option<Element> {
        let tune = self.tune.as_ref()?;
        let mut hosts: Vec<u32> = tune.memnodes.iter().map(|(_, h)| *h).collect();
        hosts.sort_unstable();
        hosts.dedup();
        Some(
            Element::new("numatune")
                .child(
                    Element::new("memory")
                        .attr("mode", "strict")
                        .attr("nodeset", cpuset(&hosts)),
                )
                .children(tune.memnodes.iter().map(|(guest, host)| {
                    Element::new("memnode")
                        .attr("cellid", guest)
                        .attr("mode", "strict")
                        .attr("nodeset", host)
                })),
        )
    }

    fn os_element(&self) -> Element {
        let os = Element::new("os").child(
            Element::new("type")
                .attr("arch", &self.os.arch)
                .attr("machine", &self.os.machine)
                .text("hvm"),
        );
        match &self.os.direct_boot {
            Some(b) => os
                .child(Element::leaf("kernel", b.kernel.display()))
                .child_opt(
                    b.initrd
                        .as_ref()
                        .map(|i| Element::leaf("initrd", i.display())),
                )
                .child(Element::leaf("cmdline", &b.cmdline)),
            None => os.child(Element::new("boot").attr("dev", "hd")),
        }
    }

    fn cpu_element(&self) -> Element {
        let (sockets, cores, threads) = self.cpu.topology;
        let mut cpu = Element::new("cpu").attr_opt("mode", self.cpu.mode.xml_mode());
        if self.cpu.mode == CpuMode::HostModel {
            cpu = cpu.child(Element::new("model").attr("fallback", "allow"));
        }
        cpu = cpu.child(
            Element::new("topology")
                .attr("sockets", sockets)
                .attr("dies", 1)
                .attr("cores", cores)
                .attr("threads", threads),
        );
        if !self.cpu.cells.is_empty() {
            cpu = cpu.child(
                Element::new("numa").children(self.cpu.cells.iter().map(|c| {
                    let cell = Element::new("cell")
                        .attr("id", c.id)
                        .attr("cpus", cpuset(&c.cpus))
                        .attr("memory", c.memory_mb)
                        .attr("unit", "MiB");
                    // Huge pages are shared memory to QEMU; say so per cell.
                    match &self.hugepages {
                        Some(_) => cell.attr("memAccess", "shared"),
                        None => cell,
                    }
                })),
            );
        }
        cpu
    }

    fn devices(&self) -> Element {
        Element::new("devices")
            .children(self.disks.iter().map(|d| {
                Element::new("disk")
                    .attr("type", "file")
                    .attr("device", d.device)
                    .child(
                        Element::new("driver")
                            .attr("name", "qemu")
                            .attr("type", d.format),
                    )
                    .child(Element::new("source").attr("file", d.source.display()))
                    .child(
                        Element::new("target")
                            .attr("dev", d.target)
                            .attr("bus", d.bus),
                    )
                    .child_opt(d.readonly.then(|| Element::new("readonly")))
            }))
            .children(self.interfaces.iter().map(InterfaceDef::to_element))
            .child(self.serial_device("serial"))
            .child(self.serial_device("console"))
            .child(
                Element::new("memballoon")
                    .attr("model", "virtio")
                    .child(Element::new("stats").attr("period", 10)),
            )
    }
}

/// A libvirt cpuset string, ranges folded: `[0,1,2,5]` -> `0-2,5`.
pub fn cpuset(ids: &[u32]) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        let mut end = start;
        while i + 1 < ids.len() && ids[i + 1] == end + 1 {
            i += 1;
            end = ids[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
#[path = "domain_xml_tests.rs"]
mod tests;
