//! `export`: writes one export's package into the customer's bucket
//! (`platform::exports::run`). A delivery after a crash resumes from the files already
//! recorded; an export that keeps failing for a transient reason gives up after a few
//! attempts (its credentials are erased).

use crate::context::Ctx;
use apalis::prelude::{AbortError, BoxDynError, Data};
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::exports::job::ExportJob;
use docket_platform::exports::run::{self, ExportContext, Finished};
use docket_platform::identity::keyring::KeyRing;

/// Attempts (crashes included) before the export fails.
const MAX_ATTEMPTS: i32 = 5;

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
    match run::run(cx, job.tenant_id, job.export_id).await {
        Ok(Finished::Done { manifest_sha256 }) => {
            tracing::info!(export = %job.export_id, %manifest_sha256, "export done");
            Ok(())
        }
        Ok(Finished::Failed(code)) => {
            tracing::warn!(export = %job.export_id, code, "export failed at its destination");
            Ok(())
        }
        Ok(Finished::Ended) => Ok(()),
        Err(e) => {
            let attempts = attempts(&ctx, &job).await;
            tracing::warn!(export = %job.export_id, attempts, error = %e, "export attempt failed");
            if attempts >= MAX_ATTEMPTS {
                give_up(&ctx, &job).await;
                return Err(AbortError::new(e).into());
            }
            Err(e.into())
        }
    }
}

async fn attempts(ctx: &Ctx, job: &ExportJob) -> i32 {
    let Ok(mut tx) = ctx.db.begin_tenant(job.tenant_id).await else {
        return 0;
    };
    sqlx::query_scalar("SELECT attempts FROM exports WHERE id = $1")
        .bind(job.export_id)
        .fetch_optional(tx.conn())
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

async fn give_up(ctx: &Ctx, job: &ExportJob) {
    let Ok(mut tx) = ctx.db.begin_tenant(job.tenant_id).await else {
        return;
    };
    let n = sqlx::query(
        "UPDATE exports SET status = 'failed', credentials = NULL, finished_at = now(), error_code = 'export_failed',
                            error_message = 'the export kept failing; request it again'
         WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind(job.export_id)
    .execute(tx.conn())
    .await
    .map(|r| r.rows_affected())
    .unwrap_or(0);
    if n == 1 {
        let ev = Event::new("exports.failed", Outcome::Failed, Actor::System)
            .target(format!("export:{}", job.export_id))
            .reason("export_failed");
        if ctx.auditor.tenant(&mut tx, ev).await.is_ok() {
            let _ = tx.commit().await;
        }
    }
}
