//! Docket's governance layer: configuration, tenancy, database access, object storage,
//! identity, authorization and audit. The API, worker, scheduler and CLI build on it; the
//! RAG core (`docket-rag`) never does.

pub mod access_reviews;
pub mod audit;
pub mod authz;
pub mod billing;
pub mod blobs;
pub mod config;
pub mod consents;
pub mod crypto;
pub mod db;
pub mod deletions;
pub mod documents;
pub mod entitlements;
pub mod exports;
pub mod heartbeat;
pub mod identity;
pub mod ids;
pub mod imports;
pub mod jobs;
pub mod llm;
pub mod metrics;
pub mod netguard;
pub mod overview;
pub mod pdf;
pub mod placement;
pub mod plans;
pub mod queries;
pub mod ratelimit;
pub mod redis_conn;
pub mod safety;
pub mod secret;
pub mod shutdown;
pub mod switches;
pub mod telemetry;
pub mod tenant_keys;
pub mod tenants;
pub mod usage;
