//! Typed identifiers.
//!
//! Every resource has its own id type, so the compiler rejects a subnet id
//! where a network id belongs. Compute, image and network resources use
//! hyphenated UUIDs as Nova, Glance and Neutron do; identity resources use
//! Keystone's 32-digit hex form. Flavor ids are free-form strings because
//! Nova lets an admin choose them (`"1"`, `"m1.tiny"`, or a UUID).

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Defines a UUID-backed id type with parsing, display and serde.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random (v4) id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// Wraps an existing UUID.
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// Parses the textual form; `None` for anything that is not a
            /// UUID (callers turn that into a 404, as OpenStack does for
            /// names passed where ids belong).
            pub fn parse(s: &str) -> Option<Self> {
                Uuid::try_parse(s).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s).map(Self)
            }
        }
    };
}

/// Defines a string-backed id type.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id read from the store or a request.
            pub fn from_string(s: impl Into<String>) -> Self {
                Self(s.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

/// Defines a Keystone-style id: 32 lowercase hex digits when generated.
macro_rules! keystone_id {
    ($(#[$doc:meta])* $name:ident) => {
        string_id!($(#[$doc])* $name);

        impl $name {
            /// A fresh random id in Keystone's form (UUID hex, no hyphens).
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(Uuid::new_v4().simple().to_string())
            }
        }
    };
}

keystone_id!(
    /// A Keystone domain. The default domain's id is the literal `default`.
    DomainId
);
keystone_id!(
    /// A project (tenant): the unit of ownership and quota.
    ProjectId
);
keystone_id!(
    /// A user account.
    UserId
);
keystone_id!(
    /// A role (`admin`, `member`, `reader`, ...).
    RoleId
);
string_id!(
    /// A flavor id, chosen by the admin or generated as a UUID.
    FlavorId
);

impl DomainId {
    /// The domain every OpenStack client assumes: id `default`.
    pub fn default_domain() -> Self {
        Self("default".to_owned())
    }
}

uuid_id!(
    /// A Glance image.
    ImageId
);
uuid_id!(
    /// A Neutron network.
    NetworkId
);
uuid_id!(
    /// A subnet of a network.
    SubnetId
);
uuid_id!(
    /// A port: a MAC address and fixed IPs on a network.
    PortId
);
uuid_id!(
    /// A security group.
    SecurityGroupId
);
uuid_id!(
    /// A rule of a security group.
    SecurityGroupRuleId
);
uuid_id!(
    /// A server (Nova instance).
    InstanceId
);
uuid_id!(
    /// A server group (affinity policy holder).
    ServerGroupId
);
uuid_id!(
    /// A placement resource provider (a compute node or one of its NUMA cells).
    ProviderId
);
uuid_id!(
    /// An instance action (one user request against a server).
    ActionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids_round_trip_and_reject_names() {
        let id = InstanceId::new();
        assert_eq!(InstanceId::parse(&id.to_string()), Some(id));
        assert_eq!(InstanceId::parse("vm1"), None);
    }

    #[test]
    fn keystone_ids_are_hex_without_hyphens() {
        let id = ProjectId::new();
        assert_eq!(id.as_str().len(), 32);
        assert!(id.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
