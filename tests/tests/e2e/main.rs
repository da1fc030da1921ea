//! End-to-end tests against real PostgreSQL, Redis, object storage and the vector engine.
//! One binary with modules: linking is the slow part of a test build.

mod answer_isolation;
mod audit;
mod auth;
mod authz;
mod cli;
mod corpus;
mod crash;
mod credentials;
mod cross_tenant;
mod documents;
mod edge;
mod health;
mod import_load;
mod import_ops;
mod imports;
mod memberships;
mod parse_limits;
mod plans;
mod preauth;
mod queries;
mod quotas;
mod ratelimit;
mod reaper;
mod reindex;
mod retry;
mod rls;
mod s3;
mod ssrf;
mod switches;
mod tiers;
mod usage;
mod vector_locks;
mod worker;
