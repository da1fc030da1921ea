//! The upgrade hint `GET /v1/usage` shows: when this month's token overage already costs
//! more than moving to the next plan up would (the price difference of the base prices),
//! the tenant is told which plan and by how much.

use super::BillingError;
use super::compute::{Month, div_half_up};
use crate::db::TenantTx;
use crate::entitlements::TOKEN_KINDS;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A suggestion to move up a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UpgradeHint {
    /// The tenant's plan.
    pub current_plan: String,
    /// The next plan up (the cheapest dearer plan in the same currency).
    pub suggested_plan: String,
    /// This month's overage so far, in minor units.
    pub overage_cents: i64,
    /// How much more the suggested plan's base price is.
    pub price_difference_cents: i64,
    /// Currency of both amounts.
    pub currency: String,
    /// For people.
    pub message: String,
}

type PlanRow = (String, String, i64, Option<i64>, Option<i64>);

/// The hint for the tenant of `tx` at `now`, if its overage exceeds the step up.
pub async fn hint(tx: &mut TenantTx, now: DateTime<Utc>) -> Result<Option<UpgradeHint>, BillingError> {
    let current: Option<PlanRow> = sqlx::query_as(
        "SELECT p.id, p.currency, p.price_cents_monthly, p.monthly_token_quota, (p.overage_cents_per_1k * 10000)::bigint
         FROM tenants t JOIN plans p ON p.id = t.plan_id WHERE t.id = $1",
    )
    .bind(tx.tenant_id())
    .fetch_optional(tx.conn())
    .await?;
    let Some((plan, currency, price, Some(quota), Some(rate))) = current else {
        return Ok(None);
    };
    let tokens: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(quantity), 0)::bigint FROM usage_monthly WHERE month = $1 AND kind = ANY($2)",
    )
    .bind(Month::of(now).first_day())
    .bind(&TOKEN_KINDS[..])
    .fetch_one(tx.conn())
    .await?;
    if tokens <= quota {
        return Ok(None);
    }
    let overage = div_half_up(i128::from(tokens - quota) * i128::from(rate), 1000 * 10_000);
    let next: Option<(String, i64)> = sqlx::query_as(
        "SELECT id, price_cents_monthly FROM plans WHERE currency = $1 AND price_cents_monthly > $2
         ORDER BY price_cents_monthly, id LIMIT 1",
    )
    .bind(&currency)
    .bind(price)
    .fetch_optional(tx.conn())
    .await?;
    let Some((next, next_price)) = next else {
        return Ok(None);
    };
    let difference = next_price - price;
    if overage <= difference {
        return Ok(None);
    }
    let message = format!(
        "This month's overage on {plan} ({overage} cents so far) is more than the {difference} cents {next} costs on top: moving to {next} would cost less."
    );
    Ok(Some(UpgradeHint {
        current_plan: plan,
        suggested_plan: next,
        overage_cents: overage,
        price_difference_cents: difference,
        currency,
        message,
    }))
}
