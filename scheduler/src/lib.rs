//! Docket's scheduler: the process that fires periodic work and feeds the queues. Today it
//! runs the import feeder (imported documents move from PostgreSQL into the bulk lane in
//! bounded, per-tenant-fair slices; see `platform::imports::feeder`), the reaper (work whose
//! queue entry vanished is pushed again or failed; see `platform::jobs::reaper`) and
//! heartbeats, and the calendar (`calendar`: monthly invoices; quarterly access reviews
//! join it). Any number of schedulers may run: one round of each at a time holds its lock,
//! and exactly one leads the calendar.

pub mod calendar;

use docket_platform::audit::Auditor;
use docket_platform::blobs::BlobStore;
use docket_platform::config::Config;
use docket_platform::db::{ControlDb, Db, DbError};
use docket_platform::heartbeat;
use docket_platform::identity::keyring::KeyRing;
use docket_platform::imports::feeder::{self, FeederSettings};
use docket_platform::jobs::{JobQueue, reaper};
use docket_platform::redis_conn::{Redis, RedisError};
use serde_json::json;
use std::future::Future;

/// The scheduler could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Redis URL.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// Object storage configuration.
    #[error(transparent)]
    Blobs(#[from] docket_platform::blobs::BlobError),
}

/// The feeder's settings from the configuration.
pub fn feeder_settings(config: &Config) -> FeederSettings {
    FeederSettings {
        max_in_flight: config.ingest.feed_max_in_flight,
        interval: config.ingest.feed_interval,
        ..FeederSettings::default()
    }
}

/// Feeds and heartbeats as `scheduler-{pid}` until `shutdown` resolves.
pub async fn run(config: &Config, shutdown: impl Future<Output = ()>) -> Result<(), SchedulerError> {
    let db = Db::connect_lazy(&config.database.app_url, 4)?;
    let control = ControlDb::connect_lazy(&config.database.control_url, 4)?;
    let redis = Redis::new(&config.redis.url, &config.redis.prefix)?;
    let queue = JobQueue::new(redis, config.ingest.job_max_attempts);
    let name = format!("scheduler-{}", std::process::id());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |rx: tokio::sync::watch::Receiver<bool>| async move {
        let mut rx = rx;
        let _ = rx.wait_for(|s| *s).await;
    };
    let feeding = tokio::spawn(feeder::run(
        control.clone(),
        db.clone(),
        queue.clone(),
        feeder_settings(config),
        stopped(stop_rx.clone()),
    ));
    let reaping = tokio::spawn(reaper::run(
        control.clone(),
        db.clone(),
        queue.clone(),
        config.ingest.reaper.clone(),
        stopped(stop_rx.clone()),
    ));
    let leading = calendar::Leading::default();
    let services = calendar::Services {
        control,
        queue,
        auditor: Auditor::new(config.master_key.clone()),
        blobs: BlobStore::from_config(&config.objects)?,
        keys: KeyRing::new(
            db.clone(),
            config.master_key.clone(),
            config.auth.key_rotation_window,
        ),
    };
    let calendar = tokio::spawn(calendar::run(
        services,
        config.billing.clone(),
        config.database.control_url.clone(),
        leading.clone(),
        stopped(stop_rx),
    ));
    let mut tick = tokio::time::interval(config.heartbeat_interval);
    tokio::pin!(shutdown);
    tracing::info!(%name, "scheduler started");
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {
                let components = json!({ "leader": leading.get() });
                if let Err(e) = heartbeat::beat(&db, &name, "scheduler", &components).await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = feeding.await;
    let _ = reaping.await;
    let _ = calendar.await;
    heartbeat::remove(&db, &name).await?;
    tracing::info!(%name, "scheduler stopped");
    Ok(())
}
