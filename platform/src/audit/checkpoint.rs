//! Anchored audit: signed checkpoints of every chain's head, kept in object storage under a
//! platform prefix — outside the database, so someone with database superuser rights who
//! drops a chain's newest rows, or rewrites its tail consistently, is still caught
//! (`docketctl audit verify --checkpoints`), and a database restored to an older snapshot
//! is told apart from the chain it had. A checkpoint is `{format, chain, seq, hash, at}`
//! signed with the platform's Ed25519 key (the key set of export manifests and deletion
//! certificates), under its own signing context.
//!
//! Objects: `platform/audit-checkpoints/{folder}/{seq:020}.json`, where `folder` is
//! `platform` or the SHA-256 of `tenant:{id}` (a deleted tenant's id is not spelled out in
//! storage). `audit_checkpoint_heads` only remembers the last checkpoint per chain so an
//! unchanged head is not signed again; verification never trusts it.

use crate::blobs::{BlobError, BlobStore};
use crate::db::{ControlDb, DbError};
use crate::exports::package::{self, ManifestSignature, SignatureProblem, TrustedKeys};
use crate::identity::keyring::KeyRing;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The format's name and version.
pub const FORMAT: &str = "docket-audit-checkpoint/1";
/// What the signature covers before the checkpoint's canonical JSON.
pub const SIGNING_CONTEXT: &[u8] = b"docket-audit-checkpoint/1\n";
/// The platform folder checkpoints live under.
const FOLDER: &str = "audit-checkpoints";

/// A chain's head at a moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AuditCheckpoint)]
pub struct Checkpoint {
    /// [`FORMAT`].
    pub format: String,
    /// `platform` or the tenant's id.
    pub chain: String,
    /// The head's sequence number.
    pub seq: i64,
    /// The head's hash.
    pub hash: String,
    /// When it was taken.
    pub at: DateTime<Utc>,
}

/// The stored file.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = SignedAuditCheckpoint)]
pub struct SignedCheckpoint {
    /// The content.
    #[schema(value_type = crate::audit::checkpoint::Checkpoint)]
    pub checkpoint: serde_json::Value,
    /// Ed25519 over [`SIGNING_CONTEXT`] + the canonical JSON of `checkpoint`.
    pub signature: ManifestSignature,
}

/// Taking or reading checkpoints failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Object storage.
    #[error(transparent)]
    Blobs(#[from] BlobError),
    /// The platform key could not sign.
    #[error("signing: {0}")]
    Signing(String),
}

impl From<sqlx::Error> for CheckpointError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

/// The folder of `chain`'s checkpoints, relative to the platform prefix.
pub fn folder(chain: &str) -> String {
    match chain {
        "platform" => format!("{FOLDER}/platform"),
        tenant => format!(
            "{FOLDER}/{}",
            hex::encode(Sha256::digest(format!("tenant:{tenant}").as_bytes()))
        ),
    }
}

fn canonical(v: &serde_json::Value) -> Vec<u8> {
    super::canonical::to_string(v).into_bytes()
}

/// Every chain's head: the platform's and each tenant's (control role).
pub async fn heads(control: &ControlDb) -> Result<Vec<(String, i64, String)>, DbError> {
    let mut out: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT 'platform', seq, hash FROM platform_audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_all(control.pool())
            .await?;
    out.extend(
        sqlx::query_as::<_, (String, i64, String)>(
            "SELECT DISTINCT ON (tenant_id) tenant_id::text, seq, hash FROM audit_events
             ORDER BY tenant_id, seq DESC",
        )
        .fetch_all(control.pool())
        .await?,
    );
    Ok(out)
}

/// Signs and stores a checkpoint of every chain whose head moved since its last one.
/// Returns how many were taken.
pub async fn take(
    control: &ControlDb,
    blobs: &BlobStore,
    keys: &KeyRing,
    now: DateTime<Utc>,
) -> Result<usize, CheckpointError> {
    let last: HashMap<String, i64> = sqlx::query_as("SELECT chain, seq FROM audit_checkpoint_heads")
        .fetch_all(control.pool())
        .await?
        .into_iter()
        .collect();
    let moved: Vec<_> = heads(control)
        .await?
        .into_iter()
        .filter(|(chain, seq, _)| last.get(chain) != Some(seq))
        .collect();
    if moved.is_empty() {
        return Ok(0);
    }
    let (kid, key) = keys
        .signer()
        .await
        .map_err(|e| CheckpointError::Signing(e.to_string()))?;
    let mut taken = 0;
    for (chain, seq, hash) in moved {
        let cp = Checkpoint {
            format: FORMAT.into(),
            chain: chain.clone(),
            seq,
            hash: hash.clone(),
            at: now,
        };
        let value = serde_json::to_value(&cp).map_err(|e| CheckpointError::Signing(e.to_string()))?;
        let signature = package::sign_in(SIGNING_CONTEXT, &canonical(&value), &kid, &key);
        let text = serde_json::to_vec_pretty(&SignedCheckpoint {
            checkpoint: value,
            signature,
        })
        .map_err(|e| CheckpointError::Signing(e.to_string()))?;
        let object = format!("{}/{seq:020}.json", folder(&chain));
        blobs.put_platform(&object, text).await?;
        sqlx::query(
            "INSERT INTO audit_checkpoint_heads (chain, seq, hash, taken_at, object_key) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (chain) DO UPDATE SET seq = $2, hash = $3, taken_at = $4, object_key = $5",
        )
        .bind(&chain)
        .bind(seq)
        .bind(&hash)
        .bind(now)
        .bind(&object)
        .execute(control.pool())
        .await?;
        taken += 1;
    }
    Ok(taken)
}

/// The stored checkpoints of `chain`, newest first, at most `limit`, as stored (signed).
pub async fn recent(
    blobs: &BlobStore,
    chain: &str,
    limit: usize,
) -> Result<Vec<serde_json::Value>, CheckpointError> {
    let mut names = blobs.list_platform(&folder(chain)).await?;
    // Zero-padded sequence numbers: the name order is the chain's order.
    names.sort_unstable_by(|a, b| b.cmp(a));
    let mut out = vec![];
    for name in names.into_iter().take(limit) {
        if let Some(bytes) = blobs.get_platform(&name).await?
            && let Ok(v) = serde_json::from_slice(&bytes)
        {
            out.push(v);
        }
    }
    Ok(out)
}

/// Checks a stored checkpoint: its signature against `trusted` keys and its format.
pub fn verify(text: &[u8], trusted: &TrustedKeys) -> Result<Checkpoint, String> {
    let signed: SignedCheckpoint =
        serde_json::from_slice(text).map_err(|e| format!("not a signed audit checkpoint: {e}"))?;
    match package::check_signature(
        SIGNING_CONTEXT,
        &canonical(&signed.checkpoint),
        &signed.signature,
        Some(trusted),
    ) {
        Ok(()) => {}
        Err(SignatureProblem::Untrusted(kid)) => return Err(format!("key {kid} is not a trusted key")),
        Err(SignatureProblem::Malformed) => return Err("the signature is malformed".into()),
        Err(SignatureProblem::Mismatch) => return Err("the signature does not match".into()),
    }
    let cp: Checkpoint =
        serde_json::from_value(signed.checkpoint).map_err(|e| format!("not {FORMAT}: {e}"))?;
    if cp.format != FORMAT {
        return Err(format!("format {} is not {FORMAT}", cp.format));
    }
    Ok(cp)
}

/// What the chain in the database says at `cp`'s position: `None` when it holds the
/// checkpoint's row unchanged; otherwise the problem (rows dropped from its tail, or a
/// row that differs from the one signed: a rewrite).
pub async fn compare(control: &ControlDb, cp: &Checkpoint) -> Result<Option<String>, DbError> {
    let (head, at): (Option<i64>, Option<String>) = if cp.chain == "platform" {
        sqlx::query_as(
            "SELECT (SELECT max(seq) FROM platform_audit_events),
                    (SELECT hash FROM platform_audit_events WHERE seq = $1)",
        )
        .bind(cp.seq)
        .fetch_one(control.pool())
        .await?
    } else {
        sqlx::query_as(
            "SELECT (SELECT max(seq) FROM audit_events WHERE tenant_id = $1::uuid),
                    (SELECT hash FROM audit_events WHERE tenant_id = $1::uuid AND seq = $2)",
        )
        .bind(&cp.chain)
        .bind(cp.seq)
        .fetch_one(control.pool())
        .await?
    };
    let head = head.unwrap_or(0);
    Ok(if head < cp.seq {
        Some(format!(
            "truncated: rows {}..={} are missing; the checkpoint of {} signed row {} (head {})",
            head + 1,
            cp.seq,
            cp.at.to_rfc3339(),
            cp.seq,
            cp.hash
        ))
    } else if at.as_deref() != Some(cp.hash.as_str()) {
        Some(format!(
            "forked: row {} differs from the one the checkpoint of {} signed",
            cp.seq,
            cp.at.to_rfc3339()
        ))
    } else {
        None
    })
}

/// Checks `chain` against its latest stored checkpoint: `Ok(None)` when it has none yet,
/// otherwise the checkpoint's position and the problem found, if any.
pub async fn check_chain(
    control: &ControlDb,
    blobs: &BlobStore,
    trusted: &TrustedKeys,
    chain: &str,
) -> Result<Option<(i64, Option<String>)>, CheckpointError> {
    let mut names = blobs.list_platform(&folder(chain)).await?;
    names.sort_unstable();
    let Some(last) = names.pop() else {
        return Ok(None);
    };
    let Some(bytes) = blobs.get_platform(&last).await? else {
        return Ok(None);
    };
    match verify(&bytes, trusted) {
        Ok(cp) if cp.chain == chain => Ok(Some((cp.seq, compare(control, &cp).await?))),
        Ok(cp) => Ok(Some((
            cp.seq,
            Some(format!("{last} is a checkpoint of another chain")),
        ))),
        Err(problem) => Ok(Some((-1, Some(format!("{last}: {problem}"))))),
    }
}
