//! Docket's scheduler: the process that fires periodic runs (monthly invoices, quarterly
//! access reviews) once those jobs exist. Today it registers its heartbeat so operators see
//! it alive, and stops cleanly on SIGTERM.

use docket_platform::config::Config;
use docket_platform::db::{Db, DbError};
use docket_platform::heartbeat;
use serde_json::json;
use std::future::Future;

/// Heartbeats as `scheduler-{pid}` until `shutdown` resolves.
pub async fn run(config: &Config, shutdown: impl Future<Output = ()>) -> Result<(), DbError> {
    let db = Db::connect_lazy(&config.database.app_url, 2)?;
    let name = format!("scheduler-{}", std::process::id());
    let mut tick = tokio::time::interval(config.heartbeat_interval);
    tokio::pin!(shutdown);
    tracing::info!(%name, "scheduler started");
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {
                if let Err(e) = heartbeat::beat(&db, &name, "scheduler", &json!({})).await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
        }
    }
    heartbeat::remove(&db, &name).await?;
    tracing::info!(%name, "scheduler stopped");
    Ok(())
}
