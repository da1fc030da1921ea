//! One router per resource.

pub mod access_reviews;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod consents;
pub mod deletions;
pub mod deletions_views;
pub mod documents;
pub mod export_downloads;
pub mod exports;
pub mod health;
pub mod import_sources;
pub mod imports;
pub mod invoices;
pub mod me;
pub mod ops;
pub mod ops_limits;
pub mod policy;
pub mod queries;
pub mod stripe_webhook;
pub mod switches;
pub mod tenant_deletion;
pub mod tenant_deletion_views;
pub mod uploads;
pub mod usage;
pub mod users;

use crate::auth::TenantAuth;
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::StatusCode;
use docket_platform::entitlements::{self, Entitlements};

/// Refuses (403 `plan_limit`, audited, naming the limit) what would add `docs` documents of
/// `bytes` bytes past the plan's document or storage limit.
pub async fn within_plan_limits(
    state: &AppState,
    auth: &TenantAuth,
    ent: &Entitlements,
    docs: i64,
    bytes: i64,
) -> Result<(), ApiError> {
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let over = entitlements::over_plan_limit(&mut tx, ent, docs, bytes).await?;
    tx.commit().await?;
    match over {
        None => Ok(()),
        Some(msg) => Err(auth
            .refuse(state, "plan.limit", StatusCode::FORBIDDEN, "plan_limit", msg)
            .await),
    }
}

/// Parses a path id; anything unparsable is simply not found (no oracle, no 500).
pub fn parse_id(s: &str, what: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::try_parse(s).map_err(|_| ApiError::not_found(what))
}

/// A page request of a newest-first list: `limit` (1–200, default 50) and an optional
/// cursor `(created_at, id)` as this API returned it.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Rows to return.
    pub limit: i64,
    /// Rows strictly older than this.
    pub after: Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>,
}

impl Page {
    /// Validates `limit` and `cursor` (400 `invalid_limit` / `invalid_cursor`).
    pub fn parse(limit: Option<i64>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::bad_request("invalid_limit", "limit must be 1 to 200"));
        }
        let after = match cursor {
            None => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "the cursor is not one this API returned")
            })?),
        };
        Ok(Self { limit, after })
    }

    /// The cursor of the next page: present when this page came back full.
    pub fn next(
        &self,
        returned: usize,
        last: Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>,
    ) -> Option<String> {
        let (at, id) = last.filter(|_| returned as i64 == self.limit)?;
        Some(format!("{}_{id}", at.timestamp_micros()))
    }
}

fn decode_cursor(c: &str) -> Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> {
    let (micros, id) = c.split_once('_')?;
    Some((
        chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        uuid::Uuid::try_parse(id).ok()?,
    ))
}
