//! Filters: each says whether one host can take the request and, if not,
//! why. Reasons are plain data (no strings), so rejecting 10,000 hosts
//! allocates nothing; the words come only when a `NoValidHost` is shown.

use crate::host::HostState;
use crate::numa_fit::{NumaReject, check_numa, fit_numa};
use crate::numa_request::{InvalidRequest, NumaRequest};
use crate::request::{GroupPolicy, RequestSpec};
use cloud_driver::NumaPlacement;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A resource class checked by the resource filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Resource {
    /// VCPU.
    Vcpu,
    /// MEMORY_MB.
    MemoryMb,
    /// DISK_GB.
    DiskGb,
}

impl Resource {
    /// The unit shown in messages.
    pub fn unit(self) -> &'static str {
        match self {
            Resource::Vcpu => "vCPU(s)",
            Resource::MemoryMb => "MiB",
            Resource::DiskGb => "GiB",
        }
    }
}

/// Why a filter removed a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reject {
    /// The compute service is disabled.
    Disabled,
    /// The compute service is forced down.
    ForcedDown,
    /// No recent heartbeat.
    Down,
    /// The host already failed this build.
    AlreadyFailed,
    /// The host is in another availability zone.
    OtherZone,
    /// The request names another host (`zone:host`).
    NotRequestedHost,
    /// Not enough of a resource.
    Short {
        /// Which resource.
        resource: Resource,
        /// What the request needs.
        need: i64,
        /// What the host has free.
        free: i64,
    },
    /// The image needs another CPU architecture.
    Architecture,
    /// The image needs another hypervisor type.
    HypervisorType,
    /// Hard affinity: the group's members are elsewhere.
    NotWithGroup,
    /// Hard anti-affinity: a group member is already there.
    GroupMemberThere,
    /// The NUMA topology cannot take the request.
    Numa(NumaReject),
}

impl Reject {
    /// The same rejection without the host's own amount: hosts removed for
    /// the same kind of reason share this key when failures are summed up.
    pub fn kind(self) -> Self {
        match self {
            Reject::Short { resource, need, .. } => Reject::Short {
                resource,
                need,
                free: 0,
            },
            Reject::Numa(n) => Reject::Numa(n.kind()),
            other => other,
        }
    }

    /// The host's own amount (free resource, best NUMA cell), if any.
    pub fn amount(self) -> Option<i64> {
        match self {
            Reject::Short { free, .. } => Some(free),
            Reject::Numa(n) => Some(i64::try_from(n.best()).unwrap_or(i64::MAX)),
            _ => None,
        }
    }
}

/// The filters, in the order they run: cheap checks first, NUMA last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FilterKind {
    /// Service enabled, up, not forced down.
    Compute,
    /// Not a host that already failed this build.
    Retry,
    /// In the requested zone (and the requested host, if any).
    AvailabilityZone,
    /// Enough free RAM.
    Ram,
    /// Enough free vCPUs.
    Core,
    /// Enough free disk.
    Disk,
    /// Image architecture and hypervisor type.
    ImageProperties,
    /// Hard affinity.
    ServerGroupAffinity,
    /// Hard anti-affinity.
    ServerGroupAntiAffinity,
    /// NUMA topology, pinning and huge pages.
    NumaTopology,
}

impl FilterKind {
    /// Every filter, in the order they run.
    pub const ALL: [FilterKind; 10] = [
        FilterKind::Compute,
        FilterKind::Retry,
        FilterKind::AvailabilityZone,
        FilterKind::Ram,
        FilterKind::Core,
        FilterKind::Disk,
        FilterKind::ImageProperties,
        FilterKind::ServerGroupAffinity,
        FilterKind::ServerGroupAntiAffinity,
        FilterKind::NumaTopology,
    ];

    /// Nova's name for it, as shown in `NoValidHost`.
    pub fn name(self) -> &'static str {
        match self {
            FilterKind::Compute => "ComputeFilter",
            FilterKind::Retry => "RetryFilter",
            FilterKind::AvailabilityZone => "AvailabilityZoneFilter",
            FilterKind::Ram => "RamFilter",
            FilterKind::Core => "CoreFilter",
            FilterKind::Disk => "DiskFilter",
            FilterKind::ImageProperties => "ImagePropertiesFilter",
            FilterKind::ServerGroupAffinity => "ServerGroupAffinityFilter",
            FilterKind::ServerGroupAntiAffinity => "ServerGroupAntiAffinityFilter",
            FilterKind::NumaTopology => "NUMATopologyFilter",
        }
    }
}

/// A request read once for filtering many hosts: NUMA settings parsed,
/// image properties and zone looked up, group members sorted for binary
/// lookup. Build it with [`Prepared::new`] and pass it to every filter.
#[derive(Clone, Debug)]
pub struct Prepared<'a> {
    /// The request.
    pub spec: &'a RequestSpec,
    /// Its NUMA needs, if any.
    pub numa: Option<NumaRequest>,
    zone: Option<&'a str>,
    forced_host: Option<&'a str>,
    arch: Option<&'a str>,
    hypervisor: Option<&'a str>,
    members: HashMap<&'a str, usize>,
}

impl<'a> Prepared<'a> {
    /// Reads `spec`; fails when its settings are malformed.
    pub fn new(spec: &'a RequestSpec) -> Result<Self, InvalidRequest> {
        let numa = NumaRequest::from_spec(spec)?;
        // `zone`, `zone:host`, `zone:host:node` or `:host`.
        let (zone, forced_host) = match spec.availability_zone.as_deref().map(str::trim) {
            None | Some("") => (None, None),
            Some(z) => {
                let mut parts = z.splitn(3, ':');
                let zone = parts.next().filter(|s| !s.is_empty());
                (zone, parts.next().filter(|s| !s.is_empty()))
            }
        };
        let props = &spec.image_properties;
        let mut members: HashMap<&str, usize> = HashMap::new();
        for m in spec.group.iter().flat_map(|g| &g.member_hosts) {
            *members.entry(m.as_str()).or_default() += 1;
        }
        Ok(Prepared {
            spec,
            numa,
            zone,
            forced_host,
            arch: props.get("architecture").map(String::as_str),
            hypervisor: props
                .get("img_hv_type")
                .or_else(|| props.get("hypervisor_type"))
                .map(String::as_str),
            members,
        })
    }

    /// The requested zone, without any `:host` suffix.
    pub fn zone(&self) -> Option<&'a str> {
        self.zone
    }

    /// The host named by `zone:host`, if any.
    pub fn forced_host(&self) -> Option<&'a str> {
        self.forced_host
    }

    /// The image's `architecture`.
    pub fn arch(&self) -> Option<&'a str> {
        self.arch
    }

    /// The image's `img_hv_type` (or legacy `hypervisor_type`).
    pub fn hypervisor(&self) -> Option<&'a str> {
        self.hypervisor
    }

    /// How many other group members run on `host`.
    pub fn members_on(&self, host: &str) -> usize {
        self.members.get(host).copied().unwrap_or(0)
    }

    /// The distinct hosts of the other group members, sorted.
    pub fn member_hosts(&self) -> Vec<&'a str> {
        let mut hosts: Vec<&str> = self.members.keys().copied().collect();
        hosts.sort_unstable();
        hosts
    }

    fn policy(&self) -> Option<GroupPolicy> {
        self.spec.group.as_ref().map(|g| g.policy)
    }
}

/// Runs every filter on `host` in order, stopping at the first that
/// removes it. On success, returns the NUMA placement (if the request
/// needs one).
pub fn filter_host(
    p: &Prepared,
    host: &HostState,
) -> Result<Option<NumaPlacement>, (FilterKind, Reject)> {
    cheap_filters(p, host)?;
    numa_topology_filter(p, host).map_err(tag(FilterKind::NumaTopology))
}

/// [`filter_host`] without building the NUMA placement: what runs on every
/// host (the placement is built for the chosen few only).
pub fn host_passes(p: &Prepared, host: &HostState) -> Result<(), (FilterKind, Reject)> {
    cheap_filters(p, host)?;
    match &p.numa {
        None => Ok(()),
        Some(req) => check_numa(req, host)
            .map(|_| ())
            .map_err(|r| (FilterKind::NumaTopology, Reject::Numa(r))),
    }
}

/// Every filter but NUMA, cheapest first.
fn cheap_filters(p: &Prepared, host: &HostState) -> Result<(), (FilterKind, Reject)> {
    compute_filter(p, host).map_err(tag(FilterKind::Compute))?;
    retry_filter(p, host).map_err(tag(FilterKind::Retry))?;
    availability_zone_filter(p, host).map_err(tag(FilterKind::AvailabilityZone))?;
    ram_filter(p, host).map_err(tag(FilterKind::Ram))?;
    core_filter(p, host).map_err(tag(FilterKind::Core))?;
    disk_filter(p, host).map_err(tag(FilterKind::Disk))?;
    image_properties_filter(p, host).map_err(tag(FilterKind::ImageProperties))?;
    server_group_affinity_filter(p, host).map_err(tag(FilterKind::ServerGroupAffinity))?;
    server_group_anti_affinity_filter(p, host).map_err(tag(FilterKind::ServerGroupAntiAffinity))
}

fn tag(kind: FilterKind) -> impl Fn(Reject) -> (FilterKind, Reject) {
    move |r| (kind, r)
}

/// ComputeFilter: the service is enabled, not forced down and alive.
pub fn compute_filter(_: &Prepared, h: &HostState) -> Result<(), Reject> {
    if !h.enabled {
        Err(Reject::Disabled)
    } else if h.forced_down {
        Err(Reject::ForcedDown)
    } else if !h.up {
        Err(Reject::Down)
    } else {
        Ok(())
    }
}

/// RetryFilter: not a host that already failed this build.
pub fn retry_filter(p: &Prepared, h: &HostState) -> Result<(), Reject> {
    if p.spec.ignore_hosts.contains(&h.host) {
        Err(Reject::AlreadyFailed)
    } else {
        Ok(())
    }
}

/// AvailabilityZoneFilter: in the requested zone, and the requested host
/// when the zone names one (`zone:host`).
pub fn availability_zone_filter(p: &Prepared, h: &HostState) -> Result<(), Reject> {
    if p.zone.is_some_and(|z| z != h.availability_zone) {
        Err(Reject::OtherZone)
    } else if p.forced_host.is_some_and(|f| f != h.host) {
        Err(Reject::NotRequestedHost)
    } else {
        Ok(())
    }
}

fn enough(resource: Resource, need: i64, free: i64) -> Result<(), Reject> {
    if need <= 0 || free >= need {
        Ok(())
    } else {
        Err(Reject::Short {
            resource,
            need,
            free,
        })
    }
}

/// RamFilter: enough MEMORY_MB after reserved and overcommit.
pub fn ram_filter(p: &Prepared, h: &HostState) -> Result<(), Reject> {
    enough(Resource::MemoryMb, p.spec.memory_mb, h.memory_mb.free())
}

/// CoreFilter: enough VCPU after reserved and overcommit.
pub fn core_filter(p: &Prepared, h: &HostState) -> Result<(), Reject> {
    enough(Resource::Vcpu, p.spec.vcpus, h.vcpu.free())
}

/// DiskFilter: enough DISK_GB after reserved and overcommit.
pub fn disk_filter(p: &Prepared, h: &HostState) -> Result<(), Reject> {
    enough(Resource::DiskGb, p.spec.disk_gb, h.disk_gb.free())
}

/// Canonical architecture names, as Nova canonicalises them.
fn canonical_arch(arch: &str) -> &str {
    const ALIASES: &[(&str, &str)] = &[
        ("amd64", "x86_64"),
        ("x86-64", "x86_64"),
        ("x64", "x86_64"),
        ("i386", "i686"),
        ("i486", "i686"),
        ("i586", "i686"),
        ("x86", "i686"),
        ("x86_32", "i686"),
        ("ia32", "i686"),
        ("arm64", "aarch64"),
        ("armhf", "armv7l"),
        ("ppc64el", "ppc64le"),
    ];
    let arch = arch.trim();
    ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(arch))
        .map_or(arch, |(_, canonical)| canonical)
}

/// Whether a host of hypervisor type `have` runs images that ask for
/// `want`. QEMU and KVM are interchangeable: libvirt reports `QEMU` for
/// both, so the snapshot cannot tell a KVM-capable host apart.
fn hypervisor_compatible(want: &str, have: &str) -> bool {
    let qemu_like = |s: &str| s.eq_ignore_ascii_case("qemu") || s.eq_ignore_ascii_case("kvm");
    want.trim().eq_ignore_ascii_case(have) || (qemu_like(want.trim()) && qemu_like(have))
}

/// ImagePropertiesFilter: the image's `architecture` matches the host's
/// CPU, and its `img_hv_type` (or legacy `hypervisor_type`) the host's
/// hypervisor.
pub fn image_properties_filter(p: &Prepared, h: &HostState) -> Result<(), Reject> {
    if let Some(arch) = p.arch
        && !canonical_arch(arch).eq_ignore_ascii_case(canonical_arch(&h.cpu_arch))
    {
        return Err(Reject::Architecture);
    }
    if let Some(hv) = p.hypervisor
        && !hypervisor_compatible(hv, &h.hypervisor_type)
    {
        return Err(Reject::HypervisorType);
    }
    Ok(())
}

/// ServerGroupAffinityFilter: with hard affinity, the host of the other
/// members (any host while the group is empty).
pub fn server_group_affinity_filter(p: &Prepared, h: &HostState) -> Result<(), Reject> {
    if p.policy() == Some(GroupPolicy::Affinity)
        && !p.members.is_empty()
        && p.members_on(&h.host) == 0
    {
        Err(Reject::NotWithGroup)
    } else {
        Ok(())
    }
}

/// ServerGroupAntiAffinityFilter: with hard anti-affinity, a host no
/// other member runs on. (Soft policies are weighers.)
pub fn server_group_anti_affinity_filter(p: &Prepared, h: &HostState) -> Result<(), Reject> {
    if p.policy() == Some(GroupPolicy::AntiAffinity) && p.members_on(&h.host) > 0 {
        Err(Reject::GroupMemberThere)
    } else {
        Ok(())
    }
}

/// NUMATopologyFilter: the guest's cells fit distinct host cells, with
/// free CPUs to pin and free huge pages as asked. Returns the placement.
pub fn numa_topology_filter(p: &Prepared, h: &HostState) -> Result<Option<NumaPlacement>, Reject> {
    match &p.numa {
        None => Ok(None),
        Some(req) => fit_numa(req, h).map(Some).map_err(Reject::Numa),
    }
}

#[cfg(test)]
mod tests;
