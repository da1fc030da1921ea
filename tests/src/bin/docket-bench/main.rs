//! `scripts/bench <name>`: benchmarks against the same real services as the tests (a fresh
//! database, Redis, the local object folder, the in-process vector engine, the real model).
//!
//! - `embed`: raw ONNX Runtime vs end-to-end ingestion throughput on cuad-dev.
//! - `governance`: the same request through the full governance chain vs a bare handler.
//! - `answer`: 100 tenants, 32 concurrent clients asking through the API with `wait`.
//! - `answer-quality`: the clause evaluation on one half of cuad-dev (retrieval and
//!   selection in-process; `--grid` tunes on the tune half).
//! - `bulk`: a zip import of N synthetic contracts: documents/min, queue depth, memory, fairness.
//! - `login-flood`: 500 concurrent bad logins against one tenant: its users' p99 vs idle.
//! - `unpack`: a worker's peak memory while it unpacks a 1 GiB zip import.
//! - `billing`: a month's run for 10,000 tenants and 1,000,000 ledger rows; Stripe pushes/s.
//! - `export`: the 40 cuad-dev contracts (or `--bytes N`) exported to the local S3 server.
//! - `delete`: one document at a time deleted from a tenant of 10,000 synthetic contracts.
//! - `access-review`: a quarter's review of 1,000 users, 500 keys and 1,000,000 audit events.

mod access_review;
mod answer;
mod billing;
mod bulk;
mod cpu;
mod delete;
mod embed;
mod export;
mod generative;
mod governance;
mod login;
mod quality;
mod unpack;

use anyhow::bail;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str).unwrap_or("embed") {
        "embed" => embed::embed().await,
        "governance" => governance::run().await,
        "answer" => answer::run(&args[1..]).await,
        "answer-quality" => quality::run(&args[1..]).await,
        "bulk" => bulk::run(&args[1..]).await,
        "login-flood" => login::run().await,
        "unpack" => unpack::run(&args[1..]).await,
        "billing" => billing::run(&args[1..]).await,
        "export" => export::run(&args[1..]).await,
        "delete" => delete::run(&args[1..]).await,
        "access-review" => access_review::run(&args[1..]).await,
        other => {
            bail!(
                "unknown benchmark {other:?}: expected embed, governance, answer, answer-quality, bulk, login-flood, unpack, billing, export, delete or access-review"
            )
        }
    }
}

/// Resident memory (VmRSS) of a process, in KiB (0 once it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

/// The `p`-th percentile (0..=100) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
