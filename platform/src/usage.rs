//! The usage ledger (`usage_events`, one row per billable event with a unique idempotency
//! key) summed by period and kind for the tenant and for operators.

use crate::db::{DbError, TenantTx};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;

/// How usage is bucketed (named in the API contract as `?granularity=` reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Granularity {
    /// Calendar days (UTC).
    Day,
    /// Calendar months (UTC).
    Month,
}

impl Granularity {
    /// Parses `day` or `month`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(Self::Day),
            "month" => Some(Self::Month),
            _ => None,
        }
    }

    /// The `date_trunc` field name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

/// A validated period: `from` inclusive, `to` exclusive, at most 366 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub to: DateTime<Utc>,
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc())
}

impl Period {
    /// From optional `from`/`to` strings (RFC 3339 or `YYYY-MM-DD`); defaults: the start of
    /// the current month to now. The error is a sentence for the caller.
    pub fn parse(from: Option<&str>, to: Option<&str>, now: DateTime<Utc>) -> Result<Self, String> {
        let month_start = now
            .date_naive()
            .with_day(1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc())
            .unwrap_or(now);
        let from = match from {
            Some(s) => instant(s)
                .ok_or_else(|| format!("from {s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))?,
            None => month_start,
        };
        let to = match to {
            Some(s) => instant(s)
                .ok_or_else(|| format!("to {s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))?,
            None => now,
        };
        if from >= to {
            return Err("from must be before to".into());
        }
        if to - from > chrono::Duration::days(366) {
            return Err("a period spans at most 366 days".into());
        }
        Ok(Self { from, to })
    }
}

/// Usage of one kind in one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct UsageRow {
    /// Start of the bucket.
    pub period: DateTime<Utc>,
    /// Event kind (`embedding_tokens`, `pages_parsed`, …).
    pub kind: String,
    /// Sum of quantities.
    pub quantity: i64,
}

/// The tenant's usage in `period`, by bucket and kind.
pub async fn summary(tx: &mut TenantTx, period: Period, g: Granularity) -> Result<Vec<UsageRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT date_trunc($3, occurred_at, 'UTC') AS period, kind, sum(quantity)::bigint AS quantity
         FROM usage_events WHERE occurred_at >= $1 AND occurred_at < $2
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(period.from)
    .bind(period.to)
    .bind(g.as_str())
    .fetch_all(tx.conn())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_default_validate_and_accept_dates_or_times() {
        let now = instant("2026-11-22T16:00:00Z").expect("now");
        let p = Period::parse(None, None, now).expect("default");
        assert_eq!(p.from, instant("2026-11-01").expect("d"));
        assert_eq!(p.to, now);
        let p = Period::parse(Some("2026-01-01"), Some("2026-02-01T00:00:00+01:00"), now).expect("ok");
        assert_eq!(p.to, instant("2026-01-31T23:00:00Z").expect("t"));
        assert!(
            Period::parse(Some("yesterday"), None, now)
                .expect_err("refused")
                .contains("not a date")
        );
        assert!(
            Period::parse(Some("2026-03-01"), Some("2026-02-01"), now)
                .expect_err("refused")
                .contains("before")
        );
        assert!(
            Period::parse(Some("2024-01-01"), Some("2026-01-01"), now)
                .expect_err("refused")
                .contains("366")
        );
        assert_eq!(Granularity::parse("month"), Some(Granularity::Month));
        assert_eq!(Granularity::parse("week"), None);
    }
}
