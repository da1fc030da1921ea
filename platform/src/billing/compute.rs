//! What a month costs one tenant: a pure function of the month, the plans' prices, the
//! tenant's plan and status history and its ledger totals. No I/O, so every rule below is
//! unit-tested exactly.
//!
//! Rules (also in `docs/BILLING.md`):
//! - Amounts are integer minor units (cents) of the plan's currency, end to end.
//! - A day (UTC) is billed when the tenant's status at the end of that day is `active`, at
//!   the plan in force at the end of that day. A tenant created, suspended or deleted
//!   mid-month pays for the days it was active; a plan change prorates to the day.
//! - Base price per plan: `price × days at that plan ÷ days in the month`, rounded half up
//!   to the cent, one line per plan used.
//! - Usage lines: every metered kind of the ledger for the month, at no charge (the plan
//!   includes it); they document what was metered.
//! - Overage: tokens (`entitlements::TOKEN_KINDS`) above the monthly quota of the plan in force on
//!   the last billed day, at that plan's price per 1,000 tokens, rounded half up to the cent
//!   once for the whole line. The quota is not prorated. A plan without an overage price
//!   has a hard quota (requests were refused) and gets no overage line.
//! - Plans of different currencies in one month are refused (an operator must split them).
//! - Operators' adjustments (corrections of earlier invoices) are added as `adjustment`
//!   lines to the next invoice made; credits larger than the month make it a credit note.

use crate::entitlements::TOKEN_KINDS;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A calendar month (UTC), e.g. `2026-11`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// Parses `YYYY-MM` (years 2000–2999). The error is a sentence for the caller.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a month: expected YYYY-MM, e.g. 2026-11");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        if !(2000..=2999).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Self { year, month })
    }

    /// The month an instant falls in.
    pub fn of(t: DateTime<Utc>) -> Self {
        Self {
            year: t.year(),
            month: t.month(),
        }
    }

    /// The month of a first-of-month date.
    pub fn from_date(d: NaiveDate) -> Self {
        Self {
            year: d.year(),
            month: d.month(),
        }
    }

    /// Its first day.
    pub fn first_day(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("validated month")
    }

    /// Its first instant (inclusive).
    pub fn start(&self) -> DateTime<Utc> {
        Utc.from_utc_datetime(&self.first_day().and_hms_opt(0, 0, 0).expect("midnight"))
    }

    /// The first instant of the next month (exclusive end).
    pub fn end(&self) -> DateTime<Utc> {
        self.next().start()
    }

    /// Days in the month.
    pub fn days(&self) -> u32 {
        (self.next().first_day() - self.first_day()).num_days() as u32
    }

    /// The month before.
    pub fn previous(&self) -> Self {
        match self.month {
            1 => Self {
                year: self.year - 1,
                month: 12,
            },
            m => Self {
                year: self.year,
                month: m - 1,
            },
        }
    }

    /// The month after.
    pub fn next(&self) -> Self {
        match self.month {
            12 => Self {
                year: self.year + 1,
                month: 1,
            },
            m => Self {
                year: self.year,
                month: m + 1,
            },
        }
    }

    /// `YYYYMM`, for invoice numbers.
    pub fn compact(&self) -> String {
        format!("{:04}{:02}", self.year, self.month)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl TryFrom<String> for Month {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<Month> for String {
    fn from(m: Month) -> String {
        m.to_string()
    }
}

// Serialized as its `YYYY-MM` string (`into = "String"`), which the derive would not see.
impl utoipa::PartialSchema for Month {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A calendar month (UTC), `YYYY-MM`."))
            .pattern(Some(r"^[0-9]{4}-[0-9]{2}$"))
            .examples(["2026-11"])
            .into()
    }
}

impl utoipa::ToSchema for Month {}

/// A plan's prices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPrice {
    /// Plan id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// ISO currency, lower case.
    pub currency: String,
    /// Monthly base price in minor units.
    pub base_cents: i64,
    /// Monthly token quota (`None`: unlimited).
    pub token_quota: Option<i64>,
    /// Price per 1,000 tokens above the quota in 1/10,000 of a minor unit (`None`: no
    /// overage, the quota is a hard stop).
    pub overage_per_1k_e4: Option<i64>,
}

/// A change in the tenant's history: from `at` on, `value` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// When it took effect.
    pub at: DateTime<Utc>,
    /// The plan id or status.
    pub value: String,
}

/// Everything one tenant's month depends on.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The month billed.
    pub month: Month,
    /// Every plan, by id.
    pub plans: BTreeMap<String, PlanPrice>,
    /// Plan changes, oldest first.
    pub plan_history: Vec<Change>,
    /// Status changes, oldest first.
    pub status_history: Vec<Change>,
    /// The ledger's totals for the month, by kind.
    pub usage: BTreeMap<String, i64>,
    /// Operators' corrections waiting for the tenant's next invoice.
    pub adjustments: Vec<Adjustment>,
}

/// An operator's correction (a credit when negative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// Its id.
    pub id: uuid::Uuid,
    /// For the invoice line.
    pub description: String,
    /// Minor units.
    pub amount_cents: i64,
}

/// What a line bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LineKind {
    /// The plan's base price (prorated).
    Base,
    /// Metered usage included in the plan.
    Usage,
    /// Tokens above the quota.
    Overage,
    /// A correction of an earlier invoice.
    Adjustment,
}

impl LineKind {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            LineKind::Base => "base",
            LineKind::Usage => "usage",
            LineKind::Overage => "overage",
            LineKind::Adjustment => "adjustment",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "base" => LineKind::Base,
            "usage" => LineKind::Usage,
            "overage" => LineKind::Overage,
            "adjustment" => LineKind::Adjustment,
            _ => return None,
        })
    }
}

/// One invoice line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// What it bills.
    pub kind: LineKind,
    /// For people.
    pub description: String,
    /// How many units.
    pub quantity: i64,
    /// The unit (`days`, `tokens`, …).
    pub unit: String,
    /// Amount in minor units.
    pub amount_cents: i64,
}

/// A computed month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Computed {
    /// The plan in force on the last billed day.
    pub plan_id: String,
    /// Currency of every amount.
    pub currency: String,
    /// Days billed.
    pub active_days: u32,
    /// Lines in order.
    pub lines: Vec<Line>,
    /// Sum of the lines.
    pub total_cents: i64,
}

/// The month cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComputeError {
    /// A day's plan is not in the plan table.
    #[error("plan {0:?} is not known")]
    UnknownPlan(String),
    /// The month used plans priced in different currencies.
    #[error("the month used plans in different currencies ({0} and {1}); bill it by hand")]
    MixedCurrency(String, String),
}

impl ComputeError {
    /// Machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ComputeError::UnknownPlan(_) => "unknown_plan",
            ComputeError::MixedCurrency(..) => "mixed_currency",
        }
    }
}

/// `num / den` rounded half up, for non-negative numbers.
pub fn div_half_up(num: i128, den: i128) -> i64 {
    ((2 * num + den) / (2 * den)) as i64
}

/// The value in force just before `t`: the last change strictly before it.
fn in_force(history: &[Change], t: DateTime<Utc>) -> Option<&str> {
    history
        .iter()
        .take_while(|c| c.at < t)
        .last()
        .map(|c| c.value.as_str())
}

/// Computes the month; `Ok(None)` when the tenant was active on no day of it.
pub fn compute(inp: &Inputs) -> Result<Option<Computed>, ComputeError> {
    let days = inp.month.days();
    let start = inp.month.start();
    // Days per plan, in the order plans were first used.
    let mut per_plan: Vec<(String, i64)> = Vec::new();
    let mut last_plan = None;
    for k in 1..=days {
        let end_of_day = start + Duration::days(i64::from(k));
        if in_force(&inp.status_history, end_of_day) != Some("active") {
            continue;
        }
        let Some(plan) = in_force(&inp.plan_history, end_of_day) else {
            continue;
        };
        match per_plan.iter_mut().find(|(p, _)| p == plan) {
            Some((_, n)) => *n += 1,
            None => per_plan.push((plan.to_owned(), 1)),
        }
        last_plan = Some(plan.to_owned());
    }
    let Some(last_plan) = last_plan else {
        return Ok(None);
    };
    let price = |id: &str| {
        inp.plans
            .get(id)
            .ok_or_else(|| ComputeError::UnknownPlan(id.to_owned()))
    };
    let last = price(&last_plan)?;
    let mut lines = Vec::new();
    for (id, n) in &per_plan {
        let p = price(id)?;
        if p.currency != last.currency {
            return Err(ComputeError::MixedCurrency(
                p.currency.clone(),
                last.currency.clone(),
            ));
        }
        let description = match *n == i64::from(days) {
            true => format!("{} plan", p.name),
            false => format!("{} plan, {n} of {days} days", p.name),
        };
        lines.push(Line {
            kind: LineKind::Base,
            description,
            quantity: *n,
            unit: "days".into(),
            amount_cents: div_half_up(i128::from(p.base_cents) * i128::from(*n), i128::from(days)),
        });
    }
    for (kind, qty) in inp.usage.iter().filter(|(_, q)| **q > 0) {
        lines.push(Line {
            kind: LineKind::Usage,
            description: format!("{} (included)", kind.replace('_', " ")),
            quantity: *qty,
            unit: unit_of(kind).into(),
            amount_cents: 0,
        });
    }
    let tokens: i64 = TOKEN_KINDS.iter().filter_map(|k| inp.usage.get(*k)).sum();
    if let (Some(quota), Some(rate)) = (last.token_quota, last.overage_per_1k_e4)
        && tokens > quota
    {
        let over = tokens - quota;
        lines.push(Line {
            kind: LineKind::Overage,
            description: format!("Tokens above the {} quota of {quota}", last.name),
            quantity: over,
            unit: "tokens".into(),
            amount_cents: div_half_up(i128::from(over) * i128::from(rate), 1000 * 10_000),
        });
    }
    for a in &inp.adjustments {
        lines.push(Line {
            kind: LineKind::Adjustment,
            description: a.description.clone(),
            quantity: 1,
            unit: "adjustment".into(),
            amount_cents: a.amount_cents,
        });
    }
    // Negative when credits exceed the month's charges: the invoice is then a credit note.
    let total_cents = lines.iter().map(|l| l.amount_cents).sum();
    Ok(Some(Computed {
        plan_id: last_plan,
        currency: last.currency.clone(),
        active_days: per_plan.iter().map(|(_, n)| *n as u32).sum(),
        lines,
        total_cents,
    }))
}

/// The unit a ledger kind counts.
fn unit_of(kind: &str) -> &'static str {
    match kind {
        k if k.ends_with("tokens") || k.contains("tokens_") => "tokens",
        k if k.starts_with("pages") => "pages",
        k if k.starts_with("chunks") => "chunks",
        _ => "units",
    }
}

#[cfg(test)]
#[path = "compute_tests.rs"]
mod tests;
