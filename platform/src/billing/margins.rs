//! Revenue, cost and margin per tenant and plan for a month, for operators. Revenue is what
//! the month's invoices say; cost comes from a configurable cost model applied to what the
//! ledger metered (`usage_monthly`) and to the bytes stored, so `margin = revenue − cost`.
//!
//! The cost model (`DOCKET_COST_MODEL`) is a list `kind=cents` of what 1,000 units of a
//! ledger kind cost Docket (`embedding_tokens=0.002,query_tokens_in=0.02,…`), plus
//! `storage_gb_month=cents` for a GiB of originals held for the month (measured as the bytes
//! of the tenant's documents at the month's end). Prices are decimal cents to 1/10,000 of a
//! cent; costs round half up to the cent per tenant.

use super::BillingError;
use super::compute::{Month, div_half_up};
use crate::db::ControlDb;
use serde::Serialize;
use std::collections::BTreeMap;

/// The cost-model key for storage.
pub const STORAGE_KEY: &str = "storage_gb_month";

/// What Docket's resources cost, per 1,000 units of each ledger kind and per GiB-month
/// stored, in 1/10,000 of a cent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostModel {
    /// Ledger kind → price of 1,000 units (×10⁴ cents).
    pub per_1k_e4: BTreeMap<String, i64>,
    /// A GiB stored for the month (×10⁴ cents).
    pub storage_gb_month_e4: i64,
}

/// The default model: a rough CPU-only deployment's own costs (documented, not measured).
pub const DEFAULT_COST_MODEL: &str = "embedding_tokens=0.002,query_tokens_in=0.004,query_tokens_out=0.004,llm_tokens_in=0.01,llm_tokens_out=0.03,pages_parsed=0.05,storage_gb_month=2.3";

/// `"0.002"` cents → 20 (×10⁴); at most four decimals, not negative.
fn decimal_e4(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 4 {
        return None;
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<4}").parse().ok()?
    };
    (whole >= 0 && !s.starts_with('+')).then_some(whole.checked_mul(10_000)? + frac)
}

impl CostModel {
    /// Parses `kind=cents,…`; the error is a sentence for the operator.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut model = CostModel {
            per_1k_e4: BTreeMap::new(),
            storage_gb_month_e4: 0,
        };
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not kind=cents"))?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                return Err(format!("{k:?} is not a ledger kind (a-z and _)"));
            }
            let price = decimal_e4(v).ok_or_else(|| {
                format!("{v:?} for {k} is not a price in cents (e.g. 0.002, up to 4 decimals)")
            })?;
            match k == STORAGE_KEY {
                true => model.storage_gb_month_e4 = price,
                false => {
                    model.per_1k_e4.insert(k.to_owned(), price);
                }
            }
        }
        Ok(model)
    }

    /// The cost in cents of `usage` (kind → units) and `stored_bytes` for a month.
    pub fn cost_cents(&self, usage: &BTreeMap<String, i64>, stored_bytes: i64) -> i64 {
        // All in 1/10,000 cent × 1,000 units, rounded once.
        let mut e4_per_1k: i128 = 0;
        for (kind, qty) in usage {
            if let Some(p) = self.per_1k_e4.get(kind) {
                e4_per_1k += i128::from(*qty) * i128::from(*p);
            }
        }
        let gib = 1i128 << 30;
        // Storage scaled to the same unit: bytes × price ÷ GiB, × 1,000.
        let storage = i128::from(stored_bytes.max(0)) * i128::from(self.storage_gb_month_e4) * 1000 / gib;
        div_half_up(e4_per_1k + storage, 1000 * 10_000)
    }
}

/// One tenant's month.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantMargin {
    /// The tenant.
    pub tenant_id: uuid::Uuid,
    /// Its slug.
    pub slug: String,
    /// Plan on the invoice (or the tenant's plan now, if it was not invoiced).
    pub plan_id: String,
    /// Invoice currency (revenue and cost are in it).
    pub currency: String,
    /// Invoiced.
    pub revenue_cents: i64,
    /// What its usage and storage cost.
    pub cost_cents: i64,
    /// Revenue − cost.
    pub margin_cents: i64,
}

/// One plan's month.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanMargin {
    /// Plan.
    pub plan_id: String,
    /// Currency.
    pub currency: String,
    /// Tenants on it.
    pub tenants: usize,
    /// Their revenue.
    pub revenue_cents: i64,
    /// Their cost.
    pub cost_cents: i64,
    /// Revenue − cost.
    pub margin_cents: i64,
}

/// The month's report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MarginReport {
    /// The month.
    pub period: Month,
    /// Per tenant, by slug.
    pub tenants: Vec<TenantMargin>,
    /// Per plan (and currency), by plan id.
    pub plans: Vec<PlanMargin>,
}

type Row = (uuid::Uuid, String, String, String, i64, serde_json::Value, i64);

/// Revenue, cost and margin for `month`: every tenant that was invoiced or metered usage.
pub async fn report(
    control: &ControlDb,
    model: &CostModel,
    month: Month,
) -> Result<MarginReport, BillingError> {
    let rows: Vec<Row> = sqlx::query_as(
        "WITH usage AS (
           SELECT tenant_id, jsonb_object_agg(kind, quantity) AS usage FROM usage_monthly
           WHERE month = $1 GROUP BY tenant_id
         ), stored AS (
           SELECT tenant_id, sum(byte_size)::bigint AS bytes FROM documents WHERE created_at < $2 GROUP BY tenant_id
         )
         SELECT t.id, t.slug, coalesce(i.plan_id, t.plan_id), coalesce(i.currency, p.currency),
                coalesce(i.total_cents, 0), coalesce(u.usage, '{}'::jsonb), coalesce(s.bytes, 0)
         FROM tenants t JOIN plans p ON p.id = t.plan_id
         LEFT JOIN invoices i ON i.tenant_id = t.id AND i.period = $1
         LEFT JOIN usage u ON u.tenant_id = t.id
         LEFT JOIN stored s ON s.tenant_id = t.id
         WHERE i.id IS NOT NULL OR u.tenant_id IS NOT NULL
         ORDER BY t.slug",
    )
    .bind(month.first_day())
    .bind(month.end())
    .fetch_all(control.pool())
    .await?;
    let mut tenants = Vec::with_capacity(rows.len());
    let mut plans: BTreeMap<(String, String), PlanMargin> = BTreeMap::new();
    for (tenant_id, slug, plan_id, currency, revenue, usage, bytes) in rows {
        let usage: BTreeMap<String, i64> = usage
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_i64()?)))
                    .collect()
            })
            .unwrap_or_default();
        let cost = model.cost_cents(&usage, bytes);
        let p = plans
            .entry((plan_id.clone(), currency.clone()))
            .or_insert_with(|| PlanMargin {
                plan_id: plan_id.clone(),
                currency: currency.clone(),
                tenants: 0,
                revenue_cents: 0,
                cost_cents: 0,
                margin_cents: 0,
            });
        p.tenants += 1;
        p.revenue_cents += revenue;
        p.cost_cents += cost;
        p.margin_cents += revenue - cost;
        tenants.push(TenantMargin {
            tenant_id,
            slug,
            plan_id,
            currency,
            revenue_cents: revenue,
            cost_cents: cost,
            margin_cents: revenue - cost,
        });
    }
    Ok(MarginReport {
        period: month,
        tenants,
        plans: plans.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_model_parses_decimal_cents_and_refuses_nonsense() {
        let m = CostModel::parse("embedding_tokens=0.002, pages_parsed=1.5,storage_gb_month=2.3")
            .expect("parses");
        assert_eq!(m.per_1k_e4["embedding_tokens"], 20);
        assert_eq!(m.per_1k_e4["pages_parsed"], 15_000);
        assert_eq!(m.storage_gb_month_e4, 23_000);
        assert!(CostModel::parse(DEFAULT_COST_MODEL).is_ok());
        for bad in ["tokens", "x=-1", "x=0.00001", "X=1", "x=abc", "=1", "x=."] {
            assert!(CostModel::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn cost_is_usage_times_price_plus_storage_rounded_once() {
        let m =
            CostModel::parse("embedding_tokens=0.002,pages_parsed=50,storage_gb_month=2.3").expect("parses");
        let usage: BTreeMap<String, i64> = [
            ("embedding_tokens".to_owned(), 10_000_000),
            ("pages_parsed".to_owned(), 100),
            ("unpriced".to_owned(), 9),
        ]
        .into_iter()
        .collect();
        // 10M tokens × 0.002 / 1,000 = 20 cents; 100 pages × 50 / 1,000 = 5 cents; 10 GiB × 2.3 = 23.
        assert_eq!(m.cost_cents(&usage, 10 << 30), 20 + 5 + 23);
        assert_eq!(m.cost_cents(&BTreeMap::new(), 0), 0);
    }
}
