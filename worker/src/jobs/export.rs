//! `export`: writes one export's package into the customer's bucket or Docket's storage
//! (`platform::exports::run`), or, with `purge`, deletes a download package that is due
//! (`platform::exports::purge`). A delivery after a crash resumes from the files already
//! recorded; a second delivery while one runs does nothing (the export's lease); an
//! export that keeps failing fails for good after `run::MAX_ATTEMPTS` attempts, crashes
//! included (its credentials are erased).

use crate::context::Ctx;
use apalis::prelude::{BoxDynError, Data};
use docket_platform::exports::job::ExportJob;
use docket_platform::exports::purge::{self, Purged};
use docket_platform::exports::run::{self, ExportContext, Finished};
use docket_platform::identity::keyring::KeyRing;

/// The apalis handler.
pub async fn handle(job: ExportJob, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    let ctx: Ctx = (*ctx).clone();
    let keys = KeyRing::new(
        ctx.db.clone(),
        ctx.config.master_key.clone(),
        ctx.config.auth.key_rotation_window,
    );
    let cx = ExportContext {
        db: &ctx.db,
        blobs: &ctx.blobs,
        master: &ctx.config.master_key,
        keys: &keys,
        auditor: &ctx.auditor,
        allow_http: ctx.config.ingest.import_allow_http,
    };
    if job.purge {
        return match purge::purge(cx, job.tenant_id, job.export_id, chrono::Utc::now()).await {
            Ok(Purged::Deleted(objects)) => {
                tracing::info!(export = %job.export_id, objects, "download package deleted");
                Ok(())
            }
            Ok(Purged::NotDue) => Ok(()),
            // A delivery still writes it (a cancel not seen yet): the next calendar step
            // queues the purge again (a retry here could outlast the writer's hold and die).
            Ok(Purged::Busy) => {
                tracing::info!(export = %job.export_id, "export still being written; purge left to the next calendar step");
                Ok(())
            }
            Err(e) => Err(e.into()),
        };
    }
    match run::run(cx, job.tenant_id, job.export_id).await {
        Ok(Finished::Done { manifest_sha256 }) => {
            tracing::info!(export = %job.export_id, %manifest_sha256, "export done");
            Ok(())
        }
        Ok(Finished::Failed(code)) => {
            tracing::warn!(export = %job.export_id, code, "export failed");
            Ok(())
        }
        Ok(Finished::Ended) => Ok(()),
        // Retried by the queue; the attempt count (crashes included) ends it.
        Err(e) => {
            tracing::warn!(export = %job.export_id, error = %e, "export attempt failed; retrying");
            Err(e.into())
        }
    }
}
