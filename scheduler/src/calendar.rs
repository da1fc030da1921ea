//! The calendar: periodic work that must happen once per period however many schedulers
//! run. Exactly one scheduler leads: it holds a PostgreSQL session advisory lock on a
//! connection of its own, so a leader that dies (its connection closes) is replaced by
//! the next scheduler to try, within one leader poll. What is due is derived from the
//! calendar and from what the database holds (`billing::run::catch_up`), never from when
//! this process last ran: a month missed while everything was down is caught up on start.
//!
//! Periodic jobs: `invoice` for every tenant, monthly, for the month before, and again for
//! invoices whose Stripe push is unfinished; `export` again for exports whose queue entry
//! may be lost, and `export` with `purge` for download packages that are due (expired, or
//! of a failed or cancelled export); `delete` for tenant deletions whose grace period has
//! ended (and for deletions whose queue entry may be lost); tenant deletion requests never
//! confirmed are cancelled; every `DOCKET_AUDIT_CHECKPOINT_SECS` a signed checkpoint of
//! every audit chain's head goes to object storage (`audit::checkpoint`); `access_review`
//! for every tenant, quarterly, for the quarter before (and the three before it, so missed
//! quarters are caught up), and again for reviews whose queue entry may be lost.

use docket_platform::audit::{Auditor, checkpoint};
use docket_platform::billing::run;
use docket_platform::blobs::BlobStore;
use docket_platform::config::BillingConfig;
use docket_platform::db::ControlDb;
use docket_platform::identity::keyring::KeyRing;
use docket_platform::jobs::JobQueue;
use sqlx::pool::PoolConnection;
use sqlx::{Postgres, postgres::PgPoolOptions};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The lock only the leading scheduler holds.
const LEADER_LOCK: &str = "docket:scheduler:leader";

/// A run younger than this is left to finish before the same month is started again.
const QUIET: Duration = Duration::from_secs(600);

/// What the calendar's steps work with.
#[derive(Debug, Clone)]
pub struct Services {
    /// The control role's pool.
    pub control: ControlDb,
    /// The job queues.
    pub queue: JobQueue,
    /// The audit trail.
    pub auditor: Auditor,
    /// Object storage (audit checkpoints live under its platform prefix).
    pub blobs: BlobStore,
    /// The platform's signing keys (audit checkpoints are signed with the active one).
    pub keys: KeyRing,
}

/// Whether this process leads, shared with its heartbeat.
#[derive(Debug, Clone, Default)]
pub struct Leading(Arc<AtomicBool>);

impl Leading {
    /// True while this process holds the leader lock.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, v: bool) {
        self.0.store(v, Ordering::Relaxed);
    }
}

/// Tries to take the leader lock on a connection of its own; `Some` holds it.
async fn try_lead(pool: &sqlx::PgPool) -> Option<PoolConnection<Postgres>> {
    let mut conn = pool.acquire().await.ok()?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(LEADER_LOCK)
        .fetch_one(&mut *conn)
        .await
        .ok()?;
    got.then_some(conn)
}

/// The leader's connection still answers (so the lock is still ours).
async fn still_leading(conn: &mut PoolConnection<Postgres>) -> bool {
    sqlx::query("SELECT 1").execute(&mut **conn).await.is_ok()
}

/// Runs the calendar until `stop` resolves: tries to lead every `leader_poll`; while
/// leading, does a calendar step at once and then every `calendar_interval`.
pub async fn run(
    services: Services,
    settings: BillingConfig,
    control_url: docket_platform::secret::Secret<String>,
    leading: Leading,
    stop: impl Future<Output = ()>,
) {
    // The lock's connection is apart from the work's pool: the lock is held by a session,
    // and it must not go back to a pool where other work would run on it.
    let lock_pool = match connect_lock_pool(&control_url) {
        Some(p) => p,
        None => return,
    };
    tokio::pin!(stop);
    let mut held: Option<PoolConnection<Postgres>> = None;
    let mut next_step = tokio::time::Instant::now();
    // Checkpoints are taken at once by a new leader, then every interval.
    let mut checkpointed: Option<tokio::time::Instant> = None;
    loop {
        let alive = match held.as_mut() {
            Some(conn) => Some(still_leading(conn).await),
            None => None,
        };
        match alive {
            Some(true) => {}
            Some(false) => {
                tracing::warn!("lost the scheduler leader lock (its connection failed)");
                // Close it rather than return it: the session may still hold the lock.
                if let Some(c) = held.take() {
                    drop(c.detach());
                }
                leading.set(false);
            }
            None => {
                if let Some(c) = try_lead(&lock_pool).await {
                    tracing::info!("this scheduler now leads the calendar");
                    held = Some(c);
                    leading.set(true);
                    next_step = tokio::time::Instant::now();
                }
            }
        }
        if held.is_some() && tokio::time::Instant::now() >= next_step {
            // A long step (a large run feeding its slices) still yields to shutdown; what it
            // left undone is found by the next leader's step.
            tokio::select! {
                _ = step(&services, &settings, &mut checkpointed) => {}
                _ = &mut stop => break,
            }
            next_step = tokio::time::Instant::now() + settings.calendar_interval;
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(settings.leader_poll) => {}
        }
    }
    if let Some(c) = held.take() {
        // Closing the session releases the lock at once for the next leader.
        let _ = sqlx::Connection::close(c.detach()).await;
    }
    leading.set(false);
}

fn connect_lock_pool(url: &docket_platform::secret::Secret<String>) -> Option<sqlx::PgPool> {
    let opts = match url.expose().parse::<sqlx::postgres::PgConnectOptions>() {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "cannot parse the control database URL; the calendar does not run");
            return None;
        }
    };
    Some(
        PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(opts),
    )
}

/// One look at the calendar: every period due and not done is started.
async fn step(
    services: &Services,
    settings: &BillingConfig,
    checkpointed: &mut Option<tokio::time::Instant>,
) {
    let (control, queue, auditor) = (&services.control, &services.queue, &services.auditor);
    if checkpointed.is_none_or(|at| at.elapsed() >= settings.audit_checkpoint_interval) {
        match checkpoint::take(control, &services.blobs, &services.keys, chrono::Utc::now()).await {
            Ok(n) => {
                *checkpointed = Some(tokio::time::Instant::now());
                if n > 0 {
                    tracing::info!(chains = n, "audit checkpoints taken");
                }
            }
            Err(e) => tracing::warn!(error = %e, "audit checkpoints not taken; retried at the next step"),
        }
    }
    let quiet = chrono::Duration::from_std(QUIET).unwrap_or_default();
    match run::catch_up(
        control,
        queue,
        auditor,
        chrono::Utc::now(),
        settings.catch_up_months,
        quiet,
    )
    .await
    {
        Ok(runs) => {
            for r in runs {
                tracing::info!(period = %r.period, queued = r.queued, existing = r.existing, "billing run started");
            }
        }
        Err(e) => tracing::warn!(error = %e, "billing calendar step failed; retried at the next step"),
    }
    match docket_platform::exports::job::requeue_stale(control, queue, chrono::Utc::now(), quiet).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(exports = n, "unfinished exports queued again"),
        Err(e) => tracing::warn!(error = %e, "could not queue unfinished exports; retried at the next step"),
    }
    match docket_platform::deletions::job::requeue_stale(control, queue, chrono::Utc::now(), quiet).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deletions = n, "unfinished deletions queued again"),
        Err(e) => {
            tracing::warn!(error = %e, "could not queue unfinished deletions; retried at the next step")
        }
    }
    match docket_platform::deletions::tenant::queue_due(control, queue, chrono::Utc::now()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(tenants = n, "tenant deletions past their grace period queued"),
        Err(e) => {
            tracing::warn!(error = %e, "could not queue tenant deletions due; retried at the next step")
        }
    }
    if let Err(e) = docket_platform::deletions::tenant::forget_own_tasks(control, queue).await {
        tracing::warn!(error = %e, "could not remove ended tenant deletions' tasks; retried at the next step");
    }
    match docket_platform::exports::purge::queue_due(control, queue, chrono::Utc::now()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(packages = n, "download packages due queued for deletion"),
        Err(e) => {
            tracing::warn!(error = %e, "could not queue download packages due; retried at the next step")
        }
    }
    match docket_platform::access_reviews::schedule::due(control, queue, chrono::Utc::now()).await {
        Ok(runs) => {
            for r in runs.iter().filter(|r| r.made > 0) {
                tracing::info!(quarter = %r.quarter, made = r.made, queued = r.queued, "access reviews made");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not queue access reviews; retried at the next step"),
    }
    match run::resume_pushes(control, queue, chrono::Utc::now(), quiet).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(invoices = n, "unfinished Stripe pushes queued again"),
        Err(e) => {
            tracing::warn!(error = %e, "could not queue unfinished Stripe pushes; retried at the next step")
        }
    }
}
