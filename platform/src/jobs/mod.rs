//! Background jobs: the versioned envelope every job carries, the queue per job kind
//! (apalis-redis), and the tenant-visible job record in PostgreSQL. Redis is only the
//! queue; the `jobs` table is what the API reports.

pub mod finished;
pub mod queue;
pub mod reaper;
pub mod record;

pub use queue::{JobQueue, QueueError};

use crate::ids::{DocumentId, JobId, TenantId};
use serde::{Deserialize, Serialize};

/// The kinds of job, each with its own queue so workers scale per stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Original → text by page.
    Parse,
    /// Text → chunks.
    Chunk,
    /// Chunks → vectors.
    Embed,
    /// Vectors → the tenant's vector placement.
    Index,
}

impl JobKind {
    /// Stage and queue name.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobKind::Parse => "parse",
            JobKind::Chunk => "chunk",
            JobKind::Embed => "embed",
            JobKind::Index => "index",
        }
    }
}

/// Which set of queues a job travels on. Interactive uploads never wait behind a bulk
/// import's jobs: each lane has its own queue per stage and its own workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    /// Single uploads (someone is waiting): the priority lane.
    #[default]
    Interactive,
    /// Documents of an import, admitted by the feeder.
    Bulk,
}

impl Lane {
    /// Both lanes.
    pub const ALL: [Lane; 2] = [Lane::Interactive, Lane::Bulk];

    /// Name (also the queue-name suffix of the bulk lane).
    pub fn as_str(&self) -> &'static str {
        match self {
            Lane::Interactive => "interactive",
            Lane::Bulk => "bulk",
        }
    }
}

/// Current envelope version. Add fields only with `#[serde(default)]`: a payload that
/// fails to decode would stop the worker that fetched it.
pub const ENVELOPE_VERSION: u16 = 1;

/// What every job carries: tenant (never optional), job, target, request and actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEnvelope {
    /// Envelope version ([`ENVELOPE_VERSION`] when written by this build).
    #[serde(default = "default_version")]
    pub v: u16,
    /// The tenant whose data the job touches.
    pub tenant_id: TenantId,
    /// The job's record in `jobs`.
    pub job_id: JobId,
    /// The document it works on.
    pub document_id: DocumentId,
    /// The request that caused it.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Who it runs on behalf of (`user:…`, `api_key:…`, `system`).
    #[serde(default)]
    pub actor: String,
    /// Its kind.
    pub kind: JobKind,
    /// Its lane (payloads from before lanes existed are interactive).
    #[serde(default)]
    pub lane: Lane,
    /// Re-chunking a document that is already `ready` (`docketctl reindex`): it stays
    /// `ready` and searchable throughout, and a failure leaves it as it was.
    #[serde(default)]
    pub reindex: bool,
    /// How often the job row was queued afresh ([`record::enqueue_row`]); with the job id
    /// it makes the queue's task id ([`task_id`]).
    #[serde(default)]
    pub generation: i32,
}

/// The queue task id of a job: derived, not random, so that pushing the same job again
/// (the feeder's or the reaper's re-push of a lost entry) is a no-op while the queue still
/// holds it. `scope` names the kind of job, `generation` separates fresh queuings of one
/// row (a retry, a re-index) from re-pushes of the same one.
pub fn task_id(scope: &str, id: uuid::Uuid, generation: i32) -> apalis::prelude::TaskId {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5d0c_6e7a_2f4b_4b8e_9a61_0c3f_d4e2_a917);
    let name = format!("{scope}:{id}:{generation}");
    let derived = uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes());
    apalis::prelude::TaskId::from(ulid::Ulid::from(derived.as_u128()))
}

fn default_version() -> u16 {
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_payloads_still_decode() {
        // A v1 payload from before `request_id`/`actor` had defaults, missing both.
        let old = r#"{"tenant_id":"7b0c7a4e-1b1e-4a8e-9d55-0d6c8a0b7e11","job_id":"0f7b2c6e-3a0a-4e8b-9f1e-2a3b4c5d6e7f",
                      "document_id":"1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d","kind":"parse"}"#;
        let env: JobEnvelope = serde_json::from_str(old).expect("decodes");
        assert_eq!(env.v, 1);
        assert_eq!(env.kind, JobKind::Parse);
        assert_eq!(env.request_id, None);
        assert_eq!(env.lane, Lane::Interactive);
    }
}
