use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("instant")
        .with_timezone(&Utc)
}

fn plans() -> BTreeMap<String, PlanPrice> {
    let p = |id: &str, name: &str, base, quota, rate| PlanPrice {
        id: id.into(),
        name: name.into(),
        currency: "usd".into(),
        base_cents: base,
        token_quota: quota,
        overage_per_1k_e4: rate,
    };
    [
        p("free", "Free", 0, Some(200_000), None),
        p("team", "Team", 4900, Some(5_000_000), Some(2000)),
        p("business", "Business", 49900, Some(50_000_000), Some(1000)),
    ]
    .into_iter()
    .map(|p| (p.id.clone(), p))
    .collect()
}

fn change(t: &str, v: &str) -> Change {
    Change {
        at: at(t),
        value: v.into(),
    }
}

fn inputs(month: &str, plan: Vec<Change>, status: Vec<Change>, usage: &[(&str, i64)]) -> Inputs {
    Inputs {
        month: Month::parse(month).expect("month"),
        plans: plans(),
        plan_history: plan,
        status_history: status,
        usage: usage.iter().map(|(k, q)| (k.to_string(), *q)).collect(),
        adjustments: Vec::new(),
    }
}

fn whole_month_team(usage: &[(&str, i64)]) -> Computed {
    compute(&inputs(
        "2026-11",
        vec![change("2026-01-01T00:00:00Z", "team")],
        vec![change("2026-01-01T00:00:00Z", "active")],
        usage,
    ))
    .expect("computes")
    .expect("active")
}

#[test]
fn months_parse_strictly_and_know_their_bounds() {
    let m = Month::parse("2024-02").expect("month");
    assert_eq!(m.days(), 29);
    assert_eq!(m.start(), at("2024-02-01T00:00:00Z"));
    assert_eq!(m.end(), at("2024-03-01T00:00:00Z"));
    assert_eq!(Month::parse("2026-12").expect("m").next().to_string(), "2027-01");
    assert_eq!(
        Month::parse("2026-01").expect("m").previous().to_string(),
        "2025-12"
    );
    for bad in ["2026-13", "2026-00", "26-11", "2026-1", "2026/11", "", "1999-12"] {
        assert!(Month::parse(bad).is_err(), "{bad} accepted");
    }
    assert_eq!(Month::of(at("2026-11-30T23:59:59.999Z")).to_string(), "2026-11");
    assert_eq!(Month::of(at("2026-12-01T00:00:00Z")).to_string(), "2026-12");
}

#[test]
fn a_full_month_bills_the_base_price_and_lists_usage_at_no_charge() {
    let c = whole_month_team(&[("pages_parsed", 12), ("embedding_tokens", 900)]);
    assert_eq!(c.total_cents, 4900);
    assert_eq!(c.active_days, 30);
    assert_eq!(c.lines[0].description, "Team plan");
    let usage: Vec<_> = c.lines.iter().filter(|l| l.kind == LineKind::Usage).collect();
    assert_eq!(usage.len(), 2);
    assert!(usage.iter().all(|l| l.amount_cents == 0));
}

#[test]
fn overage_is_exact_at_below_and_above_the_quota() {
    let at_quota = whole_month_team(&[("query_tokens_in", 4_000_000), ("query_tokens_out", 1_000_000)]);
    assert!(at_quota.lines.iter().all(|l| l.kind != LineKind::Overage));
    assert_eq!(at_quota.total_cents, 4900);
    let below = whole_month_team(&[("embedding_tokens", 4_999_999)]);
    assert_eq!(below.total_cents, 4900);
    // 1,234,567 tokens over at 0.2 cents per 1,000 = 246.9134 cents → 247.
    let above = whole_month_team(&[("embedding_tokens", 6_234_567)]);
    let over = above
        .lines
        .iter()
        .find(|l| l.kind == LineKind::Overage)
        .expect("overage line");
    assert_eq!(over.quantity, 1_234_567);
    assert_eq!(over.amount_cents, 247);
    assert_eq!(above.total_cents, 4900 + 247);
    // One token over rounds to zero cents, half a cent rounds up.
    assert_eq!(
        whole_month_team(&[("embedding_tokens", 5_000_001)]).total_cents,
        4900
    );
    assert_eq!(
        whole_month_team(&[("embedding_tokens", 5_002_500)]).total_cents,
        4901
    );
}

#[test]
fn a_plan_change_mid_month_prorates_to_the_day() {
    // Team until 10 Nov 15:00, Business from then: 9 Team days (the 10th ends on Business).
    let c = compute(&inputs(
        "2026-11",
        vec![
            change("2026-01-01T00:00:00Z", "team"),
            change("2026-11-10T15:00:00Z", "business"),
        ],
        vec![change("2026-01-01T00:00:00Z", "active")],
        &[],
    ))
    .expect("computes")
    .expect("active");
    assert_eq!(c.plan_id, "business");
    assert_eq!(c.lines[0].description, "Team plan, 9 of 30 days");
    assert_eq!(c.lines[0].amount_cents, 1470); // 4900 × 9 / 30
    assert_eq!(c.lines[1].description, "Business plan, 21 of 30 days");
    assert_eq!(c.lines[1].amount_cents, 34930); // 49900 × 21 / 30
    assert_eq!(c.total_cents, 1470 + 34930);
}

#[test]
fn created_suspended_and_deleted_tenants_pay_for_active_days_only() {
    // Created on the 21st: 10 days.
    let created = compute(&inputs(
        "2026-11",
        vec![change("2026-11-21T08:00:00Z", "team")],
        vec![change("2026-11-21T08:00:00Z", "active")],
        &[],
    ))
    .expect("computes")
    .expect("active");
    assert_eq!(created.active_days, 10);
    assert_eq!(created.total_cents, div_half_up(4900 * 10, 30));
    // Suspended from the 6th to the 16th (midnight): active on 1–5 and 16–30 = 20 days.
    let suspended = compute(&inputs(
        "2026-11",
        vec![change("2026-01-01T00:00:00Z", "team")],
        vec![
            change("2026-01-01T00:00:00Z", "active"),
            change("2026-11-06T00:00:00Z", "suspended"),
            change("2026-11-16T00:00:00Z", "active"),
        ],
        &[],
    ))
    .expect("computes")
    .expect("active");
    assert_eq!(suspended.active_days, 5 + 15);
    // Deleted before the month began: nothing to bill.
    let gone = compute(&inputs(
        "2026-11",
        vec![change("2026-01-01T00:00:00Z", "team")],
        vec![
            change("2026-01-01T00:00:00Z", "active"),
            change("2026-10-20T00:00:00Z", "deleted"),
        ],
        &[],
    ))
    .expect("computes");
    assert_eq!(gone, None);
}

#[test]
fn mixed_currencies_are_refused() {
    let mut inp = inputs(
        "2026-11",
        vec![
            change("2026-01-01T00:00:00Z", "team"),
            change("2026-11-15T00:00:00Z", "business"),
        ],
        vec![change("2026-01-01T00:00:00Z", "active")],
        &[],
    );
    inp.plans.get_mut("team").expect("team").currency = "eur".into();
    assert!(matches!(compute(&inp), Err(ComputeError::MixedCurrency(..))));
}

#[test]
fn rounding_is_half_up() {
    assert_eq!(div_half_up(5, 10), 1);
    assert_eq!(div_half_up(4, 10), 0);
    assert_eq!(div_half_up(15, 10), 2);
    assert_eq!(div_half_up(0, 7), 0);
}

#[test]
fn adjustments_are_lines_of_the_next_invoice_and_may_make_it_a_credit_note() {
    let mut inp = inputs(
        "2026-11",
        vec![change("2026-01-01T00:00:00Z", "team")],
        vec![change("2026-01-01T00:00:00Z", "active")],
        &[],
    );
    inp.adjustments.push(Adjustment {
        id: uuid::Uuid::nil(),
        description: "Credit: October outage".into(),
        amount_cents: -1000,
    });
    let c = compute(&inp).expect("computes").expect("active");
    let adj = c
        .lines
        .iter()
        .find(|l| l.kind == LineKind::Adjustment)
        .expect("line");
    assert_eq!(adj.amount_cents, -1000);
    assert_eq!(c.total_cents, 4900 - 1000);
    inp.adjustments[0].amount_cents = -6000;
    assert_eq!(
        compute(&inp).expect("computes").expect("active").total_cents,
        -1100
    );
}
