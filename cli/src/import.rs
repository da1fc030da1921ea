//! `docketctl import --tenant SLUG ./folder`: onboarding a customer's files from an
//! operator's machine. The folder's files become the import's waiting documents (the same
//! batches as an uploaded archive: `platform::imports::admit`), then the feeder (in
//! `docket-scheduler`) moves them through the pipeline while a progress bar shows files,
//! pages, chunks/s and the ETA.

use anyhow::Context;
use docket_platform::audit::{Actor, Auditor, Event, Outcome};
use docket_platform::blobs::BlobStore;
use docket_platform::config::Config;
use docket_platform::db::{ControlDb, Db};
use docket_platform::entitlements;
use docket_platform::ids::ImportId;
use docket_platform::imports::admit::{self, Entry, Resume};
use docket_platform::imports::{self, NewImport, SourceKind, progress};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Files per committed batch.
const BATCH: usize = 64;
/// Bytes per committed batch (a folder of large PDFs commits sooner).
const BATCH_BYTES: u64 = 64 * 1024 * 1024;

/// Every regular file under `root`, in path order (hidden files and folders skipped).
fn files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Imports `folder` into `tenant` (slug or id); with `wait`, shows progress until every
/// document is ready or failed (or `wait` passes).
pub async fn import_folder(
    config: &Config,
    control: &ControlDb,
    auditor: &Auditor,
    tenant: &str,
    folder: &Path,
    wait: Option<Duration>,
) -> anyhow::Result<Value> {
    let t = crate::lookup::tenant(control, tenant).await?;
    let paths = files(folder)?;
    anyhow::ensure!(!paths.is_empty(), "{} holds no files", folder.display());
    let db = Db::connect_lazy(&config.database.app_url, 4)?;
    let blobs = BlobStore::from_config(&config.objects)?;
    let mut tx = db.begin_tenant(t.id).await?;
    let (_, ent) = entitlements::load(&mut tx)
        .await?
        .context("the tenant vanished")?;
    anyhow::ensure!(
        paths.len() <= ent.max_import_entries,
        "{} files; the plan ({}) takes at most {} per import",
        paths.len(),
        ent.plan_id,
        ent.max_import_entries
    );
    let id = ImportId::new_random();
    let total = paths.len() as i32;
    let detail = json!({"folder": folder.display().to_string()});
    let new = NewImport {
        id,
        source: SourceKind::Folder,
        detail,
        sealed_credentials: None,
        total,
        actor: "operator:docketctl",
        created_by: None,
        request_id: None,
    };
    imports::insert(&mut tx, &new).await?;
    let ev = Event::new("imports.create", Outcome::Allowed, Actor::System)
        .target(format!("import:{id}"))
        .detail("source", "folder")
        .detail("entries", total);
    auditor.tenant(&mut tx, ev).await?;
    tx.commit().await?;

    let bar = ProgressBar::new(paths.len() as u64);
    bar.set_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} files  {msg}",
    )?);
    bar.set_message("reading files");
    let (mut entries, mut batch_bytes, mut start) = (Vec::with_capacity(BATCH), 0u64, 0i32);
    for (i, path) in paths.iter().enumerate() {
        let name = path.strip_prefix(folder).unwrap_or(path).display().to_string();
        let size = tokio::fs::metadata(path).await?.len();
        let bytes = if size > ent.max_upload_bytes {
            let msg = format!(
                "the file is larger than the limit of {} bytes",
                ent.max_upload_bytes
            );
            Err(("too_large", msg))
        } else {
            batch_bytes += size;
            tokio::fs::read(path)
                .await
                .map_err(|e| ("unreadable", format!("the file could not be read: {e}")))
        };
        entries.push(Entry {
            index: i as i32,
            name,
            bytes,
        });
        if entries.len() >= BATCH || batch_bytes >= BATCH_BYTES || i + 1 == paths.len() {
            let next = i as i32 + 1;
            let at = Resume {
                start,
                next,
                cursor: None,
                found: 0,
            };
            let batch = std::mem::take(&mut entries);
            admit::admit_batch(&db, &blobs, &config.master_key, t.id, id, batch, at).await?;
            (start, batch_bytes) = (next, 0);
            bar.set_message(format!("stored {next} of {total}"));
        }
    }
    let mut tx = db.begin_tenant(t.id).await?;
    imports::finish_unpacking(&mut tx, id).await?;
    tx.commit().await?;

    let Some(wait) = wait else {
        bar.finish_and_clear();
        return Ok(json!({"import_id": id, "tenant": t.slug, "total": total, "status": "running"}));
    };
    let started = Instant::now();
    let report = loop {
        let mut tx = db.begin_tenant(t.id).await?;
        let import = imports::get(&mut tx, id).await?.context("the import vanished")?;
        let counts = progress::counts(&mut tx, id).await?;
        tx.commit().await?;
        let r = progress::report(&import, &counts, chrono::Utc::now());
        let settled = r.ready + r.failed + r.duplicates + r.cancelled;
        let secs = started.elapsed().as_secs_f64().max(0.001);
        bar.set_position(settled as u64);
        bar.set_message(format!(
            "{} pages, {:.1} chunks/s, {} stalled, ETA {}",
            r.pages,
            r.chunks as f64 / secs,
            r.stalled,
            r.eta_seconds
                .map(|s| format!("{s}s"))
                .unwrap_or_else(|| "…".into())
        ));
        if settled >= r.total || started.elapsed() > wait {
            break r;
        }
        bar.tick();
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish();
    Ok(json!({
        "import_id": id, "tenant": t.slug, "total": report.total, "ready": report.ready,
        "failed": report.failed, "duplicates": report.duplicates, "pages": report.pages,
        "chunks": report.chunks, "complete": report.ready + report.failed + report.duplicates >= report.total,
    }))
}
