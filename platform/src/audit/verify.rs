//! Walking a chain offline: sequence, links and hashes. Reports the first broken link.

use super::{COLS, GENESIS, StoredEvent, row_hash};
use crate::ids::TenantId;
use futures::TryStreamExt;
use serde::Serialize;

/// The result of verifying one chain.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// `platform` or the tenant id.
    pub chain: String,
    /// Rows read.
    pub events: u64,
    /// True when every link holds.
    pub ok: bool,
    /// The first problem found.
    pub first_break: Option<Break>,
}

/// A broken link.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Break {
    /// The sequence number where the chain breaks.
    pub seq: i64,
    /// What is wrong there.
    pub problem: String,
}

fn check(chain: &str, expected_seq: i64, prev_hash: &str, e: &StoredEvent) -> Option<Break> {
    if e.seq != expected_seq {
        return Some(Break {
            seq: expected_seq,
            problem: format!("row {expected_seq} is missing (next row is {})", e.seq),
        });
    }
    if e.prev_hash != prev_hash {
        return Some(Break {
            seq: e.seq,
            problem: "prev_hash does not match the previous row's hash".into(),
        });
    }
    if row_hash(chain, e) != e.hash {
        return Some(Break {
            seq: e.seq,
            problem: "hash does not match the row's contents".into(),
        });
    }
    None
}

/// Walks one chain row by row, from its first row: the same checks whether the rows come
/// from the database or from an exported file.
#[derive(Debug)]
pub struct Walker {
    chain: String,
    events: u64,
    prev: String,
    first_break: Option<Break>,
}

impl Walker {
    /// A walk of `chain` (`platform` or the tenant id: it is part of every row's hash).
    pub fn new(chain: impl Into<String>) -> Self {
        Self {
            chain: chain.into(),
            events: 0,
            prev: GENESIS.to_owned(),
            first_break: None,
        }
    }

    /// Checks the next row; false once the chain is broken (later rows are not read).
    pub fn push(&mut self, e: &StoredEvent) -> bool {
        if self.first_break.is_some() {
            return false;
        }
        self.events += 1;
        if let Some(b) = check(&self.chain, self.events as i64, &self.prev, e) {
            self.first_break = Some(b);
            return false;
        }
        e.hash.clone_into(&mut self.prev);
        true
    }

    /// The last good row: (seq, hash), `(0, GENESIS)` for an empty chain.
    pub fn head(&self) -> (i64, &str) {
        let good = self.events - u64::from(self.first_break.is_some());
        (good as i64, &self.prev)
    }

    /// The report.
    pub fn finish(self) -> Report {
        Report {
            chain: self.chain,
            events: self.events,
            ok: self.first_break.is_none(),
            first_break: self.first_break,
        }
    }
}

async fn walk<'a, S>(chain: String, mut rows: S) -> Result<Report, sqlx::Error>
where
    S: futures::Stream<Item = Result<StoredEvent, sqlx::Error>> + Unpin + 'a,
{
    let mut w = Walker::new(chain);
    while let Some(e) = rows.try_next().await? {
        if !w.push(&e) {
            break;
        }
    }
    Ok(w.finish())
}

/// Verifies a tenant's chain. `pool` must see all the tenant's rows (control or owner role).
pub async fn tenant(pool: &sqlx::PgPool, tenant: TenantId) -> Result<Report, sqlx::Error> {
    let sql = format!("SELECT {COLS} FROM audit_events WHERE tenant_id = $1 ORDER BY seq");
    let rows = sqlx::query_as::<_, StoredEvent>(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .fetch(pool);
    walk(tenant.to_string(), rows).await
}

/// Verifies the platform chain.
pub async fn platform(pool: &sqlx::PgPool) -> Result<Report, sqlx::Error> {
    let sql = format!("SELECT {COLS} FROM platform_audit_events ORDER BY seq");
    let rows = sqlx::query_as::<_, StoredEvent>(sqlx::AssertSqlSafe(sql)).fetch(pool);
    walk("platform".into(), rows).await
}
