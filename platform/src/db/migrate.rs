//! Schema migrations, embedded at compile time from `migrations/`.

use super::DbError;
use crate::secret::Secret;
use sqlx::Connection;

/// All migrations of the workspace's `migrations/` folder.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Applies pending migrations; `url` must connect as the owner role.
pub async fn run_migrations(url: &Secret<String>) -> Result<(), DbError> {
    let mut conn = sqlx::PgConnection::connect(url.expose()).await?;
    MIGRATOR
        .run(&mut conn)
        .await
        .map_err(|e| DbError::Sqlx(sqlx::Error::Migrate(Box::new(e))))?;
    conn.close().await?;
    Ok(())
}
