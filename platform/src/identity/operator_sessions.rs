//! Operator panel sessions: a random token in the browser's cookie, its SHA-256 in
//! PostgreSQL, a CSRF token per session, an idle limit and an absolute expiry.

use crate::crypto::{random_token, sha256_hex};
use crate::db::{ControlDb, DbError};
use crate::ids::OperatorId;
use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

/// A session lives at most this long, however active.
pub const MAX_AGE: Duration = Duration::from_secs(8 * 3600);
/// A session unused this long has ended.
pub const IDLE: Duration = Duration::from_secs(30 * 60);

/// A live session.
#[derive(Debug, Clone)]
pub struct OperatorSession {
    /// Session id (audited; never the token).
    pub id: Uuid,
    /// Who is signed in.
    pub operator: OperatorId,
    /// The operator's email, for the page header.
    pub email: String,
    /// The token every state-changing form must carry.
    pub csrf: String,
    /// Absolute expiry.
    pub expires_at: DateTime<Utc>,
}

/// Starts a session; returns the cookie token (shown once, stored only as its hash).
pub async fn start(control: &ControlDb, operator: OperatorId) -> Result<(String, OperatorSession), DbError> {
    // Housekeeping: sessions long over are of no further use (sign-ins are audited).
    sqlx::query("DELETE FROM operator_sessions WHERE expires_at < now() - interval '30 days'")
        .execute(control.pool())
        .await?;
    let token = random_token(32);
    let csrf = random_token(32);
    let (id, email, expires_at): (Uuid, String, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO operator_sessions (token_hash, operator_id, csrf_token, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))
         RETURNING id, (SELECT email FROM operators WHERE id = $2), expires_at",
    )
    .bind(sha256_hex(token.as_bytes()))
    .bind(operator)
    .bind(&csrf)
    .bind(MAX_AGE.as_secs_f64())
    .fetch_one(control.pool())
    .await?;
    Ok((
        token,
        OperatorSession {
            id,
            operator,
            email,
            csrf,
            expires_at,
        },
    ))
}

/// The live session of a cookie token: `None` when unknown, ended, idle too long, expired,
/// or its operator is no longer active (which ends it for good). `touch` marks it used: a
/// page the operator asked for does, a page's own background refresh does not (an open tab
/// must not keep a session alive past its idle limit).
pub async fn find(control: &ControlDb, token: &str, touch: bool) -> Result<Option<OperatorSession>, DbError> {
    let hash = sha256_hex(token.as_bytes());
    let row: Option<(Uuid, OperatorId, String, String, DateTime<Utc>)> = sqlx::query_as(
        "UPDATE operator_sessions s SET last_seen_at = CASE WHEN $3 THEN now() ELSE s.last_seen_at END
         FROM operators o
         WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > now()
           AND s.last_seen_at > now() - make_interval(secs => $2)
           AND o.id = s.operator_id AND o.status = 'active'
         RETURNING s.id, s.operator_id, o.email, s.csrf_token, s.expires_at",
    )
    .bind(&hash)
    .bind(IDLE.as_secs_f64())
    .bind(touch)
    .fetch_optional(control.pool())
    .await?;
    if row.is_none() {
        // A disabled operator's session ends, so re-enabling the account does not revive a
        // cookie that may have been taken meanwhile.
        sqlx::query(
            "UPDATE operator_sessions s SET ended_at = now() FROM operators o
             WHERE s.token_hash = $1 AND s.ended_at IS NULL AND o.id = s.operator_id AND o.status <> 'active'",
        )
        .bind(&hash)
        .execute(control.pool())
        .await?;
    }
    Ok(
        row.map(|(id, operator, email, csrf, expires_at)| OperatorSession {
            id,
            operator,
            email,
            csrf,
            expires_at,
        }),
    )
}

/// Ends a session (sign-out). Returns whether it was live.
pub async fn end(control: &ControlDb, id: Uuid) -> Result<bool, DbError> {
    let r = sqlx::query("UPDATE operator_sessions SET ended_at = now() WHERE id = $1 AND ended_at IS NULL")
        .bind(id)
        .execute(control.pool())
        .await?;
    Ok(r.rows_affected() == 1)
}
