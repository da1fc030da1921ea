//! A poll strategy that keeps waking the worker every `period` (the stock interval
//! strategy can stop re-arming, leaving idle workers to pick up only on heartbeats).

use apalis::prelude::{PollSnapshot, PollStrategy};
use apalis_core::timer::Delay;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Polls the queue every `period`.
pub struct FastPoll {
    period: Duration,
    delay: Delay,
}

impl std::fmt::Debug for FastPoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPoll").field("period", &self.period).finish()
    }
}

impl FastPoll {
    /// A strategy firing every `period`.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            delay: Delay::new(period),
        }
    }
}

impl PollStrategy for FastPoll {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        if Pin::new(&mut self.delay).poll(cx).is_ready() {
            self.delay = Delay::new(self.period);
            // Polling the fresh delay registers this waker for the next tick.
            let _ = Pin::new(&mut self.delay).poll(cx);
            return Poll::Ready(Some(()));
        }
        Poll::Pending
    }
}
