//! What a tenant may do and how much, read in one query per governed request (plan row,
//! unexpired rate override, this month's token total and safety policy), so a plan change
//! applies on the next request and governance costs one round trip.

use crate::consents::{self, Purpose};
use crate::db::{DbError, TenantTx};
use crate::queries::AnswerMode;
use crate::ratelimit::{EndpointClass, Limit};
use crate::tenants::Tenant;
use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// Ledger kinds that count against the monthly token quota: retrieval and answers
/// (`query_tokens_*`), ingestion (`embedding_tokens`) and what a language model read and
/// wrote for generative answers (`llm_tokens_*`).
pub const TOKEN_KINDS: [&str; 5] = [
    "query_tokens_in",
    "query_tokens_out",
    "embedding_tokens",
    "llm_tokens_in",
    "llm_tokens_out",
];

/// The tenant's entitlements, as of this request.
#[derive(Debug, Clone, PartialEq)]
pub struct Entitlements {
    /// Plan id.
    pub plan_id: String,
    /// Plan features (`api_keys`, `bulk_import`, …).
    pub features: Vec<String>,
    /// The rate per endpoint class (an unexpired override, else the plan's), in
    /// [`EndpointClass::ALL`] order.
    pub rates: [Limit; 4],
    /// Monthly token quota (`None`: unlimited).
    pub token_quota: Option<i64>,
    /// Whether tokens past the quota are billed as overage instead of refused.
    pub overage_allowed: bool,
    /// Tokens used this calendar month (UTC), from the ledger's monthly totals.
    pub tokens_used: i64,
    /// Largest `top_k` a question may ask for.
    pub max_top_k: u32,
    /// Document limit (`None`: unlimited).
    pub max_documents: Option<i64>,
    /// Storage limit in bytes (`None`: unlimited).
    pub max_storage_bytes: Option<i64>,
    /// Largest single upload in bytes.
    pub max_upload_bytes: u64,
    /// Imported documents of this tenant in the pipeline at once.
    pub import_concurrency: u32,
    /// Entries one import may have.
    pub max_import_entries: usize,
    /// Bytes one import archive may have (and unpack to).
    pub max_import_bytes: u64,
    /// Whether flagged input is refused (not only flagged).
    pub refuse_flagged_input: bool,
    /// Processing purposes the tenant currently consents to (`consents::Purpose` names).
    pub consents: Vec<String>,
    /// How questions that name no mode are answered (the tenant's policy).
    pub default_answer_mode: AnswerMode,
}

impl Entitlements {
    /// The rate that applies to `class`.
    pub fn rate(&self, class: EndpointClass) -> Limit {
        self.rates[class.index()]
    }

    /// Whether the plan includes `feature`.
    pub fn has(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }

    /// Whether the tenant currently consents to `purpose`.
    pub fn consents_to(&self, purpose: Purpose) -> bool {
        self.consents.iter().any(|p| p == purpose.as_str())
    }

    /// Whether the monthly quota is used up and the plan has no overage.
    pub fn quota_exhausted(&self) -> bool {
        match self.token_quota {
            Some(q) => !self.overage_allowed && self.tokens_used >= q,
            None => false,
        }
    }
}

/// The first instant of the next calendar month (UTC): when the quota resets.
pub fn quota_resets_at(now: DateTime<Utc>) -> DateTime<Utc> {
    let (y, m) = match now.month() {
        12 => (now.year() + 1, 1),
        m => (now.year(), m + 1),
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .unwrap_or(now)
}

#[derive(sqlx::FromRow)]
struct Row {
    #[sqlx(flatten)]
    tenant: Tenant,
    features: serde_json::Value,
    plan_rates: serde_json::Value,
    overrides: serde_json::Value,
    monthly_token_quota: Option<i64>,
    overage_allowed: bool,
    tokens_used: i64,
    max_top_k: i32,
    max_documents: Option<i64>,
    max_storage_bytes: Option<i64>,
    max_upload_bytes: i64,
    import_concurrency: i32,
    max_import_entries: i32,
    max_import_bytes: i64,
    refuse_flagged_input: bool,
    consents: Vec<String>,
    default_answer_mode: AnswerMode,
}

fn limit(v: &serde_json::Value) -> Option<Limit> {
    let n = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_i64)
            .map(|n| n.clamp(1, i64::from(u32::MAX / 2)) as u32)
    };
    Some(Limit {
        per_minute: n("per_minute")?,
        burst: n("burst")?,
    })
}

/// The tenant of the transaction and its entitlements, in one query (the extractor reads
/// them with the principal, in one transaction), or `None` if the tenant does not exist.
pub async fn load(tx: &mut TenantTx) -> Result<Option<(Tenant, Entitlements)>, DbError> {
    let tenant = tx.tenant_id();
    let sql = format!(
        "SELECT t.id, t.slug, t.name, t.plan_id, t.isolation_tier, t.status, t.created_at,
                p.features, p.rate_limits AS plan_rates,
                COALESCE((SELECT jsonb_object_agg(o.class, jsonb_build_object('per_minute', o.per_minute, 'burst', o.burst))
                          FROM rate_overrides o WHERE o.tenant_id = t.id AND o.expires_at > now()), '{{}}'::jsonb) AS overrides,
                p.monthly_token_quota, p.overage_cents_per_1k IS NOT NULL AS overage_allowed,
                COALESCE((SELECT sum(u.quantity) FROM usage_monthly u
                          WHERE u.month = date_trunc('month', now() AT TIME ZONE 'UTC')::date
                            AND u.kind = ANY($2)), 0)::bigint AS tokens_used,
                p.max_top_k, p.max_documents, p.max_storage_bytes, p.max_upload_bytes,
                p.import_concurrency, p.max_import_entries, p.max_import_bytes,
                t.refuse_flagged_input, {} AS consents, t.default_answer_mode
         FROM tenants t JOIN plans p ON p.id = t.plan_id
         WHERE t.id = $1",
        consents::GRANTED_SQL
    );
    let r: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(&TOKEN_KINDS[..])
        .fetch_optional(tx.conn())
        .await?;
    let Some(r) = r else { return Ok(None) };
    let features = r
        .features
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    // A plan without a row for a class is not limited by rate there (only by its quotas).
    let rates = EndpointClass::ALL.map(|c| {
        limit(&r.overrides[c.as_str()])
            .or_else(|| limit(&r.plan_rates[c.as_str()]))
            .unwrap_or(Limit {
                per_minute: u32::MAX / 2,
                burst: u32::MAX / 2,
            })
    });
    let ent = Entitlements {
        plan_id: r.tenant.plan_id.clone(),
        features,
        rates,
        token_quota: r.monthly_token_quota,
        overage_allowed: r.overage_allowed,
        tokens_used: r.tokens_used,
        max_top_k: r.max_top_k.max(1) as u32,
        max_documents: r.max_documents,
        max_storage_bytes: r.max_storage_bytes,
        max_upload_bytes: r.max_upload_bytes.max(1) as u64,
        import_concurrency: r.import_concurrency.max(1) as u32,
        max_import_entries: r.max_import_entries.max(1) as usize,
        max_import_bytes: r.max_import_bytes.max(1) as u64,
        refuse_flagged_input: r.refuse_flagged_input,
        consents: r.consents,
        default_answer_mode: r.default_answer_mode,
    };
    Ok(Some((r.tenant, ent)))
}

/// Whether adding `docs` documents of `bytes` bytes takes the tenant past its plan's
/// document or storage limit (or it is already at one): the sentence saying which, or
/// `None` when it fits. Uploads, imports and the import worker all decide here.
pub async fn over_plan_limit(
    tx: &mut TenantTx,
    ent: &Entitlements,
    docs: i64,
    bytes: i64,
) -> Result<Option<String>, DbError> {
    if ent.max_documents.is_none() && ent.max_storage_bytes.is_none() {
        return Ok(None);
    }
    let (held, held_bytes) = documents_held(tx).await?;
    let plan = &ent.plan_id;
    Ok(match (ent.max_documents, ent.max_storage_bytes) {
        (Some(max), _) if held >= max || held + docs > max => Some(format!(
            "your plan ({plan}) holds at most {max} documents; you have {held} and this adds {docs}; \
             delete some or upgrade the plan"
        )),
        (_, Some(max)) if held_bytes >= max || held_bytes + bytes > max => Some(format!(
            "your plan ({plan}) stores at most {max} bytes; your documents take {held_bytes} and this adds \
             {bytes}; delete some or upgrade the plan"
        )),
        _ => None,
    })
}

/// Documents the tenant keeps and the bytes they take (failed and cancelled ones hold no
/// searchable content, and ones being deleted are going: none of them count).
pub async fn documents_held(tx: &mut TenantTx) -> Result<(i64, i64), DbError> {
    Ok(sqlx::query_as(
        "SELECT count(*), COALESCE(sum(byte_size), 0)::bigint FROM documents WHERE status NOT IN ('failed', 'cancelled', 'deleting')",
    )
    .fetch_one(tx.conn())
    .await?)
}

/// Recomputes the tenant's monthly totals from the ledger (the ledger is the truth).
pub async fn rebuild_totals(tx: &mut TenantTx) -> Result<(), DbError> {
    let tenant = tx.tenant_id();
    sqlx::query("SELECT docket_rebuild_usage_monthly($1)")
        .bind(tenant)
        .execute(tx.conn())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn quota_resets_on_the_first_of_next_month() {
        assert_eq!(
            quota_resets_at(at("2026-11-22T10:00:00Z")),
            at("2026-12-01T00:00:00Z")
        );
        assert_eq!(
            quota_resets_at(at("2026-12-31T23:59:59Z")),
            at("2027-01-01T00:00:00Z")
        );
    }

    #[test]
    fn exhaustion_needs_a_quota_used_up_without_overage() {
        let mut e = Entitlements {
            plan_id: "free".into(),
            features: vec!["api_keys".into()],
            rates: [Limit {
                per_minute: 1,
                burst: 1,
            }; 4],
            token_quota: Some(100),
            overage_allowed: false,
            tokens_used: 99,
            max_top_k: 5,
            max_documents: None,
            max_storage_bytes: None,
            max_upload_bytes: 1,
            import_concurrency: 1,
            max_import_entries: 1,
            max_import_bytes: 1,
            refuse_flagged_input: false,
            consents: vec![],
            default_answer_mode: AnswerMode::Extractive,
        };
        assert!(!e.quota_exhausted());
        e.tokens_used = 100;
        assert!(e.quota_exhausted());
        e.overage_allowed = true;
        assert!(!e.quota_exhausted());
        e.token_quota = None;
        e.overage_allowed = false;
        assert!(!e.quota_exhausted());
        assert!(e.has("api_keys") && !e.has("exports"));
        assert_eq!(e.rate(EndpointClass::Admin).burst, 1);
    }
}
