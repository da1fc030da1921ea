//! The job registry: every job kind this worker runs, one file per kind, and how each
//! becomes an apalis worker on its own queue.

pub mod access_review;
pub mod answer;
pub mod chunk;
pub mod delete;
pub mod delete_tenant;
pub mod embed;
pub mod export;
pub mod guard;
pub mod import;
pub mod index;
pub mod invoice;
pub mod parse;
mod poll;

use crate::context::Ctx;
use apalis::prelude::*;
use apalis_redis::RedisStorage;
use docket_platform::access_reviews::job::AccessReviewJob;
use docket_platform::billing::job::InvoiceJob;
use docket_platform::deletions::job::DeleteJob;
use docket_platform::exports::job::ExportJob;
use docket_platform::imports::job::ImportJob;
use docket_platform::jobs::{JobEnvelope, JobKind, Lane};
use docket_platform::queries::job::AnswerJob;
use poll::FastPoll;
use std::time::Duration;

/// Kinds every worker process consumes.
pub const CONSUMED: [JobKind; 3] = [JobKind::Parse, JobKind::Chunk, JobKind::Embed];
/// Kinds only the process that owns the vector store consumes.
pub const OWNER_CONSUMES: [JobKind; 1] = [JobKind::Index];

/// Bulk-lane jobs per queue a worker process runs at once (at least).
const BULK_CONCURRENCY: usize = 8;

/// Idle pickup latency bound.
const POLL: Duration = Duration::from_millis(50);
/// Idle pickup latency bound for questions (someone is waiting for each one).
const ANSWER_POLL: Duration = Duration::from_millis(10);

/// Registers one apalis worker per lane for `$kind` running `$handler`. A macro because each
/// handler makes a worker of a different type.
macro_rules! register {
    ($monitor:expr, $ctx:expr, $conn:expr, $name:expr, $kind:expr, $handler:path) => {{
        let mut monitor = $monitor;
        for lane in Lane::ALL {
            monitor = register!(@lane monitor, $ctx, $conn, $name, $kind, lane, $handler);
        }
        monitor
    }};
    (@lane $monitor:expr, $ctx:expr, $conn:expr, $name:expr, $kind:expr, $lane:expr, $handler:path) => {{
        let (ctx, conn, base, lane) = (
            $ctx.clone(),
            $conn.clone(),
            format!("{}-{}-{}", $name, $kind.as_str(), $lane.as_str()),
            $lane,
        );
        $monitor.register(move |restarts| {
            let config = ctx
                .queue
                .config($kind, lane)
                // A SIGKILLed worker's job returns after ~2 missed 5 s heartbeats.
                .heartbeat_interval(Duration::from_secs(5))
                .missed_heartbeats(2)
                // Fetch only when a slot is free: buffered jobs would stall the heartbeat.
                .batch_size(1);
            let backend = RedisStorage::<JobEnvelope>::new(conn.clone())
                .with_config(config)
                .poll_with_strategy(FastPoll::new(POLL));
            WorkerBuilder::new(format!("{base}-r{restarts}"))
                .backend(backend)
                .parallelize(tokio::spawn)
                .concurrency(match lane {
                    Lane::Interactive => ctx.config.ingest.worker_concurrency,
                    // Bulk jobs mostly wait (for their batch, the database, storage): more of
                    // them in flight is what lets the embedding batcher form full batches.
                    Lane::Bulk => ctx.config.ingest.worker_concurrency.max(BULK_CONCURRENCY),
                })
                .data(ctx.clone())
                .build($handler)
        })
    }};
}

/// Builds the monitor with one worker per consumed queue. Worker names are unique per
/// monitor (a stopped worker's name stays registered for a while). What happens when a
/// worker fails is [`crate::consume`]'s business.
pub fn monitor(ctx: Ctx, conn: apalis_redis::ConnectionManager, name: &str) -> Monitor {
    let monitor = Monitor::new();
    let monitor = register!(monitor, ctx, conn, name, JobKind::Parse, parse::handle);
    let monitor = register!(monitor, ctx, conn, name, JobKind::Chunk, chunk::handle);
    let monitor = register!(monitor, ctx, conn, name, JobKind::Embed, embed::handle);
    let monitor = register_import(monitor, ctx.clone(), conn.clone(), name);
    let monitor = register_invoice(monitor, ctx.clone(), conn.clone(), name);
    let monitor = register_export(monitor, ctx.clone(), conn.clone(), name);
    let monitor = register_access_review(monitor, ctx.clone(), conn.clone(), name);
    match ctx.vectors.is_some() {
        true => {
            let monitor = register!(monitor, ctx, conn, name, JobKind::Index, index::handle);
            let monitor = register_delete(monitor, ctx.clone(), conn.clone(), name);
            register_answer(monitor, ctx, conn, name)
        }
        false => monitor,
    }
}

/// Imports unpacked at once per worker process (each holds its archive in memory).
const IMPORT_CONCURRENCY: usize = 2;

/// Registers the `import` worker (unpacking sources into waiting documents) on every
/// worker process.
fn register_import(monitor: Monitor, ctx: Ctx, conn: apalis_redis::ConnectionManager, name: &str) -> Monitor {
    let base = format!("{name}-import");
    monitor.register(move |restarts| {
        let config = docket_platform::imports::job::config(&ctx.queue)
            .heartbeat_interval(Duration::from_secs(5))
            .missed_heartbeats(2)
            .batch_size(1);
        let backend = RedisStorage::<ImportJob>::new(conn.clone())
            .with_config(config)
            .poll_with_strategy(FastPoll::new(POLL));
        WorkerBuilder::new(format!("{base}-r{restarts}"))
            .backend(backend)
            .parallelize(tokio::spawn)
            .concurrency(IMPORT_CONCURRENCY)
            .data(ctx.clone())
            .build(import::handle)
    })
}

/// Invoices computed at once per worker process (each is a few short queries).
const INVOICE_CONCURRENCY: usize = 8;

/// Registers the `invoice` worker (one tenant's month) on every worker process.
fn register_invoice(
    monitor: Monitor,
    ctx: Ctx,
    conn: apalis_redis::ConnectionManager,
    name: &str,
) -> Monitor {
    let base = format!("{name}-invoice");
    monitor.register(move |restarts| {
        let config = docket_platform::billing::job::config(&ctx.queue)
            .heartbeat_interval(Duration::from_secs(5))
            .missed_heartbeats(2)
            .batch_size(INVOICE_CONCURRENCY);
        let backend = RedisStorage::<InvoiceJob>::new(conn.clone())
            .with_config(config)
            .poll_with_strategy(FastPoll::new(POLL));
        WorkerBuilder::new(format!("{base}-r{restarts}"))
            .backend(backend)
            .parallelize(tokio::spawn)
            .concurrency(INVOICE_CONCURRENCY)
            .data(ctx.clone())
            .build(invoice::handle)
    })
}

/// Reviews built at once per worker process (each reads a quarter of audit events as
/// aggregates and holds one report in memory).
const ACCESS_REVIEW_CONCURRENCY: usize = 2;

/// Registers the `access_review` worker (one tenant's quarter) on every worker process.
fn register_access_review(
    monitor: Monitor,
    ctx: Ctx,
    conn: apalis_redis::ConnectionManager,
    name: &str,
) -> Monitor {
    let base = format!("{name}-access-review");
    monitor.register(move |restarts| {
        let config = docket_platform::access_reviews::job::config(&ctx.queue)
            .heartbeat_interval(Duration::from_secs(5))
            .missed_heartbeats(2)
            .batch_size(1);
        let backend = RedisStorage::<AccessReviewJob>::new(conn.clone())
            .with_config(config)
            .poll_with_strategy(FastPoll::new(POLL));
        WorkerBuilder::new(format!("{base}-r{restarts}"))
            .backend(backend)
            .parallelize(tokio::spawn)
            .concurrency(ACCESS_REVIEW_CONCURRENCY)
            .data(ctx.clone())
            .build(access_review::handle)
    })
}

/// Exports written at once per worker process.
const EXPORT_CONCURRENCY: usize = 2;

/// Registers the `export` worker (one tenant's package into its bucket) on every worker.
fn register_export(monitor: Monitor, ctx: Ctx, conn: apalis_redis::ConnectionManager, name: &str) -> Monitor {
    let base = format!("{name}-export");
    monitor.register(move |restarts| {
        let config = docket_platform::exports::job::config(&ctx.queue)
            .heartbeat_interval(Duration::from_secs(5))
            .missed_heartbeats(2)
            .batch_size(1);
        let backend = RedisStorage::<ExportJob>::new(conn.clone())
            .with_config(config)
            .poll_with_strategy(FastPoll::new(POLL));
        WorkerBuilder::new(format!("{base}-r{restarts}"))
            .backend(backend)
            .parallelize(tokio::spawn)
            .concurrency(EXPORT_CONCURRENCY)
            .data(ctx.clone())
            .build(export::handle)
    })
}

/// Deletions carried out at once per worker process.
const DELETE_CONCURRENCY: usize = 2;

/// Registers the `delete` worker: only where the vector store is (the sweep deletes points).
fn register_delete(monitor: Monitor, ctx: Ctx, conn: apalis_redis::ConnectionManager, name: &str) -> Monitor {
    let base = format!("{name}-delete");
    monitor.register(move |restarts| {
        let config = docket_platform::deletions::job::config(&ctx.queue)
            .heartbeat_interval(Duration::from_secs(5))
            .missed_heartbeats(2)
            .batch_size(1);
        let backend = RedisStorage::<DeleteJob>::new(conn.clone())
            .with_config(config)
            .poll_with_strategy(FastPoll::new(POLL));
        WorkerBuilder::new(format!("{base}-r{restarts}"))
            .backend(backend)
            .parallelize(tokio::spawn)
            .concurrency(DELETE_CONCURRENCY)
            .data(ctx.clone())
            .build(delete::handle)
    })
}

/// Questions in flight per worker process: answering mostly waits (database, search), and
/// the model call itself runs on the blocking pool.
const ANSWER_CONCURRENCY: usize = 16;

/// Registers the `answer` worker: only where searches can run (the process owning the
/// in-process engine, or every process with a Qdrant server).
fn register_answer(monitor: Monitor, ctx: Ctx, conn: apalis_redis::ConnectionManager, name: &str) -> Monitor {
    let base = format!("{name}-answer");
    monitor.register(move |restarts| {
        let config = docket_platform::queries::job::config(&ctx.queue)
            .heartbeat_interval(Duration::from_secs(5))
            .missed_heartbeats(2)
            .batch_size(4);
        let backend = RedisStorage::<AnswerJob>::new(conn.clone())
            .with_config(config)
            .poll_with_strategy(FastPoll::new(ANSWER_POLL));
        WorkerBuilder::new(format!("{base}-r{restarts}"))
            .backend(backend)
            .parallelize(tokio::spawn)
            .concurrency(ANSWER_CONCURRENCY)
            .data(ctx.clone())
            .build(answer::handle)
    })
}
