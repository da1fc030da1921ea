//! Where a test's parts are: the test PostgreSQL and its fresh databases, the workspace,
//! its target directory, binaries, model and corpus, and the configuration a test app runs
//! with.

use docket_platform::config::Config;
use docket_platform::db::MIGRATOR;
use sqlx::{Connection, Executor, PgConnection};
use std::collections::HashMap;
use tempfile::TempDir;
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
