//! Explaining why no host fits: for each filter, in the order they ran,
//! how many hosts it removed and the most useful detail (the best free
//! amount, or which hosts and why). "No valid host was found" alone tells
//! a user nothing.

use crate::filters::{FilterKind, Prepared, Reject};
use crate::numa_fit::NumaReject;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write as _};

/// What one filter removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    /// Nova's name of the filter (`RamFilter`).
    pub filter: String,
    /// Hosts it removed.
    pub hosts: usize,
    /// Why, summed up over those hosts.
    pub detail: String,
}

/// No host can take the request. Its `Display` is the fault message users
/// see, e.g. `No valid host was found: 3 hosts; ComputeFilter removed 1
/// (down: host-c), RamFilter removed 2 (needs 4096 MiB, best has 2048 MiB
/// free)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoValidHost {
    /// Hosts considered.
    pub hosts: usize,
    /// What each filter removed, in the order the filters ran (filters
    /// that removed nothing are left out).
    pub removed: Vec<Removal>,
    /// Set when the request itself is malformed and fits no host at all.
    pub invalid: Option<String>,
}

impl NoValidHost {
    /// A request whose settings no host could ever satisfy.
    pub fn invalid(hosts: usize, why: impl Into<String>) -> Self {
        NoValidHost {
            hosts,
            removed: Vec::new(),
            invalid: Some(why.into()),
        }
    }

    /// How many hosts the filter named `filter` removed.
    pub fn removed_by(&self, filter: &str) -> usize {
        self.removed
            .iter()
            .find(|r| r.filter == filter)
            .map_or(0, |r| r.hosts)
    }
}

impl fmt::Display for NoValidHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("No valid host was found: ")?;
        if let Some(why) = &self.invalid {
            return write!(f, "invalid request: {why}");
        }
        if self.hosts == 0 {
            return f.write_str("there are no compute hosts");
        }
        write!(
            f,
            "{} host{}",
            self.hosts,
            if self.hosts == 1 { "" } else { "s" }
        )?;
        for (i, r) in self.removed.iter().enumerate() {
            let sep = if i == 0 { "; " } else { ", " };
            write!(f, "{sep}{} removed {} ({})", r.filter, r.hosts, r.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for NoValidHost {}

/// Hosts one filter removed for one kind of reason.
struct Group<'a> {
    key: Reject,
    count: usize,
    best: Option<i64>,
    /// Up to [`SHOWN`] host names, the smallest first (independent of the
    /// order hosts came in).
    names: Vec<&'a str>,
}

/// Host names shown per reason.
const SHOWN: usize = 3;

/// Rejections counted while filtering; turned into a [`NoValidHost`] only
/// when nothing passed. Recording allocates only for a new kind of reason.
pub(crate) struct Tally<'a> {
    filters: [Vec<Group<'a>>; FilterKind::ALL.len()],
}

impl<'a> Tally<'a> {
    pub(crate) fn new() -> Self {
        Tally {
            filters: Default::default(),
        }
    }

    pub(crate) fn record(&mut self, filter: FilterKind, host: &'a str, reject: Reject) {
        let groups = &mut self.filters[filter as usize];
        let key = reject.kind();
        let i = match groups.iter().position(|g| g.key == key) {
            Some(i) => i,
            None => {
                groups.push(Group {
                    key,
                    count: 0,
                    best: None,
                    names: Vec::with_capacity(SHOWN),
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.count += 1;
        if let Some(amount) = reject.amount() {
            g.best = Some(g.best.map_or(amount, |b| b.max(amount)));
        }
        if g.names.len() < SHOWN || g.names.last().is_some_and(|last| host < *last) {
            let at = g.names.partition_point(|n| *n < host);
            g.names.insert(at, host);
            g.names.truncate(SHOWN);
        }
    }

    pub(crate) fn finish(mut self, hosts: usize, p: &Prepared) -> NoValidHost {
        let removed = FilterKind::ALL
            .iter()
            .zip(self.filters.iter_mut())
            .filter(|(_, groups)| !groups.is_empty())
            .map(|(kind, groups)| {
                groups.sort_by_key(|g| g.key);
                Removal {
                    filter: kind.name().to_owned(),
                    hosts: groups.iter().map(|g| g.count).sum(),
                    detail: groups
                        .iter()
                        .map(|g| describe(g, p))
                        .collect::<Vec<_>>()
                        .join("; "),
                }
            })
            .collect();
        NoValidHost {
            hosts,
            removed,
            invalid: None,
        }
    }
}

/// `a, b, c and 7 more`.
fn names(g: &Group) -> String {
    let mut out = g.names.join(", ");
    if g.count > g.names.len() {
        let _ = write!(out, " and {} more", g.count - g.names.len());
    }
    out
}

/// `2 MiB`, `1 GiB`, `64 KiB`.
fn page_size(kb: u64) -> String {
    if kb.is_multiple_of(1024 * 1024) {
        format!("{} GiB", kb / (1024 * 1024))
    } else if kb.is_multiple_of(1024) {
        format!("{} MiB", kb / 1024)
    } else {
        format!("{kb} KiB")
    }
}

fn describe(g: &Group, p: &Prepared) -> String {
    let best = g.best.unwrap_or(0).max(0);
    let hosts = names(g);
    match g.key {
        Reject::Disabled => format!("disabled: {hosts}"),
        Reject::ForcedDown => format!("forced down: {hosts}"),
        Reject::Down => format!("down: {hosts}"),
        Reject::AlreadyFailed => format!("already failed this build: {hosts}"),
        Reject::OtherZone => format!(
            "not in availability zone {}: {hosts}",
            p.zone().unwrap_or_default()
        ),
        Reject::NotRequestedHost => {
            format!(
                "not the requested host {}",
                p.forced_host().unwrap_or_default()
            )
        }
        Reject::Short { resource, need, .. } => {
            let unit = resource.unit();
            format!("needs {need} {unit}, best has {best} {unit} free")
        }
        Reject::Architecture => format!(
            "image needs architecture {}: {hosts}",
            p.arch().unwrap_or_default()
        ),
        Reject::HypervisorType => format!(
            "image needs hypervisor type {}: {hosts}",
            p.hypervisor().unwrap_or_default()
        ),
        Reject::NotWithGroup => format!(
            "affinity: the group's members are on {}",
            p.member_hosts().join(", ")
        ),
        Reject::GroupMemberThere => {
            format!("anti-affinity: a group member is already on {hosts}")
        }
        Reject::Numa(n) => match n {
            NumaReject::Cells { need, .. } => {
                format!("needs {need} NUMA cell(s), best has {best}: {hosts}")
            }
            NumaReject::PinnableCpus { need, .. } => format!(
                "needs {need} free CPU(s) to pin in one NUMA cell, best cell has {best}: {hosts}"
            ),
            NumaReject::CellCpus { need, .. } => {
                format!("needs {need} CPU(s) in one NUMA cell, best cell has {best}: {hosts}")
            }
            NumaReject::Memory { need_mb, .. } => format!(
                "needs {need_mb} MiB in one NUMA cell, best cell has {best} MiB free: {hosts}"
            ),
            NumaReject::HugePages {
                page_kb, need_mb, ..
            } => format!(
                "needs {need_mb} MiB of {} pages in one NUMA cell, best cell has {best} MiB free: {hosts}",
                page_kb.map_or_else(|| "huge".to_owned(), page_size)
            ),
            NumaReject::Combination { need, .. } => format!(
                "needs {need} NUMA cell(s) each holding a guest cell's CPUs and memory, \
                 best has {best}: {hosts}"
            ),
        },
    }
}

#[cfg(test)]
mod tests;
