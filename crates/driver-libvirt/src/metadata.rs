//! Our element in a domain's `<metadata>`: it marks the domain as one of
//! this cloud's (other domains on the host are never listed or touched) and
//! records what it was built from, for operators and for reconciliation.
//!
//! `owner` names the driver that built the domain (its instances
//! directory). Several drivers may share one libvirtd (two clouds, a
//! development cloud next to test control planes): each lists, reconciles
//! and reaps only its own domains, never another's.

use crate::xml::Element;
use cloud_driver::VmSpec;
use cloud_model::InstanceId;

/// The XML namespace of our metadata element (libvirt keys metadata by it).
pub const NAMESPACE: &str = "http://cloud.local/xmlns/driver-libvirt/instance/1.0";

/// The prefix written for [`NAMESPACE`].
pub const PREFIX: &str = "cloud";

/// What we record about an instance in its domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceMetadata {
    /// Instance uuid.
    pub uuid: InstanceId,
    /// Server name.
    pub name: String,
    /// Flavor name.
    pub flavor_name: String,
    /// Owning project.
    pub project_id: String,
    /// Image booted.
    pub image_id: String,
    /// The driver that built the domain (see the module docs).
    pub owner: String,
}

impl InstanceMetadata {
    /// The metadata of `spec`'s instance, built by driver `owner`.
    pub fn from_spec(spec: &VmSpec, owner: &str) -> Self {
        InstanceMetadata {
            uuid: spec.id,
            name: spec.name.clone(),
            flavor_name: spec.flavor.name.clone(),
            project_id: spec.project_id.clone(),
            image_id: spec.image.id.clone(),
            owner: owner.to_string(),
        }
    }

    /// The `<cloud:instance>` element.
    pub fn to_element(&self) -> Element {
        let leaf = |name: &str, text: &str| Element::leaf(&format!("{PREFIX}:{name}"), text);
        Element::new(&format!("{PREFIX}:instance"))
            .attr(&format!("xmlns:{PREFIX}"), NAMESPACE)
            .child(leaf("uuid", &self.uuid.to_string()))
            .child(leaf("name", &self.name))
            .child(leaf("flavor", &self.flavor_name))
            .child(leaf("project", &self.project_id))
            .child(leaf("image", &self.image_id))
            .child(leaf("owner", &self.owner))
    }

    /// Parses the element as written in the domain XML (any prefix bound
    /// to [`NAMESPACE`]) or as `virDomainGetMetadata` returns it (looked up
    /// by namespace, so returned without one).
    pub fn parse(xml: &str) -> Option<Self> {
        let doc = roxmltree::Document::parse(xml).ok()?;
        let root = doc.root_element();
        let ours = |n: &roxmltree::Node<'_, '_>, name: &str| {
            n.tag_name().name() == name
                && matches!(n.tag_name().namespace(), None | Some(NAMESPACE))
        };
        if !ours(&root, "instance") {
            return None;
        }
        let text = |name: &str| {
            root.children()
                .find(|n| ours(n, name))
                .map(|n| n.text().unwrap_or_default().to_string())
        };
        Some(InstanceMetadata {
            uuid: InstanceId::parse(&text("uuid")?)?,
            name: text("name").unwrap_or_default(),
            flavor_name: text("flavor").unwrap_or_default(),
            project_id: text("project").unwrap_or_default(),
            image_id: text("image").unwrap_or_default(),
            owner: text("owner").unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_xml_with_any_prefix() {
        let m = InstanceMetadata {
            uuid: InstanceId::new(),
            name: "web <1> & \"co\"".into(),
            flavor_name: "m1.tiny".into(),
            project_id: "p1".into(),
            image_id: "img".into(),
            owner: "/var/lib/cloud/instances".into(),
        };
        let xml = m.to_element().render();
        assert_eq!(InstanceMetadata::parse(&xml), Some(m.clone()));
        let other_prefix = xml
            .replace("cloud:", "x:")
            .replace("xmlns:cloud", "xmlns:x");
        assert_eq!(InstanceMetadata::parse(&other_prefix), Some(m.clone()));
        // virDomainGetMetadata strips the namespace it was asked for.
        let stripped = xml
            .replace("cloud:", "")
            .replace(&format!(" xmlns:cloud=\"{NAMESPACE}\""), "");
        assert_eq!(InstanceMetadata::parse(&stripped), Some(m));
        let foreign = "<nova:instance xmlns:nova=\"http://openstack.org/xmlns/libvirt/nova/1.1\"/>";
        assert_eq!(InstanceMetadata::parse(foreign), None);
    }
}
