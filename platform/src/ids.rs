//! Identifier newtypes. A `TenantId` is never optional and never confused with a user id:
//! every function that touches tenant data takes one explicitly.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = uuid::Uuid)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// The tenant (customer organisation) that owns a piece of data.
    TenantId
);
id_type!(
    /// A user of one tenant.
    UserId
);
id_type!(
    /// A platform operator (Docket's own staff).
    OperatorId
);
id_type!(
    /// A machine credential of one tenant.
    ApiKeyId
);
id_type!(
    /// A document uploaded by a tenant.
    DocumentId
);
id_type!(
    /// A background job's tenant-visible record.
    JobId
);
id_type!(
    /// A question a tenant asked, and its answer.
    QueryId
);
id_type!(
    /// A bulk import (an archive, a bucket prefix or a folder of documents).
    ImportId
);
id_type!(
    /// One tenant's invoice for one month.
    InvoiceId
);

/// A tenant's URL-safe handle: 3–40 characters of `a-z`, `0-9` and inner `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TenantSlug(String);

/// Why a slug was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid tenant slug {0:?}: use 3-40 characters a-z, 0-9 and '-', not starting or ending with '-'")]
pub struct InvalidSlug(pub String);

impl TenantSlug {
    /// Validates and wraps a slug.
    pub fn parse(s: &str) -> Result<Self, InvalidSlug> {
        let ok_len = (3..=40).contains(&s.len());
        let ok_chars = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_ends = !s.starts_with('-') && !s.ends_with('-');
        if ok_len && ok_chars && ok_ends {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidSlug(s.to_owned()))
        }
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_validate_on_construction() {
        assert!(TenantSlug::parse("acme-corp").is_ok());
        assert!(TenantSlug::parse("a1b").is_ok());
        for bad in [
            "ab",
            "-acme",
            "acme-",
            "Acme",
            "ac me",
            "acme_corp",
            &"a".repeat(41),
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
