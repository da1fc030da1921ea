//! Test harness for Docket's end-to-end tests, in the style of zero2prod's `spawn_app`:
//! every test gets the API on a random port, its own freshly migrated database (cloned from
//! a template database, which keeps it fast), its own Redis key prefix and its own folders.
//!
//! Needs the real services and roles that `scripts/test` sets up. Connection settings:
//! `DOCKET_TEST_PG` (host:port, default `127.0.0.1:5432`), `DOCKET_TEST_REDIS_URL`.

pub mod actors;
pub mod asking;
pub mod billing;
pub mod clauses;
pub mod deleting;
pub mod evaluation;
pub mod exporting;
pub mod fixtures;
pub mod importing;
pub mod ingest;
pub mod llm;
pub mod proxy;
pub mod reviewing;
pub mod seed;
pub mod setup;
pub mod stripe;
pub mod synthetic;

use docket_api::state::AppState;
use docket_platform::config::Config;
use docket_platform::db::{ControlDb, Db};
use sqlx::PgPool;
use std::collections::HashMap;
use std::net::SocketAddr;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub use setup::*;

/// A running API for one test.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` of the admin listener (`/metrics`).
    pub admin_address: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The configuration the app runs with.
    pub config: Config,
    /// The same configuration as environment variables (for worker processes).
    pub env: HashMap<String, String>,
    /// This test's database name.
    pub database: String,
    /// Service-role access (RLS applies).
    pub db: Db,
    /// Control-plane access.
    pub control: ControlDb,
    /// Stops the app when cancelled (and on drop).
    pub shutdown: CancellationToken,
    /// Folders (objects, vectors); removed on drop.
    pub dirs: TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A `docket-worker` (or `docket-scheduler`) child process; killed and reaped on drop, so a failing test leaves no
/// worker running.
#[derive(Debug)]
pub struct WorkerProcess(std::process::Child);

impl WorkerProcess {
    /// Wraps a started child process.
    pub fn from_child(child: std::process::Child) -> Self {
        Self(child)
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM, then wait up to `timeout` for the exit status (`None` if still running).
    pub async fn terminate(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let pid = self.0.id().to_string();
        let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        None
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How `scripts/up` starts a worker process (glibc's malloc settings; see
/// `scripts/lib.sh`): the tests run the worker as it is deployed.
pub const WORKER_MALLOC: [(&str, &str); 1] = [("MALLOC_ARENA_MAX", "2")];

/// Starts the API with default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the API with configuration overrides, e.g. a Redis URL that points nowhere.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    docket_platform::telemetry::init("warn", docket_platform::config::LogFormat::Json);
    let database = fresh_database().await;
    let dirs = tempfile::tempdir().expect("tempdir");
    let env = test_env(&database, &dirs, overrides);
    let config = Config::load(&env).expect("test configuration is valid");
    let state = AppState::from_config(&config).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let (db, control) = (state.db.clone(), state.control.clone());
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind admin");
    let admin_address = format!("http://{}", admin.local_addr().expect("admin addr"));
    let (admin_state, admin_stop) = (state.clone(), shutdown.clone());
    tokio::spawn(async move {
        docket_api::serve_admin(admin, admin_state, async move { admin_stop.cancelled().await })
            .await
            .expect("serve admin");
    });
    tokio::spawn(async move {
        docket_api::serve(listener, state, async move { stop.cancelled().await })
            .await
            .expect("serve");
    });
    TestApp {
        address: format!("http://{addr}"),
        addr,
        admin_address,
        client: reqwest::Client::new(),
        config,
        env,
        database,
        db,
        control,
        shutdown,
        dirs,
    }
}

impl TestApp {
    /// `GET {address}{path}`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    /// `GET {admin_address}{path}` (the admin listener).
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.admin_address))
            .send()
            .await
            .expect("request")
    }

    /// Deletes every Redis key of this test (queues, workers' registrations, limits): what
    /// a Redis restart without persistence does. Returns how many keys there were.
    pub async fn flush_redis(&self) -> usize {
        let (mut conn, keys) = self.redis_keys().await;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .expect("del");
        }
        keys.len()
    }

    /// A connection to the test's Redis and every key under its prefix.
    pub async fn redis_keys(&self) -> (redis::aio::MultiplexedConnection, Vec<String>) {
        let client = redis::Client::open(self.config.redis.url.expose().as_str()).expect("client");
        let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.config.redis.prefix))
            .query_async(&mut conn)
            .await
            .expect("keys");
        (conn, keys)
    }

    /// An audit writer with this app's master key.
    pub fn auditor(&self) -> docket_platform::audit::Auditor {
        docket_platform::audit::Auditor::new(self.config.master_key.clone())
    }

    /// The tenant's data key (to read its encrypted objects directly).
    pub async fn data_key(&self, t: docket_platform::ids::TenantId) -> docket_platform::tenant_keys::DataKey {
        let mut tx = self.db.begin_tenant(t).await.expect("tx");
        let k = docket_platform::tenant_keys::data_key(&mut tx, &self.config.master_key)
            .await
            .expect("key");
        tx.commit().await.expect("commit");
        k
    }

    /// How many audit events of `tenant` have `action` (and `reason`, when given).
    pub async fn audit_count(
        &self,
        tenant: docket_platform::ids::TenantId,
        action: &str,
        reason: Option<&str>,
    ) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = $2
             AND ($3::text IS NULL OR reason = $3)",
        )
        .bind(tenant)
        .bind(action)
        .bind(reason)
        .fetch_one(self.control.pool())
        .await
        .expect("audit count")
    }

    /// Runs the real `docketctl` with `args`, then `path` and `--public-key KEYS` (the keys
    /// this deployment publishes, written beside `path`), with an empty environment: the
    /// offline verification a customer runs with no deployment behind it. Returns (exit
    /// code, report).
    pub async fn verify_offline(&self, args: &[&str], path: &std::path::Path) -> (i32, serde_json::Value) {
        let keys: serde_json::Value = self
            .get("/.well-known/docket-keys.json")
            .await
            .json()
            .await
            .expect("keys");
        let keys_file = path.with_extension("keys.json");
        std::fs::write(&keys_file, keys.to_string()).expect("keys file");
        let out = std::process::Command::new(sibling_binary("docketctl"))
            .env_clear()
            .args(args)
            .arg(path)
            .arg("--public-key")
            .arg(&keys_file)
            .output()
            .expect("docketctl runs");
        let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out.status.code().unwrap_or(-1), report)
    }

    /// A pool connecting as `role` to this test's database.
    pub async fn pool_as(&self, role: &str) -> PgPool {
        PgPool::connect(&pg_url(role, &self.database))
            .await
            .expect("connect")
    }

    /// Starts a real `docket-worker` process on this app's configuration (built by
    /// `scripts/test` next to the test binaries). Its log goes to `{dirs}/{name}.log`.
    pub fn spawn_worker_process(&self, name: &str, owns_vectors: bool) -> WorkerProcess {
        let bin = sibling_binary("docket-worker");
        let log = std::fs::File::create(self.dirs.path().join(format!("{name}.log"))).expect("log file");
        std::process::Command::new(bin)
            .env_clear()
            .envs(&self.env)
            .env("DOCKET_WORKER_NAME", name)
            .env("DOCKET_WORKER_OWNS_VECTORS", owns_vectors.to_string())
            .env("DOCKET_LOG", "info")
            .envs(WORKER_MALLOC)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .map(WorkerProcess)
            .expect("start docket-worker")
    }

    /// Starts an in-process worker and also returns its job context and vector store, for
    /// tests that search or inspect the index while it runs.
    pub async fn spawn_worker_with_handles(
        &self,
    ) -> (
        tokio::task::JoinHandle<()>,
        docket_worker::context::Ctx,
        docket_rag::vectors::Vectors,
    ) {
        let worker = docket_worker::Worker::start(self.config.clone())
            .await
            .expect("worker starts");
        let (ctx, store) = (worker.context(), worker.vectors().expect("owns the vectors"));
        let stop = self.shutdown.clone();
        let handle = tokio::spawn(async move {
            worker
                .run(async move { stop.cancelled().await })
                .await
                .expect("worker runs");
        });
        (handle, ctx, store)
    }

    /// Starts a worker process-equivalent (in this process) on this app's configuration;
    /// it stops when the app's shutdown token is cancelled.
    pub async fn spawn_worker(&self) -> tokio::task::JoinHandle<()> {
        let worker = docket_worker::Worker::start(self.config.clone())
            .await
            .expect("worker starts");
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            worker
                .run(async move { stop.cancelled().await })
                .await
                .expect("worker runs");
        })
    }
}
