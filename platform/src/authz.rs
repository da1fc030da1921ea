//! Authorization: one capability enum and one table mapping roles to capabilities. Handlers
//! declare the capability they need; nothing else decides.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A tenant role, from most to least privileged.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including the tenant itself.
    Owner,
    /// Runs the tenant day to day.
    Admin,
    /// Uploads and asks.
    Member,
    /// Reads and asks.
    Viewer,
}

impl Role {
    /// All roles, most privileged first.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Whether this role may grant (or manage a holder of) `other`: never a role above
    /// one's own.
    pub fn may_grant(&self, other: Role) -> bool {
        *self <= other
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: expected owner, admin, member or viewer"))
    }
}

/// Something a principal may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Capability {
    /// Read documents and their status.
    DocumentsRead,
    /// Upload and delete documents.
    DocumentsWrite,
    /// Ask questions.
    QueriesAsk,
    /// Read questions and answers (one's own; admins and owners: everyone's).
    QueriesRead,
    /// Create, change and disable users.
    UsersManage,
    /// Create and revoke API keys.
    KeysManage,
    /// Read usage.
    UsageRead,
    /// Read invoices.
    BillingRead,
    /// Read the tenant's audit trail.
    AuditRead,
    /// Request a data export.
    ExportsRequest,
    /// Request deletion of data.
    DeletionsRequest,
    /// Change tenant-wide settings.
    TenantManage,
}

impl Capability {
    /// Every capability, in README order.
    pub const ALL: [Capability; 12] = [
        Capability::DocumentsRead,
        Capability::DocumentsWrite,
        Capability::QueriesAsk,
        Capability::QueriesRead,
        Capability::UsersManage,
        Capability::KeysManage,
        Capability::UsageRead,
        Capability::BillingRead,
        Capability::AuditRead,
        Capability::ExportsRequest,
        Capability::DeletionsRequest,
        Capability::TenantManage,
    ];

    /// Dotted name, e.g. `documents.read`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Capability::DocumentsRead => "documents.read",
            Capability::DocumentsWrite => "documents.write",
            Capability::QueriesAsk => "queries.ask",
            Capability::QueriesRead => "queries.read",
            Capability::UsersManage => "users.manage",
            Capability::KeysManage => "keys.manage",
            Capability::UsageRead => "usage.read",
            Capability::BillingRead => "billing.read",
            Capability::AuditRead => "audit.read",
            Capability::ExportsRequest => "exports.request",
            Capability::DeletionsRequest => "deletions.request",
            Capability::TenantManage => "tenant.manage",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown capability {s:?}"))
    }
}

/// THE table: which roles hold which capability.
pub fn allows(role: Role, cap: Capability) -> bool {
    use Capability::*;
    use Role::*;
    match cap {
        DocumentsRead | QueriesAsk | QueriesRead => true,
        DocumentsWrite => matches!(role, Owner | Admin | Member),
        UsersManage | KeysManage | UsageRead | BillingRead | AuditRead | ExportsRequest => {
            matches!(role, Owner | Admin)
        }
        DeletionsRequest | TenantManage => role == Owner,
    }
}

/// Every capability `role` holds.
pub fn capabilities(role: Role) -> Vec<Capability> {
    Capability::ALL.into_iter().filter(|c| allows(role, *c)).collect()
}

/// The matrix as a Markdown table, exactly as the README prints it.
pub fn markdown_matrix() -> String {
    let mut s = String::from("| capability |");
    for r in Role::ALL {
        s += &format!(" {r} |");
    }
    s += "\n|---|";
    s += &"---|".repeat(Role::ALL.len());
    for c in Capability::ALL {
        s += &format!("\n| `{c}` |");
        for r in Role::ALL {
            s += if allows(r, c) { " ✓ |" } else { " — |" };
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_holds_everything_and_roles_are_nested() {
        for c in Capability::ALL {
            assert!(allows(Role::Owner, c));
            // A less privileged role never holds what a more privileged one lacks.
            for w in Role::ALL.windows(2) {
                assert!(!allows(w[1], c) || allows(w[0], c), "{c} breaks nesting");
            }
        }
        assert!(!allows(Role::Viewer, Capability::DocumentsWrite));
        assert!(allows(Role::Viewer, Capability::QueriesAsk));
    }

    #[test]
    fn names_round_trip() {
        for c in Capability::ALL {
            assert_eq!(c.as_str().parse::<Capability>().expect("parse"), c);
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().expect("parse"), r);
        }
        assert!(Role::Admin.may_grant(Role::Member));
        assert!(!Role::Admin.may_grant(Role::Owner));
    }

    #[test]
    fn the_readme_prints_the_matrix_from_this_module() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md");
        let start = readme
            .find("<!-- roles:start -->")
            .expect("README has the roles:start marker");
        let end = readme
            .find("<!-- roles:end -->")
            .expect("README has the roles:end marker");
        let printed = readme[start + "<!-- roles:start -->".len()..end].trim();
        assert_eq!(
            printed,
            markdown_matrix(),
            "README roles table is out of date; paste markdown_matrix()"
        );
    }
}
