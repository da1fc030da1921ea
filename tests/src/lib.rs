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
pub mod stripe;
pub mod synthetic;

use docket_api::state::AppState;
use docket_platform::config::Config;
use docket_platform::db::{ControlDb, Db, MIGRATOR};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use std::collections::HashMap;
use std::net::SocketAddr;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TEMPLATE: &str = "docket_test_template";

/// `host:port` of the test PostgreSQL.
pub fn pg_addr() -> String {
    std::env::var("DOCKET_TEST_PG").unwrap_or_else(|_| "127.0.0.1:5432".into())
}

/// A connection URL for `role` (local passwords equal role names) to `db`.
pub fn pg_url(role: &str, db: &str) -> String {
    format!("postgres://{role}:{role}@{}/{db}", pg_addr())
}

/// Creates a fresh database from the migrated template. Serialized across test processes
/// by an advisory lock, because cloning fails while anyone is connected to the template.
pub async fn fresh_database() -> String {
    let name = format!("docket_t_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&pg_url("docket_owner", "postgres"))
        .await
        .expect("connect as docket_owner (run scripts/test, which creates the roles)");
    admin
        .execute("SELECT pg_advisory_lock(727274)")
        .await
        .expect("lock");
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(TEMPLATE)
        .fetch_optional(&mut admin)
        .await
        .expect("query");
    if exists.is_none() {
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {TEMPLATE}")))
            .await
            .expect("create template");
    }
    // Idempotent: applies only migrations the template does not have yet.
    let mut tpl = PgConnection::connect(&pg_url("docket_owner", TEMPLATE))
        .await
        .expect("connect template");
    MIGRATOR.run(&mut tpl).await.expect("migrate template");
    tpl.close().await.expect("close template");
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} TEMPLATE {TEMPLATE}"
        )))
        .await
        .expect("clone template");
    admin
        .execute("SELECT pg_advisory_unlock(727274)")
        .await
        .expect("unlock");
    name
}

/// The cargo target directory the running test binary was built into (where tests leave
/// artifacts that `scripts/test` prints).
pub fn target_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // <target>/debug/deps/e2e-… → <target>
    exe.ancestors()
        .nth(3)
        .expect("the test executable lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// The workspace root.
pub fn workspace() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The folder with the model files (`scripts/test` exports `DOCKET_MODEL_DIR`).
pub fn model_dir() -> String {
    std::env::var("DOCKET_MODEL_DIR")
        .unwrap_or_else(|_| workspace().join(".cache/model").display().to_string())
}

/// The CUAD development corpus (The Atticus Project, CC BY 4.0).
pub fn corpus() -> std::path::PathBuf {
    std::env::var("DOCKET_CORPUS_DIR")
        .map(Into::into)
        .unwrap_or_else(|_| workspace().join("../shared/corpus/cuad-dev"))
}

/// The bytes of cuad-dev contract `n` (`pdf/cuad-{n:02}.pdf`).
pub fn contract(n: u32) -> Vec<u8> {
    std::fs::read(corpus().join(format!("pdf/cuad-{n:02}.pdf"))).expect("corpus pdf")
}

/// Configuration for one test: its database, Redis prefix and folders; `overrides` win.
pub fn test_config(database: &str, dirs: &TempDir, overrides: &[(&str, &str)]) -> Config {
    Config::load(&test_env(database, dirs, overrides)).expect("test configuration is valid")
}

/// The environment of [`test_config`], for starting real processes with it.
pub fn test_env(database: &str, dirs: &TempDir, overrides: &[(&str, &str)]) -> HashMap<String, String> {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let mut env: HashMap<String, String> = HashMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };
    set("DOCKET_BIND", "127.0.0.1:0".into());
    set("DOCKET_DATABASE_URL", pg_url("docket_app", database));
    set("DOCKET_CONTROL_DATABASE_URL", pg_url("docket_control", database));
    set("DOCKET_MIGRATE_DATABASE_URL", pg_url("docket_owner", database));
    set("DOCKET_DB_MAX_CONNECTIONS", "5".into());
    set(
        "DOCKET_REDIS_URL",
        std::env::var("DOCKET_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into()),
    );
    set(
        "DOCKET_REDIS_PREFIX",
        format!("test:{}:", Uuid::new_v4().simple()),
    );
    set(
        "DOCKET_OBJECT_DIR",
        dirs.path().join("objects").display().to_string(),
    );
    set(
        "DOCKET_VECTOR_DIR",
        dirs.path().join("vectors").display().to_string(),
    );
    set(
        "DOCKET_WORKER_NAME",
        format!("test-worker-{}", Uuid::new_v4().simple()),
    );
    set("DOCKET_HEARTBEAT_SECS", "1".into());
    // The S3 import test reads from the local S3 server over http.
    set("DOCKET_IMPORT_ALLOW_HTTP", "true".into());
    set("DOCKET_MASTER_KEY", format!("test1:{key}"));
    set("DOCKET_LOG", "warn".into());
    // Every test signs in from 127.0.0.1, often dozens of times in a second; the tests of
    // the pre-authentication limit set their own, production-like figures.
    set("DOCKET_PREAUTH_PER_MINUTE", "100000".into());
    set("DOCKET_PREAUTH_BURST", "10000".into());
    set("DOCKET_MODEL_DIR", model_dir());
    // Test binaries live one folder below the workspace's binaries, where the worker's
    // default (next to the running executable) would not find the parser.
    set(
        "DOCKET_PARSER_BIN",
        sibling_binary("docket-parse").display().to_string(),
    );
    for (k, v) in overrides {
        set(k, (*v).to_owned());
    }
    env
}

/// Polls `probe` every 100 ms until it says a helper service is up; panics naming `what`
/// after `timeout` (a test whose service is missing fails, it never passes silently).
pub async fn wait_until_up(what: &str, timeout: std::time::Duration, mut probe: impl AsyncFnMut() -> bool) {
    let started = std::time::Instant::now();
    while !probe().await {
        assert!(started.elapsed() < timeout, "{what} did not come up");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A binary of this workspace from the target directory: next to the running executable
/// (benchmarks in `target/debug/`) or one level up (test binaries in `target/debug/deps/`).
/// `scripts/test` and `scripts/bench` build them.
pub fn sibling_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("executable dir");
    let found = [
        dir.join(name),
        dir.parent().map(|p| p.join(name)).unwrap_or_default(),
    ]
    .into_iter()
    .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "{name} is missing next to {}: run `cargo build --workspace --bins`",
            exe.display()
        )
    })
}

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
