//! The Qdrant server settings (`QDRANT_URL` and friends). Without `QDRANT_URL` the
//! in-process engine in `DOCKET_VECTOR_DIR` is used.

use super::Reader;
use crate::secret::Secret;
use std::collections::HashMap;
use uuid::Uuid;

/// Where a Qdrant server (and isolated tenants' own deployments) are.
#[derive(Debug, Clone)]
pub struct QdrantConfig {
    /// gRPC URL, e.g. `http://qdrant:6334`.
    pub url: String,
    /// API key.
    pub api_key: Option<Secret<String>>,
    /// Prefix of every collection name.
    pub collection_prefix: String,
    /// Isolated tenants' deployments: tenant → (URL, API key).
    pub isolated: HashMap<Uuid, (String, Option<Secret<String>>)>,
}

impl Reader<'_> {
    /// `QDRANT_URL`, `QDRANT_API_KEY`, `DOCKET_QDRANT_COLLECTION_PREFIX`,
    /// `DOCKET_QDRANT_ISOLATED` (`tenant-uuid=url[|key];…`, a secret: it holds keys).
    pub(super) fn qdrant(&mut self) -> Option<QdrantConfig> {
        let url = self.raw("QDRANT_URL")?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            self.fail(
                "QDRANT_URL",
                "must be an http:// or https:// URL (the gRPC port, usually 6334)",
            );
        }
        let api_key = self.secret("QDRANT_API_KEY");
        let collection_prefix = self.string("DOCKET_QDRANT_COLLECTION_PREFIX", "docket_");
        if !collection_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            self.fail(
                "DOCKET_QDRANT_COLLECTION_PREFIX",
                "letters, digits, '_' and '-' only",
            );
        }
        let mut isolated = HashMap::new();
        if let Some(spec) = self.secret("DOCKET_QDRANT_ISOLATED") {
            for item in spec.expose().split(';').map(str::trim).filter(|i| !i.is_empty()) {
                let parsed = item.split_once('=').and_then(|(t, rest)| {
                    let tenant = t.trim().parse::<Uuid>().ok()?;
                    let (url, key) = match rest.split_once('|') {
                        Some((u, k)) => (u.trim(), Some(Secret::new(k.trim().to_owned()))),
                        None => (rest.trim(), None),
                    };
                    url.starts_with("http").then(|| (tenant, (url.to_owned(), key)))
                });
                match parsed {
                    Some((t, v)) => {
                        isolated.insert(t, v);
                    }
                    None => self.fail(
                        "DOCKET_QDRANT_ISOLATED",
                        "expected `tenant-uuid=http(s)://host:6334[|api-key]` items separated by ';'",
                    ),
                }
            }
        }
        Some(QdrantConfig {
            url,
            api_key,
            collection_prefix,
            isolated,
        })
    }
}
