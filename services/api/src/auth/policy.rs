//! The policy: which role each API action needs.
//!
//! Three roles matter: `reader` may look, `member` may also create and
//! change the project's resources, `admin` may do anything in any project.
//! A role implies the ones below it. Every handler names its action, and
//! this table is the one place that says who may do it.

/// The role an action needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// Reader, member or admin on the project.
    Reader,
    /// Member or admin.
    Member,
    /// Admin.
    Admin,
}

impl Rule {
    /// The role name as users know it.
    pub fn role_name(self) -> &'static str {
        match self {
            Rule::Reader => "reader",
            Rule::Member => "member",
            Rule::Admin => "admin",
        }
    }
}

/// Every action the API authorizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Action {
    // Identity administration.
    ProjectList,
    ProjectRead,
    ProjectWrite,
    UserList,
    UserRead,
    UserWrite,
    RoleRead,
    RoleWrite,
    RoleAssignmentRead,
    RoleAssignmentWrite,
    DomainRead,
    // Compute.
    FlavorRead,
    FlavorWrite,
    FlavorAccessRead,
    KeypairRead,
    KeypairWrite,
    LimitsRead,
    QuotaRead,
    QuotaWrite,
    AvailabilityZoneRead,
    AvailabilityZoneDetail,
    ServerRead,
    ServerWrite,
    ServerAdminRead,
    ServerListAllProjects,
    ServerGroupRead,
    ServerGroupWrite,
    HypervisorRead,
    ServiceRead,
    ServiceWrite,
    // Image.
    ImageRead,
    ImageWrite,
    ImagePublicize,
    // Network.
    NetworkRead,
    NetworkWrite,
    NetworkShare,
    SecurityGroupRead,
    SecurityGroupWrite,
}

impl Action {
    /// The rule of this action.
    pub fn rule(self) -> Rule {
        use Action::*;
        match self {
            ProjectList
            | ProjectWrite
            | UserList
            | UserWrite
            | RoleWrite
            | RoleAssignmentRead
            | RoleAssignmentWrite
            | FlavorWrite
            | FlavorAccessRead
            | QuotaWrite
            | AvailabilityZoneDetail
            | ServerAdminRead
            | ServerListAllProjects
            | HypervisorRead
            | ServiceRead
            | ServiceWrite
            | ImagePublicize
            | NetworkShare => Rule::Admin,
            KeypairWrite | ServerWrite | ServerGroupWrite | ImageWrite | NetworkWrite
            | SecurityGroupWrite => Rule::Member,
            ProjectRead | UserRead | RoleRead | DomainRead | FlavorRead | KeypairRead
            | LimitsRead | QuotaRead | AvailabilityZoneRead | ServerRead | ServerGroupRead
            | ImageRead | NetworkRead | SecurityGroupRead => Rule::Reader,
        }
    }
}

/// Whether a holder of `roles` satisfies `rule`.
pub fn allows(rule: Rule, roles: &[&str]) -> bool {
    use cloud_model::identity::role_names::{ADMIN, MEMBER, READER};
    let has = |r: &str| roles.contains(&r);
    match rule {
        Rule::Admin => has(ADMIN),
        Rule::Member => has(ADMIN) || has(MEMBER),
        Rule::Reader => has(ADMIN) || has(MEMBER) || has(READER),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_imply_lower_ones() {
        assert!(allows(Action::ImageWrite.rule(), &["member"]));
        assert!(!allows(Action::ImageWrite.rule(), &["reader"]));
        assert!(allows(Action::ImageRead.rule(), &["reader"]));
        assert!(!allows(Action::FlavorWrite.rule(), &["member", "reader"]));
        assert!(allows(Action::FlavorWrite.rule(), &["admin"]));
        assert!(!allows(Action::ImageRead.rule(), &["some-other-role"]));
    }
}
