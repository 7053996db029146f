//! The host's capacity and topology from libvirt's capabilities XML and
//! node info, as the scheduler's inventory.

use anyhow::Context;
use cloud_driver::NumaCell;
use std::path::{Path, PathBuf};

/// What we read from the capabilities XML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Host CPU architecture (`x86_64`).
    pub arch: String,
    /// NUMA cells with their CPUs, memory and huge pages.
    pub cells: Vec<NumaCell>,
    /// The QEMU binary for x86_64 guests.
    pub emulator: Option<PathBuf>,
    /// Whether libvirt offers `kvm` domains for x86_64.
    pub kvm_offered: bool,
}

/// The first child element of `n` named `name`.
fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(name))
}

/// Parses `virConnectGetCapabilities` output.
pub fn parse_capabilities(xml: &str) -> anyhow::Result<Capabilities> {
    let doc = roxmltree::Document::parse(xml).context("libvirt capabilities are not XML")?;
    let root = doc.root_element();
    let host = child(root, "host").context("capabilities without <host>")?;
    let arch = child(host, "cpu")
        .and_then(|cpu| child(cpu, "arch"))
        .and_then(|a| a.text())
        .unwrap_or("x86_64")
        .to_string();
    let mut cells = Vec::new();
    if let Some(list) = child(host, "topology").and_then(|t| child(t, "cells")) {
        for cell in list.children().filter(|c| c.has_tag_name("cell")) {
            let id = cell
                .attribute("id")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let memory_kib: u64 = child(cell, "memory")
                .and_then(|m| m.text())
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            let hugepages = cell
                .children()
                .filter(|c| c.has_tag_name("pages"))
                .filter_map(|p| {
                    let size: u64 = p.attribute("size")?.parse().ok()?;
                    let count: u64 = p.text()?.trim().parse().ok()?;
                    (size > 4).then_some((size, count))
                })
                .collect();
            let cpus = child(cell, "cpus")
                .map(|c| {
                    c.children()
                        .filter(|x| x.has_tag_name("cpu"))
                        .filter_map(|x| x.attribute("id")?.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            cells.push(NumaCell {
                id,
                cpus,
                memory_mb: memory_kib / 1024,
                hugepages,
            });
        }
    }
    let mut emulator = None;
    let mut kvm_offered = false;
    for guest in root.children().filter(|c| c.has_tag_name("guest")) {
        let Some(a) = child(guest, "arch").filter(|a| a.attribute("name") == Some("x86_64")) else {
            continue;
        };
        emulator = child(a, "emulator")
            .and_then(|e| e.text())
            .map(PathBuf::from);
        kvm_offered = a
            .children()
            .any(|d| d.has_tag_name("domain") && d.attribute("type") == Some("kvm"));
    }
    Ok(Capabilities {
        arch,
        cells,
        emulator,
        kvm_offered,
    })
}

/// Total size of the filesystem holding `path`, in GiB.
pub fn disk_total_gb(path: &Path) -> anyhow::Result<u64> {
    let st = nix::sys::statvfs::statvfs(path)
        .with_context(|| format!("cannot statvfs {}", path.display()))?;
    let bytes = st.blocks() as u64 * st.fragment_size() as u64;
    Ok(bytes >> 30)
}

/// Cells to report: the capabilities' cells, or one cell holding every
/// CPU and all memory when libvirt shows no topology.
pub fn cells_or_single(cells: Vec<NumaCell>, cpus: u32, memory_mb: u64) -> Vec<NumaCell> {
    if cells.is_empty() {
        vec![NumaCell {
            id: 0,
            cpus: (0..cpus).collect(),
            memory_mb,
            hugepages: Vec::new(),
        }]
    } else {
        cells
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: &str = r#"<capabilities>
  <host>
    <cpu><arch>x86_64</arch><model>kvm64</model></cpu>
    <topology>
      <cells num='2'>
        <cell id='0'>
          <memory unit='KiB'>4194304</memory>
          <pages unit='KiB' size='4'>1048576</pages>
          <pages unit='KiB' size='2048'>512</pages>
          <pages unit='KiB' size='1048576'>0</pages>
          <cpus num='2'>
            <cpu id='0' socket_id='0' core_id='0' siblings='0'/>
            <cpu id='2' socket_id='0' core_id='1' siblings='2'/>
          </cpus>
        </cell>
        <cell id='1'>
          <memory unit='KiB'>2097152</memory>
          <cpus num='1'><cpu id='1'/></cpus>
        </cell>
      </cells>
    </topology>
  </host>
  <guest>
    <os_type>hvm</os_type>
    <arch name='i686'><emulator>/usr/bin/qemu-system-i386</emulator><domain type='qemu'/></arch>
  </guest>
  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <emulator>/usr/bin/qemu-system-x86_64</emulator>
      <domain type='qemu'/>
      <domain type='kvm'/>
    </arch>
  </guest>
</capabilities>"#;

    #[test]
    fn reads_cells_cpus_memory_and_hugepages() {
        let caps = parse_capabilities(CAPS).unwrap();
        assert_eq!(caps.arch, "x86_64");
        assert_eq!(
            caps.emulator.as_deref(),
            Some(Path::new("/usr/bin/qemu-system-x86_64"))
        );
        assert!(caps.kvm_offered);
        assert_eq!(
            caps.cells,
            vec![
                NumaCell {
                    id: 0,
                    cpus: vec![0, 2],
                    memory_mb: 4096,
                    hugepages: vec![(2048, 512), (1048576, 0)],
                },
                NumaCell {
                    id: 1,
                    cpus: vec![1],
                    memory_mb: 2048,
                    hugepages: vec![],
                },
            ]
        );
    }

    #[test]
    fn without_topology_there_is_one_cell() {
        let cells = cells_or_single(Vec::new(), 3, 1000);
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].cpus, [0, 1, 2]);
        assert_eq!(cells[0].memory_mb, 1000);
        assert!(disk_total_gb(Path::new("/")).is_ok());
    }
}
