//! Quarterly access reviews: who can reach a tenant's data, how they used it in the quarter,
//! and what an owner should look at again (dormant and privileged accounts, API keys never
//! used or expired but still present). The `access_review` job builds the report from the
//! membership tables and the audit trail ([`report`]), signs it with the platform key set
//! and renders its PDF ([`pdf`]); an owner then keeps (with a reason) or revokes each
//! flagged finding and completes the review ([`decide`]). The calendar makes one review per
//! tenant and quarter and catches missed quarters up ([`schedule`]).

pub mod decide;
pub mod issue;
pub mod job;
pub mod model;
pub mod pdf;
pub mod report;
pub mod schedule;

use crate::db::{DbError, TenantTx};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use std::fmt;
use uuid::Uuid;

/// What the signature covers before the report's canonical JSON.
pub const SIGNING_CONTEXT: &[u8] = b"docket-access-review/1\n";
/// The report's `format`.
pub const FORMAT: &str = "docket-access-review/1";
/// The current addresses of the tenant's users `ids` (what the PDF and the API's view show
/// for the ids the signed report holds).
pub async fn addresses(
    tx: &mut TenantTx,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, DbError> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, email FROM users WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(tx.conn())
        .await?;
    Ok(rows.into_iter().collect())
}

/// An open review issued longer ago than this is overdue.
pub const OVERDUE_DAYS: i64 = 30;

/// A calendar quarter (UTC), e.g. `2026Q4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    year: i32,
    q: u32,
}

impl Quarter {
    /// Parses `YYYYQn` (years 2000–2999, n 1–4). The error is a sentence for the caller.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a quarter: expected YYYYQn, e.g. 2026Q4");
        let (y, n) = s.split_once(['Q', 'q']).ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let q: u32 = n.parse().map_err(|_| bad())?;
        if y.len() != 4 || n.len() != 1 || !(2000..=2999).contains(&year) || !(1..=4).contains(&q) {
            return Err(bad());
        }
        Ok(Self { year, q })
    }

    /// The quarter an instant falls in.
    pub fn of(t: DateTime<Utc>) -> Self {
        Self {
            year: t.year(),
            q: (t.month() - 1) / 3 + 1,
        }
    }

    /// The quarter before.
    pub fn previous(&self) -> Self {
        match self.q {
            1 => Self {
                year: self.year - 1,
                q: 4,
            },
            q => Self {
                year: self.year,
                q: q - 1,
            },
        }
    }

    /// Its first instant.
    pub fn start(&self) -> DateTime<Utc> {
        let d = NaiveDate::from_ymd_opt(self.year, (self.q - 1) * 3 + 1, 1).expect("validated quarter");
        Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
    }

    /// The first instant after it.
    pub fn end(&self) -> DateTime<Utc> {
        match self.q {
            4 => Self {
                year: self.year + 1,
                q: 1,
            },
            q => Self {
                year: self.year,
                q: q + 1,
            },
        }
        .start()
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}Q{}", self.year, self.q)
    }
}

/// Where a review stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = AccessReviewStatus)]
pub enum Status {
    /// Made and queued; the report is not built yet.
    Queued,
    /// The job is building it.
    Running,
    /// Issued, awaiting the owner's decisions.
    Open,
    /// Closed by an owner.
    Completed,
    /// The job gave up (the next run queues it again).
    Failed,
}

impl Status {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Open => "open",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    /// The stored name's status (`None` for a name the database's CHECK would refuse).
    pub fn parse(s: &str) -> Option<Self> {
        [
            Status::Queued,
            Status::Running,
            Status::Open,
            Status::Completed,
            Status::Failed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A review as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = AccessReview)]
pub struct Review {
    /// Review id.
    pub id: Uuid,
    /// `YYYYQn`.
    pub quarter: String,
    /// First instant reviewed.
    pub period_start: DateTime<Utc>,
    /// First instant after it.
    pub period_end: DateTime<Utc>,
    /// Where it stands.
    pub status: Status,
    /// Findings flagged (once issued).
    pub findings: Option<i32>,
    /// Findings decided so far.
    pub decided: i64,
    /// Open and issued more than [`OVERDUE_DAYS`] ago.
    pub overdue: bool,
    /// SHA-256 of the signed report.
    pub report_sha256: Option<String>,
    /// Who completed it (`user:{id}`).
    pub completed_by: Option<String>,
    /// When.
    pub completed_at: Option<DateTime<Utc>>,
    /// When the report was issued.
    pub issued_at: Option<DateTime<Utc>>,
    /// Why the job gave up, if it did.
    pub error_message: Option<String>,
    /// When the review was made.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    quarter: String,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    status: String,
    findings: Option<i32>,
    decided: i64,
    report_sha256: Option<String>,
    completed_by: Option<String>,
    completed_at: Option<DateTime<Utc>>,
    issued_at: Option<DateTime<Utc>>,
    error_message: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<Row> for Review {
    fn from(r: Row) -> Self {
        // The column's CHECK allows only the names above.
        let status = Status::parse(&r.status).unwrap_or(Status::Failed);
        let overdue = status == Status::Open
            && r.issued_at
                .is_some_and(|at| Utc::now() - at > chrono::Duration::days(OVERDUE_DAYS));
        Self {
            id: r.id,
            quarter: r.quarter,
            period_start: r.period_start,
            period_end: r.period_end,
            status,
            findings: r.findings,
            decided: r.decided,
            overdue,
            report_sha256: r.report_sha256,
            completed_by: r.completed_by,
            completed_at: r.completed_at,
            issued_at: r.issued_at,
            error_message: r.error_message,
            created_at: r.created_at,
        }
    }
}

const LIST: &str = "SELECT r.id, r.quarter, r.period_start, r.period_end, r.status, r.findings,
        (SELECT count(*) FROM access_review_decisions d WHERE d.review_id = r.id) AS decided,
        r.report_sha256, r.completed_by, r.completed_at, r.issued_at, r.error_message, r.created_at
     FROM access_reviews r";

/// The tenant's reviews, newest quarter first.
pub async fn list(tx: &mut TenantTx) -> Result<Vec<Review>, DbError> {
    let sql = format!("{LIST} ORDER BY r.quarter DESC");
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(tx.conn())
        .await?;
    Ok(rows.into_iter().map(Review::from).collect())
}

/// One review of the tenant (`None`: not this tenant's, or no such review).
pub async fn get(tx: &mut TenantTx, id: Uuid) -> Result<Option<Review>, DbError> {
    let sql = format!("{LIST} WHERE r.id = $1");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    Ok(row.map(Review::from))
}

/// The signed report of an issued review, exactly as issued.
pub async fn report_of(tx: &mut TenantTx, id: Uuid) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT report FROM access_reviews WHERE id = $1 AND report IS NOT NULL")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?,
    )
}

/// Open reviews of every tenant issued more than [`OVERDUE_DAYS`] ago, oldest first:
/// (tenant id, slug, review id, quarter, issued at).
pub async fn overdue(
    control: &crate::db::ControlDb,
) -> Result<Vec<(Uuid, String, Uuid, String, DateTime<Utc>)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT t.id, t.slug, r.id, r.quarter, r.issued_at FROM access_reviews r JOIN tenants t ON t.id = r.tenant_id
         WHERE r.status = 'open' AND r.issued_at < now() - make_interval(days => $1)
         ORDER BY r.issued_at",
    )
    .bind(OVERDUE_DAYS as i32)
    .fetch_all(control.pool())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_parse_bound_and_step_back_across_years() {
        let q = Quarter::parse("2026Q4").expect("q");
        assert_eq!(q.to_string(), "2026Q4");
        assert_eq!(q.start().to_rfc3339(), "2026-10-01T00:00:00+00:00");
        assert_eq!(q.end().to_rfc3339(), "2027-01-01T00:00:00+00:00");
        assert_eq!(Quarter::parse("2027Q1").expect("q").previous(), q);
        assert_eq!(Quarter::of(q.end() - chrono::Duration::seconds(1)), q);
        for bad in ["2026Q5", "2026Q0", "2026-Q4", "26Q4", "2026Q04", "Q4", ""] {
            assert!(Quarter::parse(bad).is_err(), "{bad}");
        }
    }
}
