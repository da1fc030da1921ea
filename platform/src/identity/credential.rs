//! Opaque credentials (refresh tokens, API keys): `{prefix}_{tenant}_{id}_{secret}`.
//!
//! The tenant and id in the text only say where to look; nothing is trusted until the
//! secret's hash matches the stored one inside that tenant's scope.

use crate::crypto;
use crate::ids::TenantId;
use uuid::Uuid;

/// Which kind of credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `rt_…`
    Refresh,
    /// `dk_…` (Docket key)
    ApiKey,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Refresh => "rt",
            Kind::ApiKey => "dk",
        }
    }
}

/// A parsed opaque credential.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Tenant it claims to belong to.
    pub tenant: TenantId,
    /// Row id.
    pub id: Uuid,
    secret: String,
}

impl Credential {
    /// A new random credential and its full text (shown to the holder once).
    pub fn generate(kind: Kind, tenant: TenantId) -> (Self, String) {
        let c = Credential {
            tenant,
            id: Uuid::new_v4(),
            secret: crypto::random_token(32),
        };
        let text = format!(
            "{}_{}_{}_{}",
            kind.prefix(),
            tenant.0.simple(),
            c.id.simple(),
            c.secret
        );
        (c, text)
    }

    /// Parses the text; `None` if it is not this kind's shape.
    pub fn parse(kind: Kind, text: &str) -> Option<Self> {
        let mut parts = text.splitn(4, '_');
        if parts.next()? != kind.prefix() {
            return None;
        }
        let tenant = Uuid::try_parse(parts.next()?).ok()?;
        let id = Uuid::try_parse(parts.next()?).ok()?;
        let secret = parts.next()?;
        if secret.len() != 43 {
            return None;
        }
        Some(Credential {
            tenant: TenantId(tenant),
            id,
            secret: secret.to_owned(),
        })
    }

    /// What is stored: SHA-256 of the secret (256 random bits need no slow hash).
    pub fn hash(&self) -> String {
        crypto::sha256_hex(self.secret.as_bytes())
    }

    /// Whether this credential's secret matches a stored hash.
    pub fn matches(&self, stored_hash: &str) -> bool {
        crypto::constant_time_eq(self.hash().as_bytes(), stored_hash.as_bytes())
    }
}

/// Whether a bearer value looks like an API key (rather than a JWT).
pub fn looks_like_api_key(bearer: &str) -> bool {
    bearer.starts_with("dk_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_parse_match() {
        let t = TenantId::new_random();
        let (c, text) = Credential::generate(Kind::ApiKey, t);
        assert!(looks_like_api_key(&text));
        let p = Credential::parse(Kind::ApiKey, &text).expect("parses");
        assert_eq!(p.tenant, t);
        assert_eq!(p.id, c.id);
        assert!(p.matches(&c.hash()));
        assert!(Credential::parse(Kind::Refresh, &text).is_none());
        assert!(Credential::parse(Kind::ApiKey, "dk_garbage").is_none());
        let (other, _) = Credential::generate(Kind::ApiKey, t);
        assert!(!p.matches(&other.hash()));
    }
}
