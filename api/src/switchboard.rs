//! This process's snapshot of the incident switches, refreshed every 500 ms (a switch takes
//! effect within a second across all API processes). A snapshot older than two seconds is
//! not trusted: requests are refused until it can be read again (fail closed).

use docket_platform::db::{Db, DbError};
use docket_platform::switches::{self, Switch};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const REFRESH: Duration = Duration::from_millis(500);
const STALE: Duration = Duration::from_secs(2);

/// When the switches were read, and what they were.
type Snapshot = Option<(Instant, Vec<Switch>)>;

/// The shared snapshot.
#[derive(Debug, Clone, Default)]
pub struct SwitchBoard(Arc<RwLock<Snapshot>>);

impl SwitchBoard {
    /// Reloads from PostgreSQL.
    pub async fn refresh(&self, db: &Db) -> Result<(), DbError> {
        let list = switches::active(db).await?;
        if let Ok(mut s) = self.0.write() {
            *s = Some((Instant::now(), list));
        }
        Ok(())
    }

    fn fresh(&self) -> Option<Vec<Switch>> {
        let s = self.0.read().ok()?;
        let (at, list) = s.as_ref()?;
        (at.elapsed() < STALE).then(|| list.clone())
    }

    /// The switches in force, or `None` when they cannot be known (then: refuse).
    pub async fn current(&self, db: &Db) -> Option<Vec<Switch>> {
        if let Some(list) = self.fresh() {
            return Some(list);
        }
        match self.refresh(db).await {
            Ok(()) => self.fresh(),
            Err(e) => {
                tracing::error!(error = %e, "incident switches unreadable; refusing requests");
                None
            }
        }
    }
}

/// Refreshes the snapshot until the process stops.
pub async fn run(board: SwitchBoard, db: Db) {
    loop {
        if let Err(e) = board.refresh(&db).await {
            tracing::warn!(error = %e, "could not refresh incident switches");
        }
        tokio::time::sleep(REFRESH).await;
    }
}
