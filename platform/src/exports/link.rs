//! Short-lived signed links to a download package. A link names the tenant, the export,
//! who asked for it and when it expires, and carries an HMAC-SHA256 over all four under a
//! key derived from the master key: it opens that one package of that one tenant, until
//! it expires, for whoever holds it (so it can be given to `curl` or a browser), and
//! nothing else. Issuing one is audited; so is every download through it.

use crate::config::MasterKey;
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a link opens its package.
pub const LINK_TTL: chrono::Duration = chrono::Duration::minutes(15);

/// What a link names (its query string, without the signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The tenant.
    pub tenant: TenantId,
    /// The export.
    pub export: uuid::Uuid,
    /// Who asked for it (`user:{id}` / `api_key:{id}`).
    pub by: String,
    /// Unix seconds after which it is refused.
    pub expires: i64,
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not signed by this deployment, or altered.
    #[error("the download link is not valid (altered, or not issued by this deployment)")]
    Invalid,
    /// Past its expiry.
    #[error("the download link has expired; ask for a new one")]
    Expired,
}

impl LinkError {
    /// Machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid => "link_invalid",
            Self::Expired => "link_expired",
        }
    }
}

fn mac(master: &MasterKey, link: &Link) -> Hmac<Sha256> {
    // A key of its own: a link's MAC is never a valid MAC of anything else the master
    // key protects.
    let key = crate::crypto::hmac_hex(master.key.expose(), b"docket export download links");
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).expect("any key length");
    m.update(
        format!(
            "docket-export-link/1\n{}\n{}\n{}\n{}",
            link.tenant, link.export, link.by, link.expires
        )
        .as_bytes(),
    );
    m
}

impl Link {
    /// A link for `export` of `tenant` asked by `by`, valid for [`LINK_TTL`] from `now`.
    pub fn new(tenant: TenantId, export: uuid::Uuid, by: &str, now: DateTime<Utc>) -> Self {
        Self {
            tenant,
            export,
            by: by.to_owned(),
            expires: (now + LINK_TTL).timestamp(),
        }
    }

    /// When it expires.
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.expires, 0).unwrap_or_default()
    }

    /// The link's signature (hex).
    pub fn signature(&self, master: &MasterKey) -> String {
        hex::encode(mac(master, self).finalize().into_bytes())
    }

    /// The path and query a holder fetches.
    pub fn url(&self, master: &MasterKey) -> String {
        format!(
            "/v1/exports/{}/package?tenant={}&by={}&expires={}&signature={}",
            self.export,
            self.tenant,
            self.by,
            self.expires,
            self.signature(master)
        )
    }

    /// Checks `signature` (in constant time) and then the expiry against `now`.
    pub fn check(&self, master: &MasterKey, signature: &str, now: DateTime<Utc>) -> Result<(), LinkError> {
        let given = hex::decode(signature).map_err(|_| LinkError::Invalid)?;
        mac(master, self)
            .verify_slice(&given)
            .map_err(|_| LinkError::Invalid)?;
        match now.timestamp() > self.expires {
            true => Err(LinkError::Expired),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_opens_only_what_it_names_until_it_expires() {
        use base64::Engine;
        let key = |b: u8| {
            let b64 = base64::engine::general_purpose::STANDARD.encode([b; 32]);
            MasterKey::parse(&format!("k{b}:{b64}")).expect("key")
        };
        let (master, other) = (key(1), key(2));
        let now = Utc::now();
        let link = Link::new(TenantId::new_random(), uuid::Uuid::new_v4(), "user:x", now);
        let sig = link.signature(&master);
        assert_eq!(link.check(&master, &sig, now), Ok(()));
        assert_eq!(link.check(&other, &sig, now), Err(LinkError::Invalid));
        assert_eq!(link.check(&master, "zz", now), Err(LinkError::Invalid));
        let later = now + LINK_TTL + chrono::Duration::seconds(1);
        assert_eq!(link.check(&master, &sig, later), Err(LinkError::Expired));
        // Any field changed (another tenant, export, issuer or expiry) breaks the signature.
        for changed in [
            Link {
                tenant: TenantId::new_random(),
                ..link.clone()
            },
            Link {
                export: uuid::Uuid::new_v4(),
                ..link.clone()
            },
            Link {
                by: "user:y".into(),
                ..link.clone()
            },
            Link {
                expires: link.expires + 3600,
                ..link.clone()
            },
        ] {
            assert_eq!(changed.check(&master, &sig, now), Err(LinkError::Invalid));
        }
    }
}
