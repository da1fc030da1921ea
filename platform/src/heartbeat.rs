//! Heartbeats of background processes, stored in PostgreSQL so that the API can report
//! on components it deliberately never touches itself (the vector store lives in workers).

use crate::db::{Db, DbError};
use serde_json::Value;
use std::time::Duration;

/// Records that process `name` of `kind` is alive, with the health of its components,
/// e.g. `{"vector_store": "ok"}`.
pub async fn beat(db: &Db, name: &str, kind: &str, components: &Value) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO service_heartbeats (name, kind, components, last_seen)
         VALUES ($1, $2, $3, now())
         ON CONFLICT (name) DO UPDATE SET kind = $2, components = $3, last_seen = now()",
    )
    .bind(name)
    .bind(kind)
    .bind(components)
    .execute(db.platform_pool())
    .await?;
    Ok(())
}

/// Removes a process's heartbeat (clean shutdown).
pub async fn remove(db: &Db, name: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM service_heartbeats WHERE name = $1")
        .bind(name)
        .execute(db.platform_pool())
        .await?;
    Ok(())
}

/// The sum of a numeric component over live processes (counters that workers report in
/// their heartbeat, such as isolation violations, rendered by the API's `/metrics`).
pub async fn component_sum(db: &Db, component: &str, max_age: Duration) -> Result<i64, DbError> {
    let sum: Option<i64> = sqlx::query_scalar(
        "SELECT sum((components ->> $1)::bigint)::bigint FROM service_heartbeats
         WHERE components ? $1 AND last_seen > now() - make_interval(secs => $2)",
    )
    .bind(component)
    .bind(max_age.as_secs_f64())
    .fetch_one(db.platform_pool())
    .await?;
    Ok(sum.unwrap_or(0))
}

/// The health a fresh heartbeat reports for `component` ("ok" or an error text), from any
/// process that beat within `max_age`; `None` when no live process reports it.
pub async fn component_status(
    db: &Db,
    component: &str,
    max_age: Duration,
) -> Result<Option<String>, DbError> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT components ->> $1 FROM service_heartbeats
         WHERE components ? $1 AND last_seen > now() - make_interval(secs => $2)
         ORDER BY (components ->> $1) = 'ok' DESC, last_seen DESC LIMIT 1",
    )
    .bind(component)
    .bind(max_age.as_secs_f64())
    .fetch_optional(db.platform_pool())
    .await?;
    Ok(row.and_then(|r| r.0))
}

/// Names of live processes (beat within `max_age`) whose `component` reports anything but
/// `ok` (e.g. a worker whose job queues are reconnecting).
pub async fn not_ok(db: &Db, component: &str, max_age: Duration) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT name FROM service_heartbeats
         WHERE components ? $1 AND components ->> $1 <> 'ok'
           AND last_seen > now() - make_interval(secs => $2)
         ORDER BY name",
    )
    .bind(component)
    .bind(max_age.as_secs_f64())
    .fetch_all(db.platform_pool())
    .await?)
}
