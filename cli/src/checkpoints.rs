//! `docketctl audit verify --checkpoints`: each chain walked as `audit verify` does, then
//! held against its latest signed checkpoint in object storage (`audit::checkpoint`): a
//! chain shorter than its checkpoint lost its tail, a chain whose row at the checkpoint's
//! position differs was rewritten. Both pass the walk alone when done with superuser rights.
//! `docketctl audit verify --file` does the same for an exported chain, offline.

use anyhow::Context;
use docket_platform::audit::{checkpoint, export as audit_export};
use docket_platform::blobs::BlobStore;
use docket_platform::config::Config;
use docket_platform::db::ControlDb;
use docket_platform::ids::TenantId;
use docket_platform::tenants;
use serde_json::{Value, json};
use std::path::Path;

/// [`crate::audit_verify`] plus each chain's checkpoint; `ok` is false if any chain is
/// broken or disagrees with its checkpoint. Keys from `public_key` (a copy of
/// `/.well-known/docket-keys.json`) or else the deployment's.
pub async fn audit_verify_checkpoints(
    config: &Config,
    control: &ControlDb,
    tenant: Option<TenantId>,
    public_key: Option<&Path>,
) -> anyhow::Result<Value> {
    let walked = crate::audit_verify(control, tenant).await?;
    let trusted = crate::export::trusted_keys(Some(control), public_key).await?;
    let blobs = BlobStore::from_config(&config.objects)?;
    let chains: Vec<String> = match tenant {
        Some(t) => vec![t.to_string()],
        None => std::iter::once("platform".to_owned())
            .chain(
                tenants::list(control)
                    .await?
                    .into_iter()
                    .map(|t| t.id.to_string()),
            )
            .collect(),
    };
    let mut ok = walked["ok"] == true;
    let mut reports = vec![];
    for chain in chains {
        let report = match checkpoint::check_chain(control, &blobs, &trusted, &chain).await? {
            None => json!({"chain": chain, "checkpoint": null, "ok": true}),
            Some((seq, problem)) => {
                ok &= problem.is_none();
                json!({"chain": chain, "checkpoint_seq": seq, "ok": problem.is_none(), "problem": problem})
            }
        };
        reports.push(report);
    }
    Ok(json!({"ok": ok, "chains": walked["chains"], "checkpoints": reports}))
}

/// Verifies an exported chain (`GET /v1/audit-events/export`) without any deployment: every
/// link, the head its header names and, given `checkpoint` (checked against `public_key`),
/// the signed row. `ok` is false when anything is wrong, each problem named.
pub async fn audit_verify_file(
    file: &Path,
    checkpoint: Option<&Path>,
    public_key: Option<&Path>,
) -> anyhow::Result<Value> {
    // A checkpoint that does not verify is a finding of the check (exit 3), like a broken link.
    let mut checkpoint_problem = None;
    let cp = match checkpoint {
        None => None,
        Some(path) => {
            let trusted = crate::export::trusted_keys(None, public_key).await?;
            let doc: Value = serde_json::from_slice(
                &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            )
            .with_context(|| format!("{} is not JSON", path.display()))?;
            // The whole answer of GET /v1/audit-checkpoints: its newest checkpoint.
            let one = match doc.get("checkpoints").and_then(Value::as_array) {
                Some(list) => list
                    .first()
                    .cloned()
                    .with_context(|| format!("{} lists no checkpoint", path.display()))?,
                None => doc,
            };
            match checkpoint::verify(&serde_json::to_vec(&one)?, &trusted) {
                Ok(cp) => Some(cp),
                Err(e) => {
                    checkpoint_problem = Some(format!("the checkpoint {}: {e}", path.display()));
                    None
                }
            }
        }
    };
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?,
    );
    let mut report = audit_export::verify_file(reader, cp.as_ref());
    if let Some(p) = checkpoint_problem {
        report.ok = false;
        report.problems.push(p);
    }
    Ok(json!(report))
}
