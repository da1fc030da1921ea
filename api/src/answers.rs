//! Waiting for answers without polling: one PostgreSQL `LISTEN` per API process on the
//! channel workers notify when a query is finished (in the transaction that stores it),
//! handed to the one request waiting for that query id. A waiter registers before its job
//! is pushed, so it cannot miss its own announcement; when the listener loses its
//! connection (announcements may have been missed meanwhile), every waiter is told to
//! re-read its query, and one whose query is not finished yet registers again and waits
//! for the rest of its time (a reconnect never cuts a wait short into a 202).
//!
//! Waiters are kept by query id rather than all woken for every announcement: with 32
//! requests waiting and 200 answers a second, a broadcast woke 6,400 tasks a second, each
//! to find the id was not its own.

use docket_platform::db::Db;
use docket_platform::ids::QueryId;
use docket_platform::queries::DONE_CHANNEL;
use sqlx::postgres::PgListener;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;

/// The process's waiting requests, by the query each waits for.
#[derive(Debug, Clone, Default)]
pub struct AnswerBoard(Arc<Mutex<HashMap<QueryId, oneshot::Sender<Waited>>>>);

/// One request's place on the board; leaving (drop) takes it off.
#[derive(Debug)]
pub struct Ticket {
    board: AnswerBoard,
    id: QueryId,
    rx: oneshot::Receiver<Waited>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.board.waiters().remove(&self.id);
    }
}

impl AnswerBoard {
    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<QueryId, oneshot::Sender<Waited>>> {
        // The map stays consistent whatever panicked while holding it (single inserts and
        // removes), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for `id` from now on (register before the job exists).
    pub fn register(&self, id: QueryId) -> Ticket {
        let (tx, rx) = oneshot::channel();
        self.waiters().insert(id, tx);
        Ticket {
            board: self.clone(),
            id,
            rx,
        }
    }

    /// `id` is finished: wakes its waiter, if any.
    pub fn announce(&self, id: QueryId) {
        let waiter = self.waiters().remove(&id);
        if let Some(tx) = waiter {
            let _ = tx.send(Waited::Finished);
        }
    }

    /// Announcements may have been missed: every current waiter re-reads its query.
    pub fn lost_track(&self) {
        let all: Vec<_> = self.waiters().drain().collect();
        for (_, tx) in all {
            let _ = tx.send(Waited::Unsure);
        }
    }

    /// Requests waiting now.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiters().len()
    }
}

/// Listens until the process stops, with a new connection whenever one is lost.
pub async fn run(board: AnswerBoard, db: Db) {
    loop {
        let mut listener = match listen(&db).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "could not LISTEN for finished queries");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // Whoever registered before this LISTEN took effect may have missed its
        // announcement (at start nobody has; after a lost connection, anyone may have).
        board.lost_track();
        loop {
            // `try_recv` reports a lost connection (`None`); `recv` would reconnect
            // silently and drop whatever was announced in between.
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Ok(id) = n.payload().parse::<QueryId>() {
                        board.announce(id);
                    }
                }
                Ok(None) => {
                    tracing::warn!("lost the finished-queries listener's connection");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lost the finished-queries listener");
                    break;
                }
            }
        }
    }
}

async fn listen(db: &Db) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(db.platform_pool()).await?;
    listener.listen(DONE_CHANNEL).await?;
    Ok(listener)
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The query was announced as finished.
    Finished,
    /// The listener lost track (announcements may have been missed): re-read the query.
    Unsure,
    /// The time ran out.
    TimedOut,
}

/// Waits up to `limit` for the ticket's query to be announced.
pub async fn wait_for(ticket: &mut Ticket, limit: Duration) -> Waited {
    match tokio::time::timeout(limit, &mut ticket.rx).await {
        Err(_) => Waited::TimedOut,
        Ok(Ok(w)) => w,
        // Taken off the board without a word (a second registration of the same id).
        Ok(Err(_)) => Waited::Unsure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_announcement_wakes_only_its_own_waiter() {
        let board = AnswerBoard::default();
        let (a, b) = (QueryId::new_random(), QueryId::new_random());
        let mut ta = board.register(a);
        let mut tb = board.register(b);
        board.announce(a);
        assert_eq!(wait_for(&mut ta, Duration::from_secs(5)).await, Waited::Finished);
        assert_eq!(
            wait_for(&mut tb, Duration::from_millis(50)).await,
            Waited::TimedOut
        );
        // An id nobody waits for is ignored.
        board.announce(QueryId::new_random());
        assert_eq!(board.waiting(), 1);
    }

    #[tokio::test]
    async fn losing_track_tells_every_waiter_to_reread() {
        let board = AnswerBoard::default();
        let mut t1 = board.register(QueryId::new_random());
        let mut t2 = board.register(QueryId::new_random());
        board.lost_track();
        assert_eq!(wait_for(&mut t1, Duration::from_secs(5)).await, Waited::Unsure);
        assert_eq!(wait_for(&mut t2, Duration::from_secs(5)).await, Waited::Unsure);
        assert_eq!(board.waiting(), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_leaves_is_taken_off_the_board() {
        let board = AnswerBoard::default();
        let id = QueryId::new_random();
        let ticket = board.register(id);
        assert_eq!(board.waiting(), 1);
        drop(ticket);
        assert_eq!(board.waiting(), 0);
        board.announce(id);
    }
}
