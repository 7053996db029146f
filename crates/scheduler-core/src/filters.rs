//! Filters: each says whether a host can take the request, and why not.

use crate::host::{GroupPolicy, HostState, RequestSpec};
use crate::numa::{NumaRequest, fit_numa};
use cloud_driver::NumaPlacement;

/// Why a filter removed a host.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    /// Short reason (`down`, `needs 4096 MiB`).
    pub reason: String,
    /// For resource filters: how much the host has free (to report the best).
    pub free: Option<i64>,
}

impl Rejection {
    fn because(reason: impl Into<String>) -> Self {
        Rejection {
            reason: reason.into(),
            free: None,
        }
    }
}

/// A filter: a name and a pure function. A passing NUMA filter also
/// returns the placement it found.
#[derive(Clone, Copy)]
pub struct Filter {
    /// Nova's name for it.
    pub name: &'static str,
    /// The check.
    pub check: fn(&Ctx, &HostState) -> Result<Option<NumaPlacement>, Rejection>,
}

/// Per-request data computed once for all hosts.
pub struct Ctx<'a> {
    /// The request.
    pub spec: &'a RequestSpec,
    /// Its NUMA needs.
    pub numa: Option<NumaRequest>,
}

fn compute(_: &Ctx, h: &HostState) -> Result<Option<NumaPlacement>, Rejection> {
    if !h.enabled {
        Err(Rejection::because("disabled"))
    } else if h.forced_down {
        Err(Rejection::because("forced down"))
    } else if !h.up {
        Err(Rejection::because("down"))
    } else {
        Ok(None)
    }
}

fn retry(c: &Ctx, h: &HostState) -> Result<Option<NumaPlacement>, Rejection> {
    if c.spec.ignore_hosts.contains(&h.host) {
        Err(Rejection::because("already failed this build"))
    } else {
        Ok(None)
    }
}

fn availability_zone(c: &Ctx, h: &HostState) -> Result<Option<NumaPlacement>, Rejection> {
    match &c.spec.availability_zone {
        Some(z) if *z != h.availability_zone => Err(Rejection::because(format!(
            "in zone {}, not {z}",
            h.availability_zone
        ))),
        _ => Ok(None),
    }
}

fn resource(need: i64, free: i64, unit: &str) -> Result<Option<NumaPlacement>, Rejection> {
    if free >= need {
        Ok(None)
    } else {
        Err(Rejection {
            reason: format!("needs {need} {unit}"),
            free: Some(free),
        })
    }
}

fn ram(c: &Ctx, h: &HostState) -> Result<Option<NumaPlacement>, Rejection> {
    resource(c.spec.memory_mb, h.memory_mb.free(), "MiB")
}

fn core(c: &Ctx, h: &HostState) -> Result<Option<NumaPlacement>, Rejection> {
    resource(c.spec.vcpus, h.vcpu.free(), "vCPU(s)")
}

fn disk(c: &Ctx, h: &HostState) -> Result<Option<NumaPlacement>, Rejection> {
    resource(c.spec.disk_gb, h.disk_gb.free(), "GiB")
}

fn image_properties(c: &Ctx, h: &HostState) -> Result<Option<NumaPlacement>, Rejection> {
    let props = &c.spec.image_properties;
    if let Some(arch) = props.get("architecture") {
        let norm = |a: &str| match a.to_ascii_lowercase().as_str() {
            "amd64" | "x86_64" | "x64" => "x86_64".to_owned(),
            other => other.to_owned(),
        };
        if norm(arch) != norm(&h.cpu_arch) {
            return Err(Rejection::because(format!(
                "image wants architecture {arch}, host is {}",
                h.cpu_arch
            )));
        }
    }
    if let Some(hv) = props
        .get("img_hv_type")
        .or_else(|| props.get("hypervisor_type"))
    {
        let want = hv.to_ascii_lowercase();
        let have = h.hypervisor_type.to_ascii_lowercase();
        let compatible =
            want == have || (want == "kvm" && have == "qemu") || (want == "qemu" && have == "kvm");
        if !compatible {
            return Err(Rejection::because(format!(
                "image wants hypervisor {hv}, host runs {}",
                h.hypervisor_type
            )));
        }
    }
    Ok(None)
}

fn group_affinity(c: &Ctx, h: &HostState) -> Result<Option<NumaPlacement>, Rejection> {
    match &c.spec.group {
        Some(g) if g.policy == GroupPolicy::Affinity => {
            if g.member_hosts.is_empty() || g.member_hosts.contains(&h.host) {
                Ok(None)
            } else {
                Err(Rejection::because(format!(
                    "affinity: group members are on {}",
                    g.member_hosts.join(", ")
                )))
            }
        }
        _ => Ok(None),
    }
}

fn group_anti_affinity(c: &Ctx, h: &HostState) -> Result<Option<NumaPlacement>, Rejection> {
    match &c.spec.group {
        Some(g) if g.policy == GroupPolicy::AntiAffinity && g.member_hosts.contains(&h.host) => {
            Err(Rejection::because(
                "anti-affinity: a group member is already on it",
            ))
        }
        _ => Ok(None),
    }
}

fn numa_topology(c: &Ctx, h: &HostState) -> Result<Option<NumaPlacement>, Rejection> {
    match &c.numa {
        None => Ok(None),
        Some(req) => fit_numa(req, h).map(Some).map_err(Rejection::because),
    }
}

/// The filters, in the order they run: cheap checks first, NUMA last.
pub const FILTERS: &[Filter] = &[
    Filter {
        name: "ComputeFilter",
        check: compute,
    },
    Filter {
        name: "RetryFilter",
        check: retry,
    },
    Filter {
        name: "AvailabilityZoneFilter",
        check: availability_zone,
    },
    Filter {
        name: "RamFilter",
        check: ram,
    },
    Filter {
        name: "CoreFilter",
        check: core,
    },
    Filter {
        name: "DiskFilter",
        check: disk,
    },
    Filter {
        name: "ImagePropertiesFilter",
        check: image_properties,
    },
    Filter {
        name: "ServerGroupAffinityFilter",
        check: group_affinity,
    },
    Filter {
        name: "ServerGroupAntiAffinityFilter",
        check: group_anti_affinity,
    },
    Filter {
        name: "NUMATopologyFilter",
        check: numa_topology,
    },
];
