//! Keeping the job queues consumed for as long as the process lives.
//!
//! apalis restarts a failed worker at once, in the same poll: with Redis gone that is a
//! busy loop, and the old answer (give up after 50 restarts) left a process that no longer
//! consumed anything while its heartbeat stayed green. Here a worker that fails stops the
//! whole monitor; the loop waits a bounded, jittered, exponentially growing delay, connects
//! again and builds a fresh monitor, forever. The heartbeat reports the state
//! ([`Consumption`]), so `/readyz` names a process that is not consuming.

use crate::context::Ctx;
use crate::jobs;
use docket_platform::redis_conn::Redis;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Whether this process is consuming its queues, as its heartbeat reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumption {
    /// Not connected yet.
    Starting,
    /// The job monitor runs.
    Consuming,
    /// The queues failed; waiting before connecting again.
    Reconnecting,
    /// The consumption loop ended without a shutdown (the process exits non-zero).
    Stopped,
}

impl Consumption {
    /// The heartbeat's word for it (`ok` only while consuming).
    pub fn as_str(self) -> &'static str {
        match self {
            Consumption::Starting => "starting",
            Consumption::Consuming => "ok",
            Consumption::Reconnecting => "reconnecting",
            Consumption::Stopped => "stopped",
        }
    }
}

/// How one monitor's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Every worker returned on its own.
    Finished,
    /// A worker failed (the others are stopped).
    Failed,
    /// Shutdown was asked for.
    Stopping,
}

/// First delay after a failure.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
/// Longest delay between two attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A monitor that ran this long without failing resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// How long a failed monitor may take to let its in-flight jobs end before it is dropped
/// (their jobs are then re-delivered; every stage is idempotent).
const DRAIN: Duration = Duration::from_secs(30);

/// The delay before attempt `failures` (1 = after the first failure): exponential, capped,
/// with "equal jitter" (between half and all of it) so that many workers cut off by the
/// same outage do not reconnect in lockstep.
pub fn backoff(failures: u32) -> Duration {
    let exp = BACKOFF_FIRST.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let cap = exp.min(BACKOFF_MAX);
    let unit = (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0;
    cap.mul_f64(0.5 + 0.5 * unit)
}

/// Runs the job monitor until `stop`, rebuilding it after every failure.
pub async fn run(ctx: Ctx, redis: Redis, state: watch::Sender<Consumption>, mut stop: watch::Receiver<bool>) {
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        let conn = match redis.conn().await {
            Ok(c) => c,
            Err(e) => {
                failures += 1;
                let _ = state.send(Consumption::Reconnecting);
                let wait = backoff(failures);
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "job queues unavailable");
                if sleep_or_stop(wait, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        // Unique per monitor: a stopped worker's name stays registered in Redis for a while.
        let name = format!(
            "{}-{}",
            ctx.config.worker_name,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let failed = Arc::new(tokio::sync::Notify::new());
        let signal = failed.clone();
        let monitor = jobs::monitor(ctx.clone(), conn, &name).should_restart(move |w, e| {
            // Declining the restart ends this worker; the notification ends the rest of the
            // monitor, and the loop below builds a new one after a pause.
            tracing::error!(worker = %w.name(), error = %e, "job worker failed; the queues restart after a pause");
            signal.notify_one();
            false
        });
        let handle = monitor.context();
        let started = Instant::now();
        let _ = state.send(Consumption::Consuming);
        let run = monitor.run();
        tokio::pin!(run);
        let ended = tokio::select! {
            res = &mut run => {
                // Every worker ended (none is left consuming): treat it as a failure.
                if let Err(e) = res {
                    tracing::error!(error = %e, "job monitor ended");
                }
                Ended::Finished
            }
            _ = failed.notified() => Ended::Failed,
            _ = stop.changed() => Ended::Stopping,
        };
        if ended != Ended::Finished
            && let Err(e) = handle.shutdown()
        {
            tracing::warn!(error = %e, "could not signal the job workers to stop");
        }
        match ended {
            // A requested shutdown waits as long as the caller's own grace period allows.
            Ended::Stopping => {
                if let Err(e) = run.await {
                    tracing::warn!(error = %e, "job monitor stopped with an error");
                }
                return;
            }
            Ended::Failed => {
                if tokio::time::timeout(DRAIN, &mut run).await.is_err() {
                    tracing::warn!(
                        "in-flight jobs did not end after the queue failure; they will be re-delivered"
                    );
                }
            }
            Ended::Finished => {}
        }
        let _ = state.send(Consumption::Reconnecting);
        failures = match started.elapsed() >= HEALTHY_AFTER {
            true => 1,
            false => failures + 1,
        };
        let wait = backoff(failures);
        tracing::warn!(
            failures,
            retry_in_ms = wait.as_millis() as u64,
            "job queues stopped; consuming again after a pause"
        );
        if sleep_or_stop(wait, &mut stop).await {
            return;
        }
    }
}

/// Sleeps `d`; true if `stop` fired meanwhile.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for n in 1..40 {
            let d = backoff(n);
            let cap = BACKOFF_FIRST
                .saturating_mul(1 << (n - 1).min(16))
                .min(BACKOFF_MAX);
            assert!(
                d >= cap / 2 && d <= cap,
                "attempt {n}: {d:?} outside [{:?}, {cap:?}]",
                cap / 2
            );
        }
        assert!(backoff(40) <= BACKOFF_MAX);
        let distinct: std::collections::HashSet<_> = (0..20).map(|_| backoff(10)).collect();
        assert!(distinct.len() > 1, "jittered");
    }
}
