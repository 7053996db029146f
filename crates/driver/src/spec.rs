//! What a driver is told to build, and what it reports back.

use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Everything needed to build one VM. Sent by the conductor over the bus
/// to the compute agent, which passes it to its driver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VmSpec {
    /// Instance uuid (also the libvirt domain uuid).
    pub id: InstanceId,
    /// Server name (display name).
    pub name: String,
    /// Guest hostname (from the name, sanitised).
    pub hostname: String,
    /// Owning project.
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// The flavor the server was booted with.
    pub flavor: FlavorSpec,
    /// The image to boot.
    pub image: ImageSpec,
    /// The kernel image named by the image's `kernel_id` property, for a
    /// direct kernel boot. Carried with its checksums (not just its id) so
    /// the host verifies the kernel it downloads like any image.
    #[serde(default)]
    pub kernel: Option<ImageSpec>,
    /// The ramdisk image named by the image's `ramdisk_id` property (only
    /// used with a kernel).
    #[serde(default)]
    pub ramdisk: Option<ImageSpec>,
    /// One NIC per port, in order.
    pub nics: Vec<NicSpec>,
    /// User data (decoded bytes), put on the config drive.
    pub user_data: Option<Vec<u8>>,
    /// Server metadata, put on the config drive as `meta`.
    pub metadata: BTreeMap<String, String>,
    /// The keypair, if any: `(name, OpenSSH public key)`.
    pub key: Option<(String, String)>,
    /// Availability zone.
    pub availability_zone: String,
    /// Index of this server in a multi-create request.
    pub launch_index: u32,
    /// NUMA placement chosen by the scheduler, if the flavor asks for one.
    pub numa: Option<NumaPlacement>,
}

/// The flavor, as snapshotted on the instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlavorSpec {
    /// Flavor id.
    pub id: String,
    /// Flavor name.
    pub name: String,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub ram_mb: u64,
    /// Root disk in GiB (0: the image's virtual size).
    pub disk_gb: u64,
    /// Swap in MiB.
    pub swap_mb: u64,
    /// Ephemeral disk in GiB.
    pub ephemeral_gb: u64,
    /// Extra specs (`hw:numa_nodes`, `hw:cpu_policy`, `hw:mem_page_size`...).
    pub extra_specs: BTreeMap<String, String>,
}

/// The image, as recorded by the image API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSpec {
    /// Image id.
    pub id: String,
    /// `qcow2`, `raw`, ... (`aki`/`ari` for kernels and ramdisks).
    pub disk_format: String,
    /// Size in bytes.
    pub size: u64,
    /// MD5 hex, to verify the download.
    pub checksum: String,
    /// SHA-512 hex, to verify the download.
    pub sha512: Option<String>,
    /// Image properties (`architecture`, `hypervisor_type`, `kernel_id`,
    /// `ramdisk_id`, `os_command_line`...).
    pub properties: BTreeMap<String, String>,
}

/// One virtual NIC.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NicSpec {
    /// The port.
    pub port_id: String,
    /// The network (one bridge per network on the host).
    pub network_id: String,
    /// The port's MAC.
    pub mac: String,
    /// The port's fixed IPv4 address, if it has one.
    pub ip: Option<Ipv4Addr>,
    /// Prefix length of the subnet.
    pub prefix: Option<u8>,
    /// The subnet's gateway.
    pub gateway: Option<Ipv4Addr>,
    /// DNS servers of the subnet.
    pub dns: Vec<Ipv4Addr>,
    /// Whether the subnet has DHCP enabled.
    pub dhcp: bool,
    /// Network MTU.
    pub mtu: u32,
}

/// Where the guest's vCPUs and memory go on the host's NUMA cells.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumaPlacement {
    /// One entry per guest NUMA cell.
    pub cells: Vec<NumaCellPlacement>,
    /// Page size for memory backing in KiB (`hw:mem_page_size`), if any.
    pub page_size_kb: Option<u64>,
}

/// One guest NUMA cell's placement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumaCellPlacement {
    /// Guest cell index.
    pub guest_cell: u32,
    /// Host cell it is placed on.
    pub host_cell: u32,
    /// Guest vCPU indexes in this cell.
    pub guest_cpus: Vec<u32>,
    /// Host CPUs pinned to them, in the same order (empty when not pinned).
    pub host_cpus: Vec<u32>,
    /// Memory of this cell in MiB.
    pub memory_mb: u64,
}

/// What a driver reports about one VM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VmInfo {
    /// Instance uuid.
    pub id: InstanceId,
    /// The hypervisor's view of its power.
    pub power_state: PowerState,
}

/// The host's capacity and topology.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostResources {
    /// Logical CPUs usable by guests.
    pub vcpus: u32,
    /// Memory usable by guests, in MiB.
    pub memory_mb: u64,
    /// Disk for instance storage, in GiB.
    pub disk_gb: u64,
    /// NUMA cells (at least one).
    pub numa_cells: Vec<NumaCell>,
    /// `QEMU`, `KVM` or `fake`, as `os-hypervisors` shows it.
    pub hypervisor_type: String,
    /// Hypervisor version as Nova encodes it (major*1_000_000 + minor*1000 + micro).
    pub hypervisor_version: u64,
    /// `x86_64`, ...
    pub cpu_arch: String,
}

/// One host NUMA cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumaCell {
    /// Cell id.
    pub id: u32,
    /// Host CPU ids in the cell.
    pub cpus: Vec<u32>,
    /// Memory in MiB.
    pub memory_mb: u64,
    /// Huge pages: `(page size KiB, total pages)`.
    pub hugepages: Vec<(u64, u64)>,
}
