//! The public error of every layer.
//!
//! One transport-agnostic type with a handful of variants. Each carries the
//! message a user may see; `Internal` keeps its detail for the logs only.
//! The API maps variants to HTTP status codes in exactly one place, and each
//! OpenStack service renders them in its own fault format there.

use std::fmt;

/// The kinds of resource a lookup can miss; used to word "not found"
/// messages the way OpenStack does ("Flavor m1.huge could not be found.").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    /// A Keystone domain.
    Domain,
    /// A Keystone project.
    Project,
    /// A Keystone user.
    User,
    /// A Keystone role.
    Role,
    /// An authentication token.
    Token,
    /// A flavor.
    Flavor,
    /// A flavor extra spec key.
    FlavorExtraSpec,
    /// A flavor access entry.
    FlavorAccess,
    /// A keypair.
    Keypair,
    /// An image.
    Image,
    /// A network.
    Network,
    /// A subnet.
    Subnet,
    /// A port.
    Port,
    /// A security group.
    SecurityGroup,
    /// A security group rule.
    SecurityGroupRule,
    /// A server.
    Server,
    /// A server metadata key.
    ServerMetadata,
    /// A server tag.
    ServerTag,
    /// A server group.
    ServerGroup,
    /// An instance action.
    InstanceAction,
    /// A hypervisor (compute node).
    Hypervisor,
    /// A compute service record.
    Service,
    /// Anything else (routes, versions).
    Resource,
}

impl ResourceKind {
    /// The name users see, as in OpenStack's messages.
    pub fn display_name(self) -> &'static str {
        match self {
            ResourceKind::Domain => "Domain",
            ResourceKind::Project => "Project",
            ResourceKind::User => "User",
            ResourceKind::Role => "Role",
            ResourceKind::Token => "Token",
            ResourceKind::Flavor => "Flavor",
            ResourceKind::FlavorExtraSpec => "Flavor extra spec",
            ResourceKind::FlavorAccess => "Flavor access",
            ResourceKind::Keypair => "Keypair",
            ResourceKind::Image => "Image",
            ResourceKind::Network => "Network",
            ResourceKind::Subnet => "Subnet",
            ResourceKind::Port => "Port",
            ResourceKind::SecurityGroup => "Security group",
            ResourceKind::SecurityGroupRule => "Security group rule",
            ResourceKind::Server => "Instance",
            ResourceKind::ServerMetadata => "Metadata item",
            ResourceKind::ServerTag => "Tag",
            ResourceKind::ServerGroup => "Server group",
            ResourceKind::InstanceAction => "Action",
            ResourceKind::Hypervisor => "Hypervisor",
            ResourceKind::Service => "Service",
            ResourceKind::Resource => "Resource",
        }
    }

    /// Neutron's error type for a miss on this kind (`NetworkNotFound`).
    pub fn neutron_not_found_type(self) -> String {
        // "Security group" -> "SecurityGroup", as Neutron spells its types.
        let camel: String = self
            .display_name()
            .split(' ')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect::<String>())
                    .unwrap_or_default()
            })
            .collect();
        format!("{camel}NotFound")
    }
}

/// The error every layer returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource does not exist, or the caller may not see it (we never
    /// reveal the difference: another project's private resource is "not
    /// found", not "forbidden").
    #[error("{} {id} could not be found.", kind.display_name())]
    NotFound {
        /// What was looked up.
        kind: ResourceKind,
        /// The id or name the caller gave.
        id: String,
    },
    /// The request is malformed or names something invalid.
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong, naming the field.
        message: String,
    },
    /// The request conflicts with the current state of a resource.
    #[error("{message}")]
    Conflict {
        /// Which state or resource blocks the request.
        message: String,
    },
    /// The caller is authenticated but its roles do not allow the action.
    #[error("{message}")]
    Forbidden {
        /// Which policy refused.
        message: String,
    },
    /// No valid credentials or token.
    #[error("{message}")]
    Unauthenticated {
        /// Why authentication failed (without saying which part was wrong).
        message: String,
    },
    /// A quota would be exceeded.
    #[error("{message}")]
    QuotaExceeded {
        /// Which quota, its limit and current use.
        message: String,
    },
    /// No host or address is left for the request.
    #[error("{message}")]
    InsufficientCapacity {
        /// What ran out and where.
        message: String,
    },
    /// A dependency (database, bus, host) is unreachable; retrying may work.
    #[error("{message}")]
    Unavailable {
        /// What is unavailable.
        message: String,
    },
    /// A bug or an unexpected failure. The detail is logged, never shown.
    #[error("internal error: {internal_message}")]
    Internal {
        /// Detail for operators; users see a generic message.
        internal_message: String,
    },
}

impl Error {
    /// A miss on `kind` named `id`.
    pub fn not_found(kind: ResourceKind, id: impl fmt::Display) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// A malformed request.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidRequest {
            message: message.into(),
        }
    }

    /// A state conflict.
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict {
            message: message.into(),
        }
    }

    /// A policy refusal.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::Forbidden {
            message: message.into(),
        }
    }

    /// Missing or bad credentials.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Error::Unauthenticated {
            message: message.into(),
        }
    }

    /// A quota refusal.
    pub fn quota(message: impl Into<String>) -> Self {
        Error::QuotaExceeded {
            message: message.into(),
        }
    }

    /// Nothing left (hosts, addresses).
    pub fn capacity(message: impl Into<String>) -> Self {
        Error::InsufficientCapacity {
            message: message.into(),
        }
    }

    /// A dependency is down.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable {
            message: message.into(),
        }
    }

    /// An unexpected failure, with the chain of causes for the logs.
    pub fn internal(context: impl fmt::Display) -> Self {
        Error::Internal {
            internal_message: context.to_string(),
        }
    }

    /// The message a user may see. `Internal` errors hide their detail.
    pub fn external_message(&self) -> String {
        match self {
            Error::Internal { .. } => {
                "The server has either erred or is incapable of performing the requested \
                 operation."
                    .to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// Shorthand used across the workspace.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_reads_like_openstack() {
        let e = Error::not_found(ResourceKind::Flavor, "m1.huge");
        assert_eq!(e.external_message(), "Flavor m1.huge could not be found.");
        assert_eq!(
            ResourceKind::SecurityGroup.neutron_not_found_type(),
            "SecurityGroupNotFound"
        );
    }

    #[test]
    fn internal_detail_is_not_shown() {
        let e = Error::internal("db password wrong");
        assert!(!e.external_message().contains("password"));
    }
}
