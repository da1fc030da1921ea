//! Consent records: a tenant's decisions for named processing purposes, each a new row
//! (history is never edited), the latest row per purpose being the current state. The
//! governance chain refuses a feature that needs a purpose without a current grant
//! (403 `consent_required`); it reads the granted purposes with the entitlements, so a
//! revocation applies on the next request.

use crate::db::{DbError, TenantTx};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A processing purpose a tenant grants or refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[schema(as = ConsentPurpose)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Tenant content (questions, retrieved passages) sent to a language model to generate
    /// answers.
    ExternalLlmProcessing,
    /// The tenant's usage analysed to improve the product.
    UsageAnalytics,
}

impl Purpose {
    /// Every purpose, in the order the API lists them.
    pub const ALL: [Purpose; 2] = [Purpose::ExternalLlmProcessing, Purpose::UsageAnalytics];

    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Purpose::ExternalLlmProcessing => "external_llm_processing",
            Purpose::UsageAnalytics => "usage_analytics",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Purpose {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Purpose::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = Purpose::ALL.iter().map(Purpose::as_str).collect();
            format!("unknown purpose {s:?}: expected one of {}", known.join(", "))
        })
    }
}

/// The version of the terms a decision was made under: 1 to 64 letters, digits, `.`, `_`
/// or `-`, starting with a letter or digit (e.g. `2026-10`, `v3.1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermsVersion(String);

impl TermsVersion {
    /// Validates `s`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&s.len())
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "terms_version {s:?} is not a version: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            ))
        }
    }

    /// The version as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One decision, as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq, utoipa::ToSchema)]
#[schema(as = ConsentDecision)]
pub struct Decision {
    /// Decision id.
    pub id: Uuid,
    /// `external_llm_processing`, `usage_analytics`.
    pub purpose: String,
    /// Granted (true) or refused/revoked (false).
    pub granted: bool,
    /// The terms version decided on.
    pub terms_version: String,
    /// Who: `user:{id}` or `api_key:{id}`.
    pub decided_by: String,
    /// When.
    pub decided_at: DateTime<Utc>,
}

const COLS: &str = "id, purpose, granted, terms_version, decided_by, decided_at";

/// Records a decision (a new row; earlier ones stay as they are).
pub async fn record(
    tx: &mut TenantTx,
    purpose: Purpose,
    granted: bool,
    terms: &TermsVersion,
    decided_by: &str,
) -> Result<Decision, DbError> {
    let sql = format!(
        "INSERT INTO consents (id, tenant_id, purpose, granted, terms_version, decided_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLS}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(Uuid::new_v4())
        .bind(tx.tenant_id())
        .bind(purpose.as_str())
        .bind(granted)
        .bind(terms.as_str())
        .bind(decided_by)
        .fetch_one(tx.conn())
        .await?)
}

/// The latest decision per purpose (`None`: never decided, which is not a grant).
pub async fn current(tx: &mut TenantTx) -> Result<Vec<(Purpose, Option<Decision>)>, DbError> {
    let sql = format!("SELECT DISTINCT ON (purpose) {COLS} FROM consents ORDER BY purpose, seq DESC");
    let latest: Vec<Decision> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(tx.conn())
        .await?;
    Ok(Purpose::ALL
        .into_iter()
        .map(|p| (p, latest.iter().find(|d| d.purpose == p.as_str()).cloned()))
        .collect())
}

/// Every decision (of `purpose`, if given), newest first.
pub async fn history(tx: &mut TenantTx, purpose: Option<Purpose>) -> Result<Vec<Decision>, DbError> {
    let sql =
        format!("SELECT {COLS} FROM consents WHERE ($1::text IS NULL OR purpose = $1) ORDER BY seq DESC");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(purpose.map(|p| p.as_str()))
        .fetch_all(tx.conn())
        .await?)
}

/// SQL for the purposes the tenant `t.id` currently grants, as a `text[]` (read by the
/// entitlements query, so the governance chain needs no second round trip).
pub const GRANTED_SQL: &str = "COALESCE((SELECT array_agg(c.purpose) FROM (
        SELECT DISTINCT ON (purpose) purpose, granted FROM consents
        WHERE tenant_id = t.id ORDER BY purpose, seq DESC) c WHERE c.granted), '{}')";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_round_trip_and_unknown_ones_are_named() {
        for p in Purpose::ALL {
            assert_eq!(p.as_str().parse::<Purpose>(), Ok(p));
        }
        let e = "marketing".parse::<Purpose>().expect_err("unknown");
        assert!(
            e.contains("external_llm_processing") && e.contains("marketing"),
            "{e}"
        );
    }

    #[test]
    fn terms_versions_are_validated_on_construction() {
        for ok in ["1", "2026-10", "v3.1_b"] {
            assert!(TermsVersion::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-1", "v 2", "é", &"x".repeat(65)] {
            assert!(TermsVersion::parse(bad).is_err(), "{bad:?}");
        }
    }
}
