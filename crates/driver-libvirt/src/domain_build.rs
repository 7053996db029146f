//! Building a [`DomainDef`] from a [`VmSpec`]: flavor, NUMA placement,
//! image properties (direct kernel boot) and the host paths of the
//! instance's files.

use crate::config::{CpuMode, VirtType};
use crate::domain_xml::{
    CpuDef, DirectBoot, DiskDef, DomainDef, GuestCell, HugePages, InterfaceDef, NumaTune, OsDef,
};
use crate::metadata::InstanceMetadata;
use cloud_driver::VmSpec;
use cloud_model::InstanceId;
use std::path::PathBuf;

/// Host paths and choices the spec alone does not give.
#[derive(Clone, Debug)]
pub struct BuildContext {
    /// Domain type.
    pub virt_type: VirtType,
    /// CPU mode after defaults.
    pub cpu_mode: CpuMode,
    /// The instance's qcow2 overlay.
    pub root_disk: PathBuf,
    /// The config drive ISO.
    pub config_drive: Option<PathBuf>,
    /// The console log.
    pub console_log: PathBuf,
    /// Kernel and ramdisk files when the image asks for direct boot.
    pub kernel: Option<(PathBuf, Option<PathBuf>)>,
    /// Bridge and tap name for each NIC, in `spec.nics` order.
    pub nic_devices: Vec<(String, String)>,
    /// The building driver's mark (see [`crate::metadata`]).
    pub owner: String,
}

/// The domain name of an instance.
pub fn domain_name(id: InstanceId) -> String {
    format!("instance-{id}")
}

/// Nova's default kernel command line for AKI/ARI boots.
pub const DEFAULT_CMDLINE: &str = "root=/dev/vda console=tty0 console=ttyS0";

impl DomainDef {
    /// Builds the definition of `spec`'s guest.
    pub fn from_spec(spec: &VmSpec, ctx: &BuildContext) -> Self {
        let flavor = &spec.flavor;
        let vcpus = flavor.vcpus.max(1);
        let (cells, tune, hugepages) = match &spec.numa {
            Some(numa) => {
                let cells = numa
                    .cells
                    .iter()
                    .map(|c| GuestCell {
                        id: c.guest_cell,
                        cpus: c.guest_cpus.clone(),
                        memory_mb: c.memory_mb,
                    })
                    .collect::<Vec<_>>();
                let tune = NumaTune {
                    memnodes: numa
                        .cells
                        .iter()
                        .map(|c| (c.guest_cell, c.host_cell))
                        .collect(),
                    vcpupins: numa
                        .cells
                        .iter()
                        .flat_map(|c| {
                            c.guest_cpus
                                .iter()
                                .copied()
                                .zip(c.host_cpus.iter().copied())
                        })
                        .collect(),
                };
                // 4 KiB is "small pages": nothing to back.
                let huge = numa
                    .page_size_kb
                    .filter(|kb| *kb > 4)
                    .map(|size_kb| HugePages {
                        size_kb,
                        cells: numa.cells.iter().map(|c| c.guest_cell).collect(),
                    });
                (cells, Some(tune), huge)
            }
            None => (Vec::new(), None, None),
        };
        let mut disks = vec![DiskDef {
            source: ctx.root_disk.clone(),
            format: "qcow2",
            device: "disk",
            target: "vda",
            bus: "virtio",
            readonly: false,
        }];
        if let Some(cd) = &ctx.config_drive {
            disks.push(DiskDef {
                source: cd.clone(),
                format: "raw",
                device: "cdrom",
                target: "hda",
                bus: "ide",
                readonly: true,
            });
        }
        let interfaces = spec
            .nics
            .iter()
            .zip(&ctx.nic_devices)
            .map(|(nic, (bridge, tap))| InterfaceDef {
                mac: nic.mac.to_ascii_lowercase(),
                bridge: bridge.clone(),
                tap: tap.clone(),
                mtu: nic.mtu,
            })
            .collect();
        let arch = match spec
            .image
            .properties
            .get("architecture")
            .map(String::as_str)
        {
            Some("i686" | "i386") => "i686",
            _ => "x86_64",
        };
        let direct_boot = ctx.kernel.as_ref().map(|(kernel, initrd)| DirectBoot {
            kernel: kernel.clone(),
            initrd: initrd.clone(),
            cmdline: spec
                .image
                .properties
                .get("os_command_line")
                .cloned()
                .unwrap_or_else(|| DEFAULT_CMDLINE.to_string()),
        });
        DomainDef {
            virt_type: ctx.virt_type,
            name: domain_name(spec.id),
            uuid: spec.id,
            metadata: InstanceMetadata::from_spec(spec, &ctx.owner),
            memory_mb: flavor.ram_mb,
            vcpus,
            cpu: CpuDef {
                mode: ctx.cpu_mode,
                topology: topology(vcpus, &flavor.extra_specs),
                cells,
            },
            tune,
            hugepages,
            os: OsDef {
                arch: arch.to_string(),
                machine: "pc".into(),
                direct_boot,
            },
            disks,
            interfaces,
            console_log: ctx.console_log.clone(),
            serial_tcp: None,
        }
    }
}

/// Sockets/cores/threads: the flavor's `hw:cpu_sockets/cores/threads` when
/// they multiply to the vCPU count, else one socket per vCPU (Nova's default).
fn topology(vcpus: u32, extra: &std::collections::BTreeMap<String, String>) -> (u32, u32, u32) {
    let get = |k: &str| extra.get(k).and_then(|v| v.parse::<u32>().ok());
    let (s, c, t) = (
        get("hw:cpu_sockets"),
        get("hw:cpu_cores"),
        get("hw:cpu_threads"),
    );
    if s.is_none() && c.is_none() && t.is_none() {
        return (vcpus, 1, 1);
    }
    let cores = c.unwrap_or(1).max(1);
    let threads = t.unwrap_or(1).max(1);
    let sockets = s.unwrap_or(vcpus / (cores * threads)).max(1);
    if sockets * cores * threads == vcpus {
        (sockets, cores, threads)
    } else {
        (vcpus, 1, 1)
    }
}
