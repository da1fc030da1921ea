//! Where the CPU goes during a benchmark, without a profiler (`perf` is not permitted in
//! this container): on-CPU time per thread of this process (grouped by thread name), of the
//! PostgreSQL and Redis server processes, plus PostgreSQL transactions and Redis commands,
//! read before and after the measured window and printed per unit of work.

use std::collections::BTreeMap;
use std::fs;

/// On-CPU nanoseconds of one process or thread (`schedstat`'s first field).
fn on_cpu_ns(path: &str) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// A reading of the counters.
#[derive(Debug, Default, Clone)]
pub struct Reading {
    /// This process's threads, by name (`comm`), summed.
    threads: BTreeMap<String, u64>,
    /// All processes by name among the servers we share the machine with.
    servers: BTreeMap<String, u64>,
    /// PostgreSQL commits + rollbacks in the benchmark's database.
    xacts: i64,
    /// Redis commands by name.
    redis: BTreeMap<String, u64>,
    /// The machine's jiffies: (idle + iowait, steal, total), from `/proc/stat`.
    machine: (u64, u64, u64),
}

fn machine_jiffies() -> (u64, u64, u64) {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    (at(3) + at(4), at(7), f.iter().take(8).sum())
}

const SERVERS: [&str; 2] = ["postgres", "redis-server"];

impl Reading {
    /// Reads everything now.
    pub async fn take(db: &sqlx::PgPool, redis_url: &str) -> Self {
        let mut r = Reading {
            machine: machine_jiffies(),
            ..Reading::default()
        };
        if let Ok(tasks) = fs::read_dir("/proc/self/task") {
            for t in tasks.flatten() {
                let dir = t.path();
                let name = fs::read_to_string(dir.join("comm")).unwrap_or_default();
                let ns = on_cpu_ns(&dir.join("schedstat").to_string_lossy());
                *r.threads.entry(name.trim().to_owned()).or_default() += ns;
            }
        }
        if let Ok(procs) = fs::read_dir("/proc") {
            for p in procs.flatten() {
                let dir = p.path();
                let name = fs::read_to_string(dir.join("comm")).unwrap_or_default();
                let name = name.trim();
                if SERVERS.contains(&name) {
                    *r.servers.entry(name.to_owned()).or_default() +=
                        on_cpu_ns(&dir.join("schedstat").to_string_lossy());
                }
            }
        }
        r.xacts = sqlx::query_scalar(
            "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(db)
        .await
        .unwrap_or(0);
        if let Ok(client) = redis::Client::open(redis_url)
            && let Ok(mut c) = client.get_multiplexed_async_connection().await
        {
            let info: String = redis::cmd("INFO")
                .arg("commandstats")
                .query_async(&mut c)
                .await
                .unwrap_or_default();
            for line in info.lines() {
                // cmdstat_evalsha:calls=12,usec=345,...
                if let Some((cmd, rest)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(':'))
                    && let Some(calls) = rest
                        .split(',')
                        .find_map(|kv| kv.strip_prefix("calls="))
                        .and_then(|n| n.parse().ok())
                {
                    r.redis.insert(cmd.to_owned(), calls);
                }
            }
        }
        r
    }

    /// Prints what happened between `self` and `later`, per `units` of work.
    pub fn report(&self, later: &Reading, units: usize, unit: &str) {
        let n = units.max(1) as f64;
        let mut total = 0.0;
        println!("CPU per {unit} (ms, on-CPU time read from /proc):");
        let threads = per_unit(&self.threads, &later.threads, n * 1e6)
            .map(|(k, ms)| (format!("this process: {k}"), ms));
        let servers = per_unit(&self.servers, &later.servers, n * 1e6);
        let mut rows: Vec<(String, f64)> = threads.chain(servers).collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (k, ms) in &rows {
            total += ms;
            println!("  {ms:7.2}  {k}");
        }
        println!("  {total:7.2}  total");
        let all = (later.machine.2 - self.machine.2).max(1) as f64;
        println!(
            "machine: {:.0}% idle, {:.1}% stolen by the hypervisor",
            100.0 * (later.machine.0 - self.machine.0) as f64 / all,
            100.0 * (later.machine.1 - self.machine.1) as f64 / all
        );
        let xacts = (later.xacts - self.xacts) as f64 / n;
        let mut cmds: Vec<(String, f64)> = per_unit(&self.redis, &later.redis, n).collect();
        cmds.sort_by(|a, b| b.1.total_cmp(&a.1));
        let listed: Vec<String> = cmds.iter().map(|(k, c)| format!("{k} {c:.2}")).collect();
        println!(
            "per {unit}: {xacts:.2} PostgreSQL transactions; Redis commands: {}",
            listed.join(", ")
        );
    }
}

/// Each counter's growth from `before` to `after`, divided by `divisor`; counters that
/// barely moved (under 0.01) are left out.
fn per_unit<'a>(
    before: &'a BTreeMap<String, u64>,
    after: &'a BTreeMap<String, u64>,
    divisor: f64,
) -> impl Iterator<Item = (String, f64)> + 'a {
    after
        .iter()
        .map(move |(k, v)| {
            let grew = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (k.clone(), grew as f64 / divisor)
        })
        .filter(|(_, x)| *x >= 0.01)
}
