//! `docketctl deletion plan --tenant T [--document ID]`: what deleting the document (or
//! the whole tenant) would remove, per store, changing nothing (the API's dry runs). `docketctl certificate
//! verify FILE [--public-key FILE]`: checks a deletion certificate offline, against the keys
//! in FILE (a copy of `/.well-known/docket-keys.json`) or else the deployment's keys.

use anyhow::Context;
use docket_platform::blobs::BlobStore;
use docket_platform::config::Config;
use docket_platform::db::ControlDb;
use docket_platform::deletions::{certificate, plan};
use docket_platform::ids::DocumentId;
use docket_platform::jobs::queue::JobQueue;
use docket_platform::placement;
use docket_platform::redis_conn::Redis;
use serde_json::{Value, json};
use std::path::Path;

/// The dry run of deleting `document` of `tenant`, or (no document) the whole tenant.
pub async fn deletion_plan(
    config: &Config,
    control: &ControlDb,
    tenant: &str,
    document: Option<uuid::Uuid>,
) -> anyhow::Result<Value> {
    let t = crate::lookup::tenant(control, tenant).await?;
    let blobs = BlobStore::from_config(&config.objects)?;
    let queue = JobQueue::new(
        Redis::new(&config.redis.url, &config.redis.prefix)?,
        config.ingest.job_max_attempts,
    );
    let mut tx = control.begin_tenant(t.id).await?;
    let Some(document) = document else {
        let tier = placement::read(&mut tx).await?.current;
        let stores = plan::tenant(&mut tx, &blobs, &queue, tier.as_str()).await?;
        tx.commit().await?;
        return Ok(json!({"dry_run": true, "scope": "tenant", "tenant": t.slug, "stores": stores}));
    };
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM documents WHERE id = $1)")
        .bind(document)
        .fetch_one(tx.conn())
        .await?;
    anyhow::ensure!(exists, "tenant {} has no document {document}", t.slug);
    let tier = placement::read(&mut tx).await?.current;
    let stores = plan::document(&mut tx, &blobs, &queue, tier.as_str(), DocumentId(document)).await?;
    tx.commit().await?;
    Ok(
        json!({"dry_run": true, "scope": "document", "tenant": t.slug, "document_id": document, "stores": stores}),
    )
}

/// Verifies the certificate in `file`; `ok: false` (exit code 3) names every problem.
pub async fn certificate_verify(
    control: Option<&ControlDb>,
    file: &Path,
    public_key: Option<&Path>,
) -> anyhow::Result<Value> {
    let keys = crate::export::trusted_keys(control, public_key).await?;
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(match certificate::verify(&text, Some(&keys)) {
        Ok((cert, kid)) => json!({
            "ok": true, "signed_by": kid, "format": cert.format, "deletion_id": cert.deletion_id,
            "scope": cert.scope, "subject": cert.subject, "finished_at": cert.finished_at,
            "stores": cert.stores, "residue_clean": cert.residue.found.is_empty(),
        }),
        Err(problems) => json!({"ok": false, "problems": problems}),
    })
}
