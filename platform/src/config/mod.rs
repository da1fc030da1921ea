//! Configuration from environment variables (twelve-factor), validated at start-up.
//!
//! Every variable has a local default except secrets that must not have one. A secret can
//! also come from a file named by `NAME_FILE` (for container secrets). All problems are
//! collected and reported together, each naming its variable; values are never echoed for
//! secrets.

mod billing;
mod llm;
mod master_key;
mod qdrant;
mod reader;

pub use billing::{BillingConfig, StripeConfig};
pub use llm::LlmConfig;
pub use master_key::MasterKey;
pub use qdrant::QdrantConfig;
use reader::Reader;

use crate::secret::Secret;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Where configuration values come from: the process environment, or a map in tests.
pub trait EnvSource {
    /// The value of `key`, if set.
    fn get(&self, key: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

/// One variable that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    /// The variable's name, e.g. `DOCKET_BIND`.
    pub var: String,
    /// What is wrong and what is expected.
    pub reason: String,
}

/// Configuration could not be loaded; lists every bad variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub struct ConfigError {
    /// Every variable that failed, in the order they were read.
    pub errors: Vec<VarError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for e in &self.errors {
            write!(f, "\n  {}: {}", e.var, e.reason)?;
        }
        Ok(())
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (default; for machines).
    Json,
    /// Human-readable lines (for a terminal).
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            _ => Err("expected `json` or `pretty`".into()),
        }
    }
}

/// PostgreSQL connection settings: one role per trust level.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// The service role (no owner, no BYPASSRLS): all tenant traffic.
    pub app_url: Secret<String>,
    /// The control-plane role (BYPASSRLS): docketctl, /ops and the scheduler.
    pub control_url: Secret<String>,
    /// The owner role: migrations only.
    pub migrate_url: Secret<String>,
    /// Pool size per role and process.
    pub max_connections: u32,
}

/// Redis connection settings.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://…` URL.
    pub url: Secret<String>,
    /// Prefix of every key this deployment writes (tests use one per test).
    pub prefix: String,
}

/// Where objects (documents, extracted text, vectors) are stored.
#[derive(Debug, Clone)]
pub enum ObjectStoreConfig {
    /// A local folder.
    Local {
        /// The folder; created if missing.
        dir: PathBuf,
    },
    /// An S3-compatible bucket.
    S3(S3Config),
}

/// An S3-compatible endpoint and bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// e.g. `http://127.0.0.1:9000`; empty means AWS itself.
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Region (any value for local servers).
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret<String>,
    /// Allow plain HTTP (local servers only).
    pub allow_http: bool,
}

/// Authentication settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Lifetime of an access token (JWT).
    pub access_token_ttl: Duration,
    /// Lifetime of a refresh token family's members.
    pub refresh_token_ttl: Duration,
    /// How long a rotated-out signing key stays accepted.
    pub key_rotation_window: Duration,
    /// Failed logins for one account before it is throttled.
    pub login_max_failures: u32,
    /// How long a throttled account must wait.
    pub login_lockout: Duration,
    /// Unauthenticated requests (sign-in, refresh, logout) per minute per client address
    /// (`DOCKET_PREAUTH_PER_MINUTE`; the deployment-wide limit is 50 times this).
    pub preauth_per_minute: u32,
    /// Their burst (`DOCKET_PREAUTH_BURST`).
    pub preauth_burst: u32,
}

/// The whole configuration of a Docket process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the API listens on.
    pub bind: SocketAddr,
    /// Admin listen address (`/metrics`): loopback unless the operator opens it.
    pub admin_bind: SocketAddr,
    /// `tracing` filter directives, e.g. `info,docket_api=debug`.
    pub log_filter: String,
    /// Log format.
    pub log_format: LogFormat,
    /// PostgreSQL.
    pub database: DatabaseConfig,
    /// Redis.
    pub redis: RedisConfig,
    /// Object storage.
    pub objects: ObjectStoreConfig,
    /// Directory of the in-process vector engine (owned by one worker process).
    pub vector_dir: PathBuf,
    /// A Qdrant server to use instead of the in-process engine (every worker then runs
    /// every queue and `owns_vectors` does not apply).
    pub qdrant: Option<QdrantConfig>,
    /// Whether this worker process owns `vector_dir` (exactly one may; the others run
    /// only the stages that do not touch vectors).
    pub owns_vectors: bool,
    /// Name of this worker process (unique per process).
    pub worker_name: String,
    /// Interval of background processes' heartbeats.
    pub heartbeat_interval: Duration,
    /// Master key (id, 32 bytes) that encrypts per-tenant keys and signing keys at rest.
    pub master_key: MasterKey,
    /// Authentication.
    pub auth: AuthConfig,
    /// Ingestion.
    pub ingest: IngestConfig,
    /// Billing.
    pub billing: BillingConfig,
    /// The language model behind generative answers, when one is configured.
    pub llm: Option<LlmConfig>,
    /// The operator panel's public origin (`https://ops.example.com`), when the API sits
    /// behind a proxy that rewrites `Host`: state changes must come from exactly this origin.
    /// Unset: the request's own `Host`.
    pub panel_origin: Option<String>,
}

/// Ingestion settings.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Largest accepted upload in bytes.
    pub max_upload_bytes: u64,
    /// Folder with `model.onnx`, `tokenizer.json` and the ONNX Runtime library.
    pub model_dir: PathBuf,
    /// Maximum tokens per chunk.
    pub chunk_max_tokens: usize,
    /// Tokens shared by consecutive chunks.
    pub chunk_overlap: usize,
    /// Jobs one worker process runs at once per queue.
    pub worker_concurrency: usize,
    /// Attempts before a job is given up (crashes included).
    pub job_max_attempts: u32,
    /// ONNX Runtime threads per worker process.
    pub embed_threads: usize,
    /// Texts per inference batch.
    pub embed_batch: usize,
    /// The ONNX Runtime shared library (`None`: the one in `model_dir`).
    pub ort_library: Option<PathBuf>,
    /// Imported documents in the pipeline at once, all tenants together (the feeder's
    /// global cap; keeps the bulk queues far below apalis-redis's ~8,000-job limit).
    pub feed_max_in_flight: i64,
    /// Pause between feeder rounds.
    pub feed_interval: Duration,
    /// The reaper's deadlines and cadence (`DOCKET_REAPER_*_SECS`).
    pub reaper: crate::jobs::reaper::ReaperSettings,
    /// Accept `http://` endpoints for S3 import sources (tests, private networks).
    pub import_allow_http: bool,
    /// Most concurrent questions embedded in one model call (1: no batching).
    pub question_batch: usize,
    /// Model sessions (one thread each) embedding questions.
    pub question_sessions: usize,
    /// How PDFs are parsed: a bounded child process.
    pub parse: ParseConfig,
}

/// The bounded PDF parser (`docket_rag::parse::bounded`).
#[derive(Debug, Clone)]
pub struct ParseConfig {
    /// The `docket-parse` executable (`DOCKET_PARSER_BIN`; default: next to the running
    /// executable, where `cargo build --workspace --bins` and the packages put it).
    pub program: PathBuf,
    /// Wall and CPU time one document may take (`DOCKET_PARSE_TIMEOUT_SECS`).
    pub timeout: Duration,
    /// Address space of the parser process (`DOCKET_PARSE_MEMORY_MIB`).
    pub memory_bytes: u64,
}

const DEFAULT_APP_DB: &str = "postgres://docket_app:docket_app@127.0.0.1:5432/docket";
const DEFAULT_CONTROL_DB: &str = "postgres://docket_control:docket_control@127.0.0.1:5432/docket";
const DEFAULT_MIGRATE_DB: &str = "postgres://docket_owner:docket_owner@127.0.0.1:5432/docket";

/// `docket-parse` next to the running executable.
fn default_parser() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("docket-parse")))
        .unwrap_or_else(|| PathBuf::from("docket-parse"))
}

impl Config {
    /// Loads from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::load(&ProcessEnv)
    }

    /// Loads from any source; all errors are collected before returning.
    pub fn load(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let mut r = Reader { env, errors: vec![] };
        let bind = r.parsed("DOCKET_BIND", "127.0.0.1:8080".parse::<SocketAddr>().ok());
        let admin_bind = r.parsed("DOCKET_ADMIN_BIND", "127.0.0.1:9090".parse::<SocketAddr>().ok());
        let log_filter = r.string("DOCKET_LOG", "info");
        if tracing_subscriber::EnvFilter::try_new(&log_filter).is_err() {
            r.fail(
                "DOCKET_LOG",
                "not a valid tracing filter (e.g. `info,docket_api=debug`)",
            );
        }
        let log_format = r.parsed("DOCKET_LOG_FORMAT", Some(LogFormat::Json));
        let database = DatabaseConfig {
            app_url: r.db_url("DOCKET_DATABASE_URL", DEFAULT_APP_DB),
            control_url: r.db_url("DOCKET_CONTROL_DATABASE_URL", DEFAULT_CONTROL_DB),
            migrate_url: r.db_url("DOCKET_MIGRATE_DATABASE_URL", DEFAULT_MIGRATE_DB),
            max_connections: r.ranged("DOCKET_DB_MAX_CONNECTIONS", 10, 1, 1000) as u32,
        };
        let redis_url = r
            .secret("DOCKET_REDIS_URL")
            .unwrap_or_else(|| Secret::new("redis://127.0.0.1:6379/0".into()));
        if !(redis_url.expose().starts_with("redis://") || redis_url.expose().starts_with("rediss://")) {
            r.fail("DOCKET_REDIS_URL", "must start with redis:// or rediss://");
        }
        let prefix = r.string("DOCKET_REDIS_PREFIX", "docket:");
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":_-".contains(&b));
        if !prefix_ok {
            r.fail(
                "DOCKET_REDIS_PREFIX",
                "1-64 characters of a-z, A-Z, 0-9, ':', '_' and '-'",
            );
        }
        let objects = r.object_store();
        let vector_dir = PathBuf::from(r.string("DOCKET_VECTOR_DIR", "./var/vectors"));
        let owns_vectors = r.bool("DOCKET_WORKER_OWNS_VECTORS", true);
        let qdrant = r.qdrant();
        let default_worker = format!("worker-{}", std::process::id());
        let worker_name = r.string("DOCKET_WORKER_NAME", &default_worker);
        let heartbeat_interval = Duration::from_secs(r.ranged("DOCKET_HEARTBEAT_SECS", 5, 1, 300));
        let mut master_key = match r.secret("DOCKET_MASTER_KEY") {
            Some(s) => match MasterKey::parse(s.expose()) {
                Ok(k) => Some(k),
                Err(e) => {
                    r.fail("DOCKET_MASTER_KEY", &e);
                    None
                }
            },
            None => {
                r.fail(
                    "DOCKET_MASTER_KEY",
                    "is required (or DOCKET_MASTER_KEY_FILE): `kid:base64` of 32 random bytes; scripts/up generates one into var/master.key",
                );
                None
            }
        };
        if let (Some(mk), Some(prev)) = (master_key.as_mut(), r.secret("DOCKET_PREVIOUS_MASTER_KEYS")) {
            for item in prev.expose().split(',').filter(|i| !i.trim().is_empty()) {
                match MasterKey::parse(item) {
                    Ok(k) if k.kid != mk.kid => mk.previous.push((k.kid, k.key)),
                    Ok(_) => r.fail(
                        "DOCKET_PREVIOUS_MASTER_KEYS",
                        "must not repeat the current key id",
                    ),
                    Err(e) => r.fail(
                        "DOCKET_PREVIOUS_MASTER_KEYS",
                        &format!("each entry `kid:base64`: {e}"),
                    ),
                }
            }
        }
        let access_token_ttl = Duration::from_secs(r.ranged("DOCKET_ACCESS_TOKEN_TTL_SECS", 900, 30, 86_400));
        let key_rotation_window =
            Duration::from_secs(r.ranged("DOCKET_KEY_ROTATION_WINDOW_SECS", 3600, 0, 30 * 86_400));
        if key_rotation_window < access_token_ttl {
            r.fail(
                "DOCKET_KEY_ROTATION_WINDOW_SECS",
                "must be at least DOCKET_ACCESS_TOKEN_TTL_SECS, or tokens signed just before a rotation would be refused",
            );
        }
        let auth = AuthConfig {
            access_token_ttl,
            refresh_token_ttl: Duration::from_secs(r.ranged(
                "DOCKET_REFRESH_TOKEN_TTL_SECS",
                30 * 86_400,
                60,
                365 * 86_400,
            )),
            key_rotation_window,
            login_max_failures: r.ranged("DOCKET_LOGIN_MAX_FAILURES", 5, 1, 1000) as u32,
            login_lockout: Duration::from_secs(r.ranged("DOCKET_LOGIN_LOCKOUT_SECS", 300, 1, 86_400)),
            preauth_per_minute: r.ranged("DOCKET_PREAUTH_PER_MINUTE", 60, 1, 1_000_000) as u32,
            preauth_burst: r.ranged("DOCKET_PREAUTH_BURST", 30, 1, 1_000_000) as u32,
        };
        let ingest = IngestConfig {
            max_upload_bytes: r.ranged("DOCKET_MAX_UPLOAD_BYTES", 100 * 1024 * 1024, 1, 1 << 40),
            model_dir: PathBuf::from(r.string("DOCKET_MODEL_DIR", "./.cache/model")),
            chunk_max_tokens: r.ranged("DOCKET_CHUNK_MAX_TOKENS", 254, 16, 254) as usize,
            chunk_overlap: r.ranged("DOCKET_CHUNK_OVERLAP", 32, 0, 200) as usize,
            worker_concurrency: r.ranged("DOCKET_WORKER_CONCURRENCY", 2, 1, 256) as usize,
            job_max_attempts: r.ranged("DOCKET_JOB_MAX_ATTEMPTS", 5, 1, 25) as u32,
            embed_threads: r.ranged("DOCKET_EMBED_THREADS", 2, 1, 64) as usize,
            embed_batch: r.ranged("DOCKET_EMBED_BATCH", 16, 1, 256) as usize,
            ort_library: r.raw("DOCKET_ORT_LIBRARY").map(PathBuf::from),
            feed_max_in_flight: r.ranged("DOCKET_FEED_MAX_IN_FLIGHT", 256, 1, 4000) as i64,
            feed_interval: Duration::from_millis(r.ranged("DOCKET_FEED_INTERVAL_MS", 200, 10, 60_000)),
            reaper: crate::jobs::reaper::ReaperSettings {
                interval: Duration::from_secs(r.ranged("DOCKET_REAPER_INTERVAL_SECS", 15, 1, 3600)),
                queued_after: Duration::from_secs(r.ranged(
                    "DOCKET_REAPER_QUEUED_AFTER_SECS",
                    120,
                    1,
                    86_400,
                )),
                running_after: Duration::from_secs(r.ranged(
                    "DOCKET_REAPER_RUNNING_AFTER_SECS",
                    900,
                    1,
                    86_400,
                )),
                question_after: Duration::from_secs(r.ranged(
                    "DOCKET_REAPER_QUESTION_AFTER_SECS",
                    300,
                    1,
                    86_400,
                )),
                max_repushes: 3,
            },
            import_allow_http: r.bool("DOCKET_IMPORT_ALLOW_HTTP", false),
            question_batch: r.ranged("DOCKET_QUESTION_BATCH", 8, 1, 256) as usize,
            question_sessions: r.ranged("DOCKET_QUESTION_SESSIONS", 1, 1, 16) as usize,
            parse: ParseConfig {
                program: r
                    .raw("DOCKET_PARSER_BIN")
                    .map(PathBuf::from)
                    .unwrap_or_else(default_parser),
                timeout: Duration::from_secs(r.ranged("DOCKET_PARSE_TIMEOUT_SECS", 120, 1, 3600)),
                memory_bytes: r.ranged("DOCKET_PARSE_MEMORY_MIB", 2048, 64, 65_536) << 20,
            },
        };
        // The same rule the chunker applies (`docket_rag::chunk::Chunker::new`): a piece of
        // an over-long sentence leaves a fifth of the chunk for its carried heading.
        if ingest.chunk_overlap >= ingest.chunk_max_tokens - ingest.chunk_max_tokens / 5 {
            r.fail(
                "DOCKET_CHUNK_OVERLAP",
                "must be smaller than four fifths of DOCKET_CHUNK_MAX_TOKENS (a fifth is kept for carried headings)",
            );
        }
        let billing = r.billing();
        let llm = r.llm();
        let panel_origin = r
            .raw("DOCKET_PANEL_ORIGIN")
            .and_then(|raw| match origin_of(&raw) {
                Ok(o) => Some(o),
                Err(reason) => {
                    r.fail("DOCKET_PANEL_ORIGIN", reason);
                    None
                }
            });
        if !r.errors.is_empty() {
            return Err(ConfigError { errors: r.errors });
        }
        // Every `None` above pushed an error, so these are all present here.
        match (bind, admin_bind, log_format, objects, master_key) {
            (Some(bind), Some(admin_bind), Some(log_format), Some(objects), Some(master_key)) => Ok(Config {
                bind,
                admin_bind,
                log_filter,
                log_format,
                database,
                redis: RedisConfig {
                    url: redis_url,
                    prefix,
                },
                objects,
                vector_dir,
                qdrant,
                owns_vectors,
                worker_name,
                heartbeat_interval,
                master_key,
                auth,
                ingest,
                billing,
                llm,
                panel_origin,
            }),
            _ => Err(ConfigError {
                errors: vec![VarError {
                    var: "(internal)".into(),
                    reason: "configuration incomplete".into(),
                }],
            }),
        }
    }
}

/// `scheme://host[:port]` of an origin URL (http or https, nothing else in it).
fn origin_of(raw: &str) -> Result<String, &'static str> {
    let bad =
        "expected an origin such as `https://ops.example.com` (scheme, host, optional port; nothing else)";
    let u = url::Url::parse(raw).map_err(|_| bad)?;
    let plain =
        u.username().is_empty() && u.password().is_none() && u.query().is_none() && u.fragment().is_none();
    if !matches!(u.scheme(), "http" | "https")
        || !plain
        || !matches!(u.path(), "" | "/")
        || u.host().is_none()
    {
        return Err(bad);
    }
    Ok(u.origin().ascii_serialization())
}

#[cfg(test)]
mod tests;
