//! `import`: unpacks one import's source into waiting documents, a batch at a time
//! (`platform::imports::admit`), resuming where the last committed batch ended. A zip is
//! read in place (ranged, decrypting reads of the stored archive) on a blocking thread that
//! hands batches over a one-slot channel (memory: a 4 MiB block plus about three batches);
//! a bucket is listed from the last key done. The pipeline itself is
//! fed by the feeder, never from here.

use crate::context::{Ctx, JobContext};
use apalis::prelude::{AbortError, BoxDynError, Data};
use docket_platform::entitlements::{self, Entitlements};
use docket_platform::imports::admit::{self, Entry, Resume};
use docket_platform::imports::archive::{self, ArchiveLimits};
use docket_platform::imports::job::{ImportJob, archive_key};
use docket_platform::imports::source::{self, S3Credentials, S3Source};
use docket_platform::imports::{self, Import};
use docket_platform::tenant_keys;
use futures::StreamExt;
use object_store::ObjectStoreExt;

/// Unpack attempts before the import fails.
const MAX_ATTEMPTS: i32 = 5;
/// Entries per committed batch.
const BATCH_ENTRIES: usize = 64;
/// Bytes per batch (a batch of large PDFs commits sooner). With one batch being stored,
/// one waiting in the channel and one being read, the unpack holds about three of these.
const BATCH_BYTES: usize = 16 * 1024 * 1024;

/// How an attempt ended badly.
enum Failure {
    /// Retry (database, storage, queue).
    Transient(String),
    /// The source itself is unusable: fail the import with this code and sentence.
    Source(&'static str, String),
}

fn transient(e: impl std::fmt::Display) -> Failure {
    Failure::Transient(e.to_string())
}

/// The apalis handler.
pub async fn handle(job: ImportJob, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    let ctx: Ctx = (*ctx).clone();
    let mut tx = ctx.db.begin_tenant(job.tenant_id).await?;
    let attempt = imports::start_unpack_attempt(&mut tx, job.import_id).await?;
    let import = imports::get(&mut tx, job.import_id).await?;
    let ent = entitlements::load(&mut tx).await?.map(|(_, e)| e);
    tx.commit().await?;
    let (Some(attempt), Some(import), Some(ent)) = (attempt, import, ent) else {
        // Cancelled, failed, already unpacked, or gone: a replayed job does nothing.
        return Ok(());
    };
    if attempt > MAX_ATTEMPTS {
        let msg = format!("gave up unpacking after {MAX_ATTEMPTS} attempts");
        end_failed(&ctx, &job, "too_many_attempts", &msg).await?;
        return Err(AbortError::new(msg).into());
    }
    let outcome = match import.source.as_str() {
        "zip" => unpack_zip(&ctx, &job, &import, &ent).await,
        "s3" => unpack_bucket(&ctx, &job, &import, &ent).await,
        other => Err(Failure::Source(
            "unsupported_source",
            format!("imports from `{other}` are not unpacked by workers"),
        )),
    };
    match outcome {
        // Stopped early: cancelled (the archive goes), or another run of this unpack is
        // ahead and finishes it (the archive stays for it).
        Ok(false) => {
            let mut tx = ctx.db.begin_tenant(job.tenant_id).await?;
            let now = imports::get(&mut tx, job.import_id).await?;
            tx.commit().await?;
            if now.is_none_or(|i| i.status != "unpacking") {
                drop_archive(&ctx, &job, &import).await;
            }
            Ok(())
        }
        Ok(true) => {
            let mut tx = ctx.db.begin_tenant(job.tenant_id).await?;
            imports::finish_unpacking(&mut tx, job.import_id).await?;
            tx.commit().await?;
            drop_archive(&ctx, &job, &import).await;
            tracing::info!(import = %job.import_id, "import unpacked");
            Ok(())
        }
        Err(Failure::Source(code, msg)) => {
            end_failed(&ctx, &job, code, &msg).await?;
            drop_archive(&ctx, &job, &import).await;
            Err(AbortError::new(msg).into())
        }
        Err(Failure::Transient(msg)) => {
            tracing::warn!(import = %job.import_id, attempt, error = %msg, "unpack attempt failed; will retry");
            tokio::time::sleep(std::time::Duration::from_secs(attempt as u64)).await;
            Err(msg.into())
        }
    }
}

/// Deletes an unpacked, failed or cancelled import's archive (best effort: logged).
async fn drop_archive(ctx: &JobContext, job: &ImportJob, import: &Import) {
    if import.source != "zip" {
        return;
    }
    if let Err(e) = ctx.blobs.delete(job.tenant_id, &archive_key(job.import_id)).await {
        tracing::warn!(import = %job.import_id, error = %e, "could not delete an import archive");
    }
}

async fn end_failed(ctx: &JobContext, job: &ImportJob, code: &str, msg: &str) -> Result<(), BoxDynError> {
    let mut tx = ctx.db.begin_tenant(job.tenant_id).await?;
    imports::fail(&mut tx, job.import_id, code, msg).await?;
    tx.commit().await?;
    tracing::warn!(import = %job.import_id, code, "import failed");
    Ok(())
}

/// A batch of entries and the index after its last, or why reading stopped.
type Batch = Result<(Vec<Entry>, i32), Failure>;

/// `Ok(true)`: every entry is done; `Ok(false)`: stopped early (cancelled, or overtaken).
async fn unpack_zip(
    ctx: &JobContext,
    job: &ImportJob,
    import: &Import,
    ent: &Entitlements,
) -> Result<bool, Failure> {
    let mut tx = ctx.db.begin_tenant(job.tenant_id).await.map_err(transient)?;
    let key = tenant_keys::data_key(&mut tx, &ctx.config.master_key)
        .await
        .map_err(transient)?;
    tx.commit().await.map_err(transient)?;
    // Read in place by ranged reads, a block at a time: the archive (up to the plan's
    // import size) is never in memory, decrypted or not, nor on a local disk.
    let reader = ctx
        .blobs
        .open_reader(&key, &archive_key(import.id))
        .await
        .map_err(transient)?;
    let fault = reader.fault();
    let limits = ArchiveLimits::for_plan(ent);
    let start = import.unpacked.max(0) as usize;
    let (send, mut batches) = tokio::sync::mpsc::channel::<Batch>(1);
    // An archive error caused by a failed fetch is the store's, and worth a retry.
    let failure = move |e: archive::ArchiveError| match fault.lock().ok().and_then(|f| f.clone()) {
        Some(store) => Failure::Transient(format!("reading the archive: {store}")),
        None => Failure::Source(e.code(), e.to_string()),
    };
    // Inflating is CPU-bound: a blocking thread reads, the async side stores.
    let reader = tokio::task::spawn_blocking(move || {
        let len = reader.len();
        let (mut zip, _) = match archive::inspect(reader, len, &limits) {
            Ok(z) => z,
            Err(e) => return send.blocking_send(Err(failure(e))).is_ok(),
        };
        let (mut entries, mut size) = (vec![], 0usize);
        for index in start..zip.len() {
            match archive::read_entry(&mut zip, index, limits.max_entry_bytes) {
                Err(e) => return send.blocking_send(Err(failure(e))).is_ok(),
                Ok(None) => {}
                Ok(Some(raw)) => {
                    size += raw.bytes.as_ref().map(Vec::len).unwrap_or(0);
                    entries.push(Entry {
                        index: raw.index as i32,
                        name: raw.name,
                        bytes: raw.bytes,
                    });
                }
            }
            if entries.len() >= BATCH_ENTRIES || size >= BATCH_BYTES || index + 1 == zip.len() {
                let batch = (std::mem::take(&mut entries), index as i32 + 1);
                size = 0;
                if send.blocking_send(Ok(batch)).is_err() {
                    return false;
                }
            }
        }
        true
    });
    let mut start = import.unpacked;
    while let Some(batch) = batches.recv().await {
        let (entries, next) = batch?;
        let at = Resume {
            start,
            next,
            cursor: None,
            found: 0,
        };
        let done = admit::admit_batch(
            &ctx.db,
            &ctx.blobs,
            &ctx.config.master_key,
            job.tenant_id,
            job.import_id,
            entries,
            at,
        )
        .await
        .map_err(transient)?;
        if done.stopped {
            return Ok(false);
        }
        start = next;
    }
    reader.await.map_err(|_| {
        Failure::Source(
            "invalid_archive",
            "the archive could not be read to the end".into(),
        )
    })?;
    Ok(true)
}

/// Stops (the import fails with `plan_limit`) before a batch would take the tenant past its
/// plan's document or storage limit: a bucket's size is only known while listing it.
async fn within_plan(
    ctx: &JobContext,
    job: &ImportJob,
    ent: &Entitlements,
    docs: i64,
    bytes: i64,
) -> Result<(), Failure> {
    let mut tx = ctx.db.begin_tenant(job.tenant_id).await.map_err(transient)?;
    let over = entitlements::over_plan_limit(&mut tx, ent, docs, bytes)
        .await
        .map_err(transient)?;
    tx.commit().await.map_err(transient)?;
    match over {
        None => Ok(()),
        Some(why) => Err(Failure::Source(
            "plan_limit",
            format!("the import stopped here, the documents before it are kept: {why}"),
        )),
    }
}

/// `Ok(true)`: every object is done; `Ok(false)`: stopped early (cancelled, or overtaken).
async fn unpack_bucket(
    ctx: &JobContext,
    job: &ImportJob,
    import: &Import,
    ent: &Entitlements,
) -> Result<bool, Failure> {
    let source: S3Source = serde_json::from_value(import.source_detail.clone())
        .map_err(|e| Failure::Source("invalid_source", e.to_string()))?;
    let mut tx = ctx.db.begin_tenant(job.tenant_id).await.map_err(transient)?;
    let sealed = imports::sealed_credentials(&mut tx, job.import_id)
        .await
        .map_err(transient)?;
    let cursor: Option<String> = sqlx::query_scalar("SELECT cursor FROM imports WHERE id = $1")
        .bind(job.import_id)
        .fetch_one(tx.conn())
        .await
        .map_err(transient)?;
    tx.commit().await.map_err(transient)?;
    let sealed = sealed.ok_or_else(|| {
        Failure::Source(
            "source_credentials_missing",
            "the source credentials are gone".into(),
        )
    })?;
    let creds = S3Credentials::open(&ctx.config.master_key, job.import_id, &sealed)
        .map_err(|e| Failure::Source("source_credentials_invalid", e.to_string()))?;
    let allow_http = ctx.config.ingest.import_allow_http;
    let store = source
        .client(&creds, allow_http)
        .await
        .map_err(|e| Failure::Source(e.code(), e.to_string()))?;
    let prefix = (!source.prefix.is_empty()).then(|| object_store::path::Path::from(source.prefix.as_str()));
    let mut listing = match &cursor {
        Some(c) => {
            // The cursor is a key as listed (already encoded): parse, do not re-encode.
            let offset = object_store::path::Path::parse(c.as_str())
                .map_err(|e| Failure::Source("invalid_source", e.to_string()))?;
            store.list_with_offset(prefix.as_ref(), &offset)
        }
        None => store.list(prefix.as_ref()),
    };
    // The same limit as an upload through the API: the plan's, within the deployment's.
    let limit = ent.max_upload_bytes.min(ctx.config.ingest.max_upload_bytes);
    let mut next = import.unpacked;
    let mut batch: Vec<Entry> = vec![];
    let mut batch_bytes = 0usize;
    let mut last_key = String::new();
    loop {
        let item = listing.next().await;
        let end = item.is_none();
        if let Some(meta) = item {
            let meta = meta.map_err(|e| {
                let (code, why) = source::describe(&e);
                Failure::Source(code, format!("listing the bucket failed: {why}"))
            })?;
            let name = meta.location.to_string();
            let bytes = if meta.size > limit {
                Err((
                    "too_large",
                    format!("the file is larger than the limit of {limit} bytes"),
                ))
            } else {
                read_capped(store.as_ref(), &meta.location, limit).await
            };
            batch_bytes += bytes.as_ref().map(Vec::len).unwrap_or(0);
            batch.push(Entry {
                index: next + batch.len() as i32,
                name: name.clone(),
                bytes,
            });
            last_key = name;
            if next as usize + batch.len() > ent.max_import_entries {
                return Err(Failure::Source(
                    "too_many_entries",
                    format!(
                        "the prefix holds more than {} objects, the most one import takes",
                        ent.max_import_entries
                    ),
                ));
            }
        }
        if batch.len() >= BATCH_ENTRIES || batch_bytes >= BATCH_BYTES || (end && !batch.is_empty()) {
            let found = batch.len() as i32;
            within_plan(ctx, job, ent, i64::from(found), batch_bytes as i64).await?;
            let at = Resume {
                start: next,
                next: next + found,
                cursor: Some(&last_key),
                found,
            };
            let done = admit::admit_batch(
                &ctx.db,
                &ctx.blobs,
                &ctx.config.master_key,
                job.tenant_id,
                job.import_id,
                std::mem::take(&mut batch),
                at,
            )
            .await
            .map_err(transient)?;
            if done.stopped {
                return Ok(false);
            }
            next += found;
            batch_bytes = 0;
        }
        if end {
            return Ok(true);
        }
    }
}

/// Reads one object, streaming, and stops at `limit` bytes whatever the listing claimed
/// its size was (a hostile or broken server can list 10 bytes and send 10 GB).
async fn read_capped(
    store: &dyn object_store::ObjectStore,
    at: &object_store::path::Path,
    limit: u64,
) -> Result<Vec<u8>, (&'static str, String)> {
    let too_large = || {
        (
            "too_large",
            format!("the file is larger than the limit of {limit} bytes"),
        )
    };
    let got = store
        .get(at)
        .await
        .map_err(|e| ("unreadable", source::describe(&e).1))?;
    let mut stream = got.into_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ("unreadable", source::describe(&e).1))?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
