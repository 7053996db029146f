//! The domain XML for each flavor shape, parsed back and checked element by
//! element.

use super::*;
use crate::testutil::{nic, spec};
use cloud_driver::{NumaCellPlacement, NumaPlacement};
use roxmltree::{Document, Node};

fn ctx(nics: usize) -> BuildContext {
    BuildContext {
        virt_type: VirtType::Qemu,
        cpu_mode: CpuMode::None,
        root_disk: "/i/x/disk".into(),
        config_drive: Some("/i/x/disk.config".into()),
        console_log: "/i/x/console.log".into(),
        kernel: None,
        nic_devices: (0..nics)
            .map(|i| (format!("brq{i}"), format!("tap{i}")))
            .collect(),
        owner: "/i".into(),
    }
}

/// Renders `def`, checks it against libvirt's RNG schema
/// (`virt-xml-validate`), and returns the XML.
fn valid_xml(def: &DomainDef) -> String {
    let xml = def.to_xml();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &xml).unwrap();
    let out = std::process::Command::new("virt-xml-validate")
        .arg(file.path())
        .arg("domain")
        .output()
        .expect("virt-xml-validate (libvirt-clients + libxml2-utils) must be installed");
    assert!(
        out.status.success(),
        "libvirt rejects the domain XML: {}{}\n{xml}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    xml
}

fn find<'a>(doc: &'a Document, path: &str) -> Node<'a, 'a> {
    find_all(doc, path)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {path} in\n{}", doc.input_text()))
}

fn find_all<'a>(doc: &'a Document, path: &str) -> Vec<Node<'a, 'a>> {
    let mut nodes = vec![doc.root_element()];
    let mut parts = path.split('/');
    assert_eq!(parts.next(), Some("domain"));
    for part in parts {
        nodes = nodes
            .iter()
            .flat_map(|n| n.children().filter(|c| c.tag_name().name() == part))
            .collect();
    }
    nodes
}

fn child<'a>(n: Node<'a, 'a>, name: &str) -> Node<'a, 'a> {
    n.children()
        .find(|c| c.tag_name().name() == name)
        .unwrap_or_else(|| panic!("no <{name}>"))
}

fn text<'a>(doc: &'a Document, path: &str) -> &'a str {
    find(doc, path).text().unwrap_or_default()
}

#[test]
fn plain_flavor() {
    let s = spec();
    let xml = valid_xml(&DomainDef::from_spec(&s, &ctx(1)));
    let doc = Document::parse(&xml).unwrap();
    let d = doc.root_element();
    assert_eq!(d.attribute("type"), Some("qemu"));
    assert_eq!(text(&doc, "domain/name"), format!("instance-{}", s.id));
    assert_eq!(text(&doc, "domain/uuid"), s.id.to_string());
    assert_eq!(text(&doc, "domain/memory"), "262144");
    assert_eq!(find(&doc, "domain/memory").attribute("unit"), Some("KiB"));
    assert_eq!(text(&doc, "domain/vcpu"), "1");
    let topo = find(&doc, "domain/cpu/topology");
    assert_eq!(topo.attribute("sockets"), Some("1"));
    assert_eq!(find(&doc, "domain/cpu").attribute("mode"), None);
    assert!(find_all(&doc, "domain/cpu/numa").is_empty());
    assert!(find_all(&doc, "domain/numatune").is_empty());
    assert!(find_all(&doc, "domain/cputune").is_empty());
    assert!(find_all(&doc, "domain/memoryBacking").is_empty());
    assert_eq!(
        find(&doc, "domain/os/type").attribute("machine"),
        Some("pc")
    );
    assert_eq!(find(&doc, "domain/os/boot").attribute("dev"), Some("hd"));
    assert!(find_all(&doc, "domain/os/kernel").is_empty());
    assert_eq!(find_all(&doc, "domain/features/acpi").len(), 1);
    assert_eq!(find_all(&doc, "domain/features/apic").len(), 1);
    assert_eq!(find(&doc, "domain/clock").attribute("offset"), Some("utc"));
    assert_eq!(text(&doc, "domain/on_poweroff"), "destroy");
    assert_eq!(text(&doc, "domain/on_reboot"), "restart");
    assert_eq!(text(&doc, "domain/on_crash"), "destroy");

    let disks = find_all(&doc, "domain/devices/disk");
    assert_eq!(disks.len(), 2);
    let root = disks[0];
    assert_eq!(root.attribute("device"), Some("disk"));
    assert_eq!(child(root, "driver").attribute("type"), Some("qcow2"));
    assert_eq!(child(root, "source").attribute("file"), Some("/i/x/disk"));
    assert_eq!(child(root, "target").attribute("bus"), Some("virtio"));
    let cd = disks[1];
    assert_eq!(cd.attribute("device"), Some("cdrom"));
    assert_eq!(
        child(cd, "source").attribute("file"),
        Some("/i/x/disk.config")
    );
    assert_eq!(child(cd, "target").attribute("bus"), Some("ide"));
    assert!(cd.children().any(|c| c.tag_name().name() == "readonly"));

    let nics = find_all(&doc, "domain/devices/interface");
    assert_eq!(nics.len(), 1);
    assert_eq!(nics[0].attribute("type"), Some("bridge"));
    assert_eq!(
        child(nics[0], "mac").attribute("address"),
        Some("fa:16:3e:00:00:00")
    );
    assert_eq!(child(nics[0], "source").attribute("bridge"), Some("brq0"));
    assert_eq!(child(nics[0], "target").attribute("dev"), Some("tap0"));
    assert_eq!(child(nics[0], "model").attribute("type"), Some("virtio"));
    assert_eq!(child(nics[0], "mtu").attribute("size"), Some("1450"));

    let serial = find(&doc, "domain/devices/serial");
    assert_eq!(serial.attribute("type"), Some("file"));
    assert_eq!(
        child(serial, "source").attribute("path"),
        Some("/i/x/console.log")
    );
    assert_eq!(
        find(&doc, "domain/devices/console").attribute("type"),
        Some("file")
    );
    assert_eq!(
        find(&doc, "domain/devices/memballoon").attribute("model"),
        Some("virtio")
    );

    let meta = find(&doc, "domain/metadata").first_element_child().unwrap();
    assert_eq!(
        meta.tag_name().namespace(),
        Some(crate::metadata::NAMESPACE)
    );
    let m = crate::metadata::InstanceMetadata::parse(&xml[meta.range()]).unwrap();
    assert_eq!(m.uuid, s.id);
    assert_eq!(m.name, "web-1");
    assert_eq!(m.flavor_name, "m1.tiny");
    assert_eq!(m.project_id, "proj1");
    assert_eq!(m.owner, "/i");
}

#[test]
fn numa_nodes_2_without_pinning() {
    let mut s = spec();
    s.flavor.vcpus = 4;
    s.flavor.ram_mb = 2048;
    s.numa = Some(NumaPlacement {
        cells: (0..2)
            .map(|i| NumaCellPlacement {
                guest_cell: i,
                host_cell: 1 - i,
                guest_cpus: vec![2 * i, 2 * i + 1],
                host_cpus: vec![],
                memory_mb: 1024,
            })
            .collect(),
        page_size_kb: None,
    });
    let xml = valid_xml(&DomainDef::from_spec(&s, &ctx(1)));
    let doc = Document::parse(&xml).unwrap();
    let cells = find_all(&doc, "domain/cpu/numa/cell");
    assert_eq!(cells.len(), 2);
    assert_eq!(cells[0].attribute("cpus"), Some("0-1"));
    assert_eq!(cells[1].attribute("cpus"), Some("2-3"));
    assert_eq!(cells[1].attribute("memory"), Some("1024"));
    assert_eq!(cells[1].attribute("unit"), Some("MiB"));
    assert_eq!(cells[0].attribute("memAccess"), None);
    assert_eq!(
        find(&doc, "domain/numatune/memory").attribute("nodeset"),
        Some("0-1")
    );
    let memnodes = find_all(&doc, "domain/numatune/memnode");
    assert_eq!(memnodes.len(), 2);
    assert_eq!(memnodes[0].attribute("cellid"), Some("0"));
    assert_eq!(memnodes[0].attribute("nodeset"), Some("1"));
    assert_eq!(memnodes[1].attribute("nodeset"), Some("0"));
    assert!(find_all(&doc, "domain/cputune").is_empty());
    assert_eq!(
        find(&doc, "domain/cpu/topology").attribute("sockets"),
        Some("4")
    );
}

#[test]
fn dedicated_cpus_are_pinned() {
    let mut s = spec();
    s.flavor.vcpus = 2;
    s.flavor
        .extra_specs
        .insert("hw:cpu_policy".into(), "dedicated".into());
    s.numa = Some(NumaPlacement {
        cells: vec![NumaCellPlacement {
            guest_cell: 0,
            host_cell: 0,
            guest_cpus: vec![0, 1],
            host_cpus: vec![6, 3],
            memory_mb: 256,
        }],
        page_size_kb: None,
    });
    let xml = valid_xml(&DomainDef::from_spec(&s, &ctx(1)));
    let doc = Document::parse(&xml).unwrap();
    let pins = find_all(&doc, "domain/cputune/vcpupin");
    let pins: Vec<_> = pins
        .iter()
        .map(|p| (p.attribute("vcpu").unwrap(), p.attribute("cpuset").unwrap()))
        .collect();
    assert_eq!(pins, [("0", "6"), ("1", "3")]);
    assert_eq!(
        find(&doc, "domain/cputune/emulatorpin").attribute("cpuset"),
        Some("3,6")
    );
    assert_eq!(
        find(&doc, "domain/numatune/memnode").attribute("nodeset"),
        Some("0")
    );
}

#[test]
fn hugepages_back_every_guest_cell() {
    let mut s = spec();
    s.flavor.vcpus = 2;
    s.flavor.ram_mb = 1024;
    s.numa = Some(NumaPlacement {
        cells: (0..2)
            .map(|i| NumaCellPlacement {
                guest_cell: i,
                host_cell: i,
                guest_cpus: vec![i],
                host_cpus: vec![],
                memory_mb: 512,
            })
            .collect(),
        page_size_kb: Some(2048),
    });
    let xml = valid_xml(&DomainDef::from_spec(&s, &ctx(1)));
    let doc = Document::parse(&xml).unwrap();
    let page = find(&doc, "domain/memoryBacking/hugepages/page");
    assert_eq!(page.attribute("size"), Some("2048"));
    assert_eq!(page.attribute("unit"), Some("KiB"));
    assert_eq!(page.attribute("nodeset"), Some("0-1"));
    for cell in find_all(&doc, "domain/cpu/numa/cell") {
        assert_eq!(cell.attribute("memAccess"), Some("shared"));
    }

    // 4 KiB pages are the normal ones: no memory backing.
    s.numa.as_mut().unwrap().page_size_kb = Some(4);
    let xml = valid_xml(&DomainDef::from_spec(&s, &ctx(1)));
    let doc = Document::parse(&xml).unwrap();
    assert!(find_all(&doc, "domain/memoryBacking").is_empty());
}

#[test]
fn kernel_boot_uses_the_image_command_line_or_novas_default() {
    let mut s = spec();
    let mut c = ctx(1);
    c.kernel = Some(("/i/x/kernel".into(), Some("/i/x/ramdisk".into())));
    let xml = valid_xml(&DomainDef::from_spec(&s, &c));
    let doc = Document::parse(&xml).unwrap();
    assert_eq!(text(&doc, "domain/os/kernel"), "/i/x/kernel");
    assert_eq!(text(&doc, "domain/os/initrd"), "/i/x/ramdisk");
    assert_eq!(text(&doc, "domain/os/cmdline"), DEFAULT_CMDLINE);
    assert!(find_all(&doc, "domain/os/boot").is_empty());

    s.image
        .properties
        .insert("os_command_line".into(), "console=ttyS0 a=<b>&c".into());
    let xml = valid_xml(&DomainDef::from_spec(&s, &c));
    let doc = Document::parse(&xml).unwrap();
    assert_eq!(text(&doc, "domain/os/cmdline"), "console=ttyS0 a=<b>&c");
}

#[test]
fn two_nics_in_order() {
    let mut s = spec();
    s.nics.push(nic(1));
    let xml = valid_xml(&DomainDef::from_spec(&s, &ctx(2)));
    let doc = Document::parse(&xml).unwrap();
    let nics = find_all(&doc, "domain/devices/interface");
    assert_eq!(nics.len(), 2);
    let attr = |n: Node<'_, '_>, el: &str, a: &str| {
        n.children()
            .find(|c| c.tag_name().name() == el)
            .and_then(|c| c.attribute(a))
            .map(str::to_string)
    };
    assert_eq!(
        attr(nics[1], "mac", "address").as_deref(),
        Some("fa:16:3e:00:00:01")
    );
    assert_eq!(attr(nics[1], "source", "bridge").as_deref(), Some("brq1"));
    assert_eq!(attr(nics[1], "target", "dev").as_deref(), Some("tap1"));
}

#[test]
fn kvm_gets_host_model_and_flavor_topology() {
    let mut s = spec();
    s.flavor.vcpus = 4;
    s.flavor
        .extra_specs
        .insert("hw:cpu_sockets".into(), "2".into());
    s.flavor
        .extra_specs
        .insert("hw:cpu_cores".into(), "2".into());
    let mut c = ctx(1);
    c.virt_type = VirtType::Kvm;
    c.cpu_mode = CpuMode::HostModel;
    let xml = valid_xml(&DomainDef::from_spec(&s, &c));
    let doc = Document::parse(&xml).unwrap();
    assert_eq!(doc.root_element().attribute("type"), Some("kvm"));
    assert_eq!(
        find(&doc, "domain/cpu").attribute("mode"),
        Some("host-model")
    );
    let topo = find(&doc, "domain/cpu/topology");
    assert_eq!(topo.attribute("sockets"), Some("2"));
    assert_eq!(topo.attribute("cores"), Some("2"));
    assert_eq!(topo.attribute("threads"), Some("1"));
}

#[test]
fn cpusets_fold_ranges() {
    assert_eq!(cpuset(&[0, 1, 2, 5]), "0-2,5");
    assert_eq!(cpuset(&[7, 3]), "3,7");
    assert_eq!(cpuset(&[]), "");
}
