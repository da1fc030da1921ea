//! The audit trail: append-only, one hash chain per tenant plus one for the platform.
//!
//! Each row carries a per-chain sequence number, the previous row's hash and its own hash,
//! SHA-256 over a canonical serialization of its fields. Appends to one chain are
//! serialized by a transaction-scoped advisory lock, so concurrent writers can neither fork
//! the chain nor skip a number. The database refuses UPDATE and DELETE (trigger + grants).
//! Personal identifiers are pseudonymized with a per-tenant key ([`pseudonym`]).

pub mod canonical;
pub mod checkpoint;
pub mod event;
pub mod export;
pub mod pseudonym;
pub mod verify;

pub use event::{Actor, Event, Outcome};

use crate::config::MasterKey;
use crate::crypto;
use crate::db::{DbError, TenantTx};
use crate::ids::TenantId;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// `prev_hash` of a chain's first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Appending failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The tenant's pseudonymization key could not be opened.
    #[error("audit pseudonym key: {0}")]
    Crypto(#[from] crypto::CryptoError),
}

impl From<sqlx::Error> for AuditError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

/// A stored audit row (of either chain).
#[derive(Debug, Clone, Serialize, serde::Deserialize, sqlx::FromRow, PartialEq, utoipa::ToSchema)]
#[schema(as = AuditEvent)]
pub struct StoredEvent {
    /// Position in its chain, from 1.
    pub seq: i64,
    /// Event id.
    pub id: Uuid,
    /// When (microsecond precision, as stored).
    pub occurred_at: DateTime<Utc>,
    /// `user`, `api_key`, `operator`, `anonymous` or `system`.
    pub actor_kind: String,
    /// Pseudonymous actor id.
    pub actor_id: Option<String>,
    /// What was attempted.
    pub action: String,
    /// What it was done to.
    pub target: Option<String>,
    /// `allowed`, `refused` or `failed`.
    pub outcome: String,
    /// Rule or reason.
    pub reason: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Extra facts.
    pub details: Value,
    /// Hash of the previous row in the chain.
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

/// The hash of a row: SHA-256 over the canonical JSON of every field but `hash`, plus the
/// chain's name (so rows cannot be moved between chains).
pub fn row_hash(chain: &str, e: &StoredEvent) -> String {
    let v = json!({
        "chain": chain,
        "seq": e.seq,
        "id": e.id,
        "occurred_at": e.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "actor_kind": e.actor_kind,
        "actor_id": e.actor_id,
        "action": e.action,
        "target": e.target,
        "outcome": e.outcome,
        "reason": e.reason,
        "request_id": e.request_id,
        "details": e.details,
        "prev_hash": e.prev_hash,
    });
    crypto::sha256_hex(canonical::to_string(&v).as_bytes())
}

/// A tenant's pseudonymization key, opened ([`Auditor::tenant_pseudonyms`]).
pub struct Pseudonyms(Option<[u8; 32]>);

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonyms(..)")
    }
}

impl Pseudonyms {
    /// The pseudonym of `raw` (e.g. `user:{id}`), as the chain stores it.
    pub fn of(&self, raw: &str) -> String {
        pseudonym::apply(self.0.as_ref(), raw)
    }
}

/// Writes audit events. Holds the master key to open tenants' pseudonymization keys.
#[derive(Clone, Debug)]
pub struct Auditor {
    master: MasterKey,
}

/// Columns in insert/select order.
pub(crate) const COLS: &str = "seq, id, occurred_at, actor_kind, actor_id, action, target, outcome, reason, request_id, details, prev_hash, hash";

fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

impl Auditor {
    /// An auditor using `master` for pseudonym keys.
    pub fn new(master: MasterKey) -> Self {
        Self { master }
    }

    /// The tenant's pseudonym of a raw identifier (e.g. `user:{id}`), for filtering.
    pub async fn tenant_pseudonym(&self, tx: &mut TenantTx, raw: &str) -> Result<String, AuditError> {
        Ok(self.tenant_pseudonyms(tx).await?.of(raw))
    }

    /// The tenant's pseudonymizer, its key read and opened once: for pseudonymizing many
    /// identifiers (an access review's every account).
    pub async fn tenant_pseudonyms(&self, tx: &mut TenantTx) -> Result<Pseudonyms, AuditError> {
        Ok(Pseudonyms(pseudonym::tenant_key(tx, &self.master).await?))
    }

    /// Appends `ev` to the tenant's chain inside `tx` (so it commits with the action it
    /// records, or not at all).
    pub async fn tenant(&self, tx: &mut TenantTx, ev: Event) -> Result<StoredEvent, AuditError> {
        let tenant = tx.tenant_id();
        let key = pseudonym::tenant_key(tx, &self.master).await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('audit:' || $1::text, 0))")
            .bind(tenant.to_string())
            .execute(tx.conn())
            .await?;
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                .fetch_optional(tx.conn())
                .await?;
        let row = build(&tenant.to_string(), head, ev, key.as_ref());
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO audit_events (tenant_id, {COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )))
        .bind(tenant)
        .bind(row.seq)
        .bind(row.id)
        .bind(row.occurred_at)
        .bind(&row.actor_kind)
        .bind(&row.actor_id)
        .bind(&row.action)
        .bind(&row.target)
        .bind(&row.outcome)
        .bind(&row.reason)
        .bind(&row.request_id)
        .bind(&row.details)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .execute(tx.conn())
        .await?;
        Ok(row)
    }

    /// Appends `ev` to the tenant's chain in a transaction of its own (refusals, which
    /// have no other write to commit with).
    pub async fn tenant_standalone(
        &self,
        db: &crate::db::Db,
        tenant: TenantId,
        ev: Event,
    ) -> Result<StoredEvent, AuditError> {
        let mut tx = db.begin_tenant(tenant).await?;
        let row = self.tenant(&mut tx, ev).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Appends `ev` to the platform chain (operator actions, refusals naming no tenant) in
    /// a transaction of its own.
    pub async fn platform(&self, pool: &sqlx::PgPool, ev: Event) -> Result<StoredEvent, AuditError> {
        let mut tx = pool.begin().await?;
        let row = self.platform_in(&mut tx, ev).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Appends `ev` to the platform chain inside the caller's transaction, so that it
    /// commits with the change it records or not at all.
    pub async fn platform_in(
        &self,
        conn: &mut sqlx::PgConnection,
        ev: Event,
    ) -> Result<StoredEvent, AuditError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('audit:platform', 0))")
            .execute(&mut *conn)
            .await?;
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM platform_audit_events ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *conn)
                .await?;
        let key = pseudonym::platform_key(&self.master);
        let row = build("platform", head, ev, Some(&key));
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO platform_audit_events ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )))
        .bind(row.seq)
        .bind(row.id)
        .bind(row.occurred_at)
        .bind(&row.actor_kind)
        .bind(&row.actor_id)
        .bind(&row.action)
        .bind(&row.target)
        .bind(&row.outcome)
        .bind(&row.reason)
        .bind(&row.request_id)
        .bind(&row.details)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .execute(&mut *conn)
        .await?;
        Ok(row)
    }

    /// Records an operator's change on the tenant's chain and the platform's, inside the
    /// change's own transaction (`tx`, a control-plane transaction narrowed to the tenant):
    /// the change and both events commit together, or none does. Lock order: the tenant's
    /// chain, then the platform's (everywhere both are taken).
    pub async fn operator_change(&self, tx: &mut TenantTx, ev: Event) -> Result<(), AuditError> {
        self.tenant(tx, ev.clone()).await?;
        self.platform_in(tx.conn(), ev).await?;
        Ok(())
    }

    /// Ends a change made as the control role in `tx`: narrows it to `tenant`, records `ev`
    /// on both chains ([`Auditor::operator_change`]) and commits, all or nothing.
    pub async fn commit_operator_change(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Postgres>,
        tenant: TenantId,
        ev: Event,
    ) -> Result<(), AuditError> {
        let mut tx = crate::db::ControlDb::scope_to_tenant(tx, tenant).await?;
        self.operator_change(&mut tx, ev).await?;
        Ok(tx.commit().await?)
    }
}

fn build(chain: &str, head: Option<(i64, String)>, ev: Event, key: Option<&[u8; 32]>) -> StoredEvent {
    let (seq, prev_hash) = match head {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_owned()),
    };
    let mut details = ev.details;
    if let (Some(ip), Value::Object(m)) = (ev.ip, &mut details) {
        m.insert(
            "ip".into(),
            Value::String(pseudonym::apply(key, &format!("ip:{ip}"))),
        );
    }
    let mut row = StoredEvent {
        seq,
        id: Uuid::new_v4(),
        occurred_at: now_micros(),
        actor_kind: ev.actor.kind().to_owned(),
        actor_id: ev.actor.raw_id().map(|raw| pseudonym::apply(key, &raw)),
        action: ev.action,
        target: ev.target,
        outcome: ev.outcome.as_str().to_owned(),
        reason: ev.reason,
        request_id: ev.request_id,
        details,
        prev_hash,
        hash: String::new(),
    };
    row.hash = row_hash(chain, &row);
    row
}
