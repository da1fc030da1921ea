//! Platform operators (Docket's staff): a separate kind of principal, reached only through
//! the control-plane role.

use super::users::Email;
use crate::db::{ControlDb, DbError};
use crate::ids::OperatorId;

/// Creates an operator; fails on a duplicate email.
pub async fn create(
    conn: &mut sqlx::PgConnection,
    email: &Email,
    password_hash: &str,
) -> Result<OperatorId, DbError> {
    Ok(
        sqlx::query_scalar("INSERT INTO operators (email, password_hash) VALUES ($1, $2) RETURNING id")
            .bind(email.as_str())
            .bind(password_hash)
            .fetch_one(conn)
            .await?,
    )
}

/// Id, password hash and whether active, by email.
pub async fn find_for_login(
    control: &ControlDb,
    email: &Email,
) -> Result<Option<(OperatorId, String, bool)>, DbError> {
    let row: Option<(OperatorId, String, String)> =
        sqlx::query_as("SELECT id, password_hash, status FROM operators WHERE lower(email) = $1")
            .bind(email.as_str())
            .fetch_optional(control.pool())
            .await?;
    Ok(row.map(|(id, h, s)| (id, h, s == "active")))
}

/// Whether the operator exists and is active.
pub async fn is_active(control: &ControlDb, id: OperatorId) -> Result<bool, DbError> {
    let s: Option<String> = sqlx::query_scalar("SELECT status FROM operators WHERE id = $1")
        .bind(id)
        .fetch_optional(control.pool())
        .await?;
    Ok(s.as_deref() == Some("active"))
}
