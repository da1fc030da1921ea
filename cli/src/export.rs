//! `docketctl export verify DIR [--public-key FILE]`: checks a downloaded export package
//! offline: the manifest's signature (against the keys in FILE, a copy of
//! `/.well-known/docket-keys.json`, or else the deployment's keys in the database), every
//! file's size and SHA-256, every count, and the audit chain inside the package.

use anyhow::Context;
use docket_platform::db::ControlDb;
use docket_platform::exports::package;
use serde_json::{Value, json};
use std::path::Path;

/// Verifies the package in `dir`; `ok: false` (exit code 3) names every problem.
pub async fn export_verify(
    control: Option<&ControlDb>,
    dir: &Path,
    public_key: Option<&Path>,
) -> anyhow::Result<Value> {
    let keys = trusted_keys(control, public_key).await?;
    let dir = dir.to_path_buf();
    let v = tokio::task::spawn_blocking(move || package::verify(&dir, Some(&keys))).await?;
    let mut out = serde_json::to_value(&v)?;
    out["ok"] = json!(v.ok());
    Ok(out)
}

/// The signing keys to trust: those in `public_key` (a copy of
/// `/.well-known/docket-keys.json`), else the deployment's.
pub(crate) async fn trusted_keys(
    control: Option<&ControlDb>,
    public_key: Option<&Path>,
) -> anyhow::Result<package::TrustedKeys> {
    Ok(match (public_key, control) {
        (Some(file), _) => {
            let doc: Value = serde_json::from_slice(
                &std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?,
            )
            .with_context(|| format!("{} is not a JSON key set", file.display()))?;
            package::keys_from_jwks(&doc)
        }
        (None, Some(control)) => {
            let doc = docket_platform::identity::keyring::published(control.pool())
                .await
                .context("reading the deployment's signing keys (or give --public-key)")?;
            package::keys_from_jwks(&serde_json::to_value(doc)?)
        }
        (None, None) => anyhow::bail!("give --public-key FILE (a copy of /.well-known/docket-keys.json)"),
    })
}
