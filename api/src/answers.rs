//! Waiting for answers without polling: one PostgreSQL `LISTEN` per API process on the
//! channel workers notify when a query is finished (in the transaction that stores it),
//! fanned out to waiting requests through a broadcast channel. A waiter subscribes before
//! its job is pushed, so it cannot miss its own announcement; if the listener falls behind
//! or reconnects, the waiter re-reads its query once and otherwise falls back to 202.

use docket_platform::db::Db;
use docket_platform::ids::QueryId;
use docket_platform::queries::DONE_CHANNEL;
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::broadcast;

/// The process's fan-out of finished query ids.
#[derive(Debug, Clone)]
pub struct AnswerBoard(broadcast::Sender<QueryId>);

impl Default for AnswerBoard {
    fn default() -> Self {
        Self(broadcast::channel(4096).0)
    }
}

impl AnswerBoard {
    /// A receiver of finished query ids from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<QueryId> {
        self.0.subscribe()
    }
}

/// Listens until the process stops, reconnecting after a lost connection.
pub async fn run(board: AnswerBoard, db: Db) {
    loop {
        match PgListener::connect_with(db.platform_pool()).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(DONE_CHANNEL).await {
                    tracing::warn!(error = %e, "could not LISTEN for finished queries");
                } else {
                    loop {
                        match listener.recv().await {
                            Ok(n) => {
                                if let Ok(id) = n.payload().parse::<QueryId>() {
                                    // No receivers is fine: nobody is waiting.
                                    let _ = board.0.send(id);
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "lost the finished-queries listener");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not connect the finished-queries listener"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The query was announced as finished.
    Finished,
    /// The listener lost track (lagged or closed): re-read the query.
    Unsure,
    /// The time ran out.
    TimedOut,
}

/// Waits up to `limit` for `id` to be announced on `rx`.
pub async fn wait_for(rx: &mut broadcast::Receiver<QueryId>, id: QueryId, limit: Duration) -> Waited {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => return Waited::TimedOut,
            Ok(Ok(done)) if done == id => return Waited::Finished,
            Ok(Ok(_)) => continue,
            Ok(Err(_)) => return Waited::Unsure,
        }
    }
}
