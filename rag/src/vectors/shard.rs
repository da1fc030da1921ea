//! One engine shard (a collection) of the in-process Qdrant engine, with the locking its
//! API needs: `flush` panics unless it takes the WAL and segment locks at once, so updates,
//! flushes and optimizations are serialized by `writer`; searches run concurrently.

use super::{
    DIMENSION, Hit, StoredPoint, VectorError, VectorPoint, check_dimension, from_payload, payload, point_id,
};
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, DEFAULT_VECTOR_NAME, Distance, EdgeConfig, EdgeShard,
    EdgeVectorParams, FieldCondition, FieldIndexOperations, Filter, JsonPath, KeywordIndexParams, Match,
    NamedQuery, PayloadFieldSchema, PayloadSchemaParams, PayloadSchemaType, PointId, PointInsertOperations,
    PointOperations, PointStruct, QueryEnum, QueryRequest, ScoringQuery, ScrollRequest, UpdateOperation,
    ValueVariants, VectorStructInternal, WithPayloadInterface, WithVector,
};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;

/// A shard and its writer lock.
pub(super) struct Shard {
    /// Always `Some` until dropped (taken in `drop` to control the engine's own drop).
    engine: Option<EdgeShard>,
    dir: std::path::PathBuf,
    writer: Mutex<()>,
    /// Written since the last optimization.
    dirty: AtomicBool,
}

fn engine(e: impl std::fmt::Display) -> VectorError {
    VectorError::Engine(e.to_string())
}

fn path(field: &str) -> Result<JsonPath, VectorError> {
    field
        .parse::<JsonPath>()
        .map_err(|_| engine(format!("bad field path {field}")))
}

fn keyword(field: &str, value: String) -> Result<Condition, VectorError> {
    Ok(Condition::Field(FieldCondition::new_match(
        path(field)?,
        Match::new_value(ValueVariants::String(value)),
    )))
}

/// The filter every operation carries: the tenant, and optionally one document.
fn tenant_filter(tenant: Uuid, document: Option<Uuid>) -> Result<Filter, VectorError> {
    let mut must = vec![keyword("tenant_id", tenant.to_string())?];
    if let Some(d) = document {
        must.push(keyword("document_id", d.to_string())?);
    }
    Ok(Filter {
        must: Some(must),
        ..Default::default()
    })
}

impl Drop for Shard {
    /// The engine flushes on drop and panics if it cannot (e.g. its directory is gone): a
    /// panic in a destructor can abort the process. Flush failures are logged instead, and
    /// while the thread is already unwinding the engine is not dropped at all.
    fn drop(&mut self) {
        let Some(engine) = self.engine.take() else { return };
        if std::thread::panicking() || !self.dir.exists() {
            std::mem::forget(engine);
            return;
        }
        if std::panic::catch_unwind(AssertUnwindSafe(move || drop(engine))).is_err() {
            tracing::error!(dir = %self.dir.display(), "vector shard could not flush on close");
        }
    }
}

impl Shard {
    fn engine(&self) -> &EdgeShard {
        self.engine.as_ref().expect("engine present until drop")
    }

    /// Opens the shard in `dir` or creates it with the payload indexes.
    pub(super) fn open_or_create(dir: &Path) -> Result<Self, VectorError> {
        let exists = dir.join("edge_config.json").exists() || dir.join("segments").exists();
        let engine_shard = if exists {
            EdgeShard::load(dir, None).map_err(engine)?
        } else {
            std::fs::create_dir_all(dir).map_err(|source| VectorError::Io {
                dir: dir.display().to_string(),
                source,
            })?;
            let config = EdgeConfig::builder()
                .vector(
                    DEFAULT_VECTOR_NAME,
                    EdgeVectorParams::builder(DIMENSION, Distance::Cosine).build(),
                )
                .build();
            let shard = EdgeShard::new(dir, config).map_err(engine)?;
            let tenant_index =
                PayloadFieldSchema::FieldParams(PayloadSchemaParams::Keyword(KeywordIndexParams {
                    is_tenant: Some(true),
                    ..Default::default()
                }));
            for (field, schema) in [
                ("tenant_id", tenant_index),
                (
                    "document_id",
                    PayloadFieldSchema::FieldType(PayloadSchemaType::Keyword),
                ),
            ] {
                shard
                    .update(UpdateOperation::FieldIndexOperation(
                        FieldIndexOperations::CreateIndex(CreateIndex {
                            field_name: path(field)?,
                            field_schema: Some(schema),
                        }),
                    ))
                    .map_err(engine)?;
            }
            shard
        };
        let shard = Self {
            engine: Some(engine_shard),
            dir: dir.to_owned(),
            writer: Mutex::new(()),
            dirty: AtomicBool::new(false),
        };
        shard.flush()?;
        Ok(shard)
    }

    fn write(&self, op: UpdateOperation) -> Result<(), VectorError> {
        let _w = self.writer.lock().map_err(|_| engine("writer lock poisoned"))?;
        self.engine().update(op).map_err(engine)?;
        self.dirty.store(true, Ordering::Relaxed);
        self.flush_locked()
    }

    /// Flushes WAL and segments (the engine does not replay its WAL on load: unflushed
    /// writes would be lost by a crash).
    pub(super) fn flush(&self) -> Result<(), VectorError> {
        let _w = self.writer.lock().map_err(|_| engine("writer lock poisoned"))?;
        self.flush_locked()
    }

    fn flush_locked(&self) -> Result<(), VectorError> {
        std::panic::catch_unwind(AssertUnwindSafe(|| self.engine().flush()))
            .map_err(|_| engine("flush could not take the engine's locks"))
    }

    /// Builds the HNSW index of segments that grew past the indexing threshold, if anything
    /// was written since the last run. Slow (seconds): run it in the background.
    pub(super) fn optimize_if_dirty(&self) -> Result<bool, VectorError> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(false);
        }
        let _w = self.writer.lock().map_err(|_| engine("writer lock poisoned"))?;
        let changed = self.engine().optimize().map_err(engine)?;
        self.flush_locked()?;
        Ok(changed)
    }

    pub(super) fn upsert(&self, tenant: Uuid, points: Vec<VectorPoint>) -> Result<(), VectorError> {
        if points.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::with_capacity(points.len());
        for p in points {
            check_dimension(&p.vector)?;
            let id = point_id(tenant, p.document, p.ordinal);
            let payload = payload(tenant, &p);
            batch.push(PointStruct::new(PointId::Uuid(id), p.vector, payload).into());
        }
        self.write(UpdateOperation::PointOperation(PointOperations::UpsertPoints(
            PointInsertOperations::PointsList(batch),
        )))
    }

    pub(super) fn search(
        &self,
        tenant: Uuid,
        query: Vec<f32>,
        limit: usize,
        document: Option<Uuid>,
    ) -> Result<Vec<Hit>, VectorError> {
        check_dimension(&query)?;
        let found = self
            .engine()
            .query(QueryRequest {
                prefetches: vec![],
                query: Some(ScoringQuery::Vector(QueryEnum::Nearest(
                    NamedQuery::default_dense(query),
                ))),
                filter: Some(tenant_filter(tenant, document)?),
                score_threshold: None,
                limit,
                offset: 0,
                params: None,
                with_vector: WithVector::Bool(false),
                with_payload: WithPayloadInterface::Bool(true),
            })
            .map_err(engine)?;
        Ok(found
            .into_iter()
            .filter_map(|p| {
                let (tenant, point) = from_payload(&p.payload?.0, vec![])?;
                Some(Hit::new(uuid_of(p.id)?, p.score, tenant, point))
            })
            .collect())
    }

    pub(super) fn delete(&self, tenant: Uuid, document: Option<Uuid>) -> Result<(), VectorError> {
        self.write(UpdateOperation::PointOperation(
            PointOperations::DeletePointsByFilter(tenant_filter(tenant, document)?),
        ))
    }

    pub(super) fn count(&self, tenant: Uuid, document: Option<Uuid>) -> Result<usize, VectorError> {
        self.engine()
            .count(CountRequest {
                filter: Some(tenant_filter(tenant, document)?),
                exact: true,
            })
            .map_err(engine)
    }

    /// All points, any tenant (health checks only).
    pub(super) fn count_all(&self) -> Result<usize, VectorError> {
        self.engine()
            .count(CountRequest {
                filter: None,
                exact: true,
            })
            .map_err(engine)
    }

    pub(super) fn scroll(
        &self,
        tenant: Uuid,
        offset: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<StoredPoint>, Option<Uuid>), VectorError> {
        let (records, next) = self
            .engine()
            .scroll(ScrollRequest {
                offset: offset.map(PointId::Uuid),
                limit: Some(limit.max(1)),
                filter: Some(tenant_filter(tenant, None)?),
                with_payload: Some(WithPayloadInterface::Bool(true)),
                with_vector: WithVector::Bool(true),
                order_by: None,
            })
            .map_err(engine)?;
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let (Some(id), Some(payload)) = (uuid_of(r.id), r.payload) else {
                continue;
            };
            let vector = match r.vector {
                Some(VectorStructInternal::Single(v)) => v,
                Some(VectorStructInternal::Named(mut m)) => match m.remove(DEFAULT_VECTOR_NAME) {
                    Some(qdrant_edge::VectorInternal::Dense(v)) => v,
                    _ => continue,
                },
                _ => continue,
            };
            if let Some((tenant, point)) = from_payload(&payload.0, vector) {
                out.push(StoredPoint { id, tenant, point });
            }
        }
        Ok((out, next.and_then(uuid_of)))
    }
}

fn uuid_of(id: PointId) -> Option<Uuid> {
    match id {
        PointId::Uuid(u) => Some(u),
        PointId::NumId(_) => None,
    }
}
