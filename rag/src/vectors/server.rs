//! A Qdrant server or cluster (`qdrant-client`), for production and scale-out: every worker
//! process may run every queue. `shared` tenants live in one collection with an `is_tenant`
//! keyword index on `tenant_id`; `dedicated` tenants in a collection of their own; `isolated`
//! tenants in a collection on a deployment of their own (its URL and key from configuration).

use super::{
    DIMENSION, Hit, Placement, Searched, StoredPoint, TenantScope, VectorError, VectorIndex, VectorPoint,
    check_dimension, from_payload, payload, point_id, retain_tenant,
};
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::vector_output::Vector as OutVector;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, Filter, HnswConfigDiffBuilder, KeywordIndexParamsBuilder,
    PointId, PointStruct, Query, QueryPointsBuilder, ScrollPointsBuilder, UpsertPointsBuilder,
    Value as QValue, VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Where the server (and each isolated tenant's own deployment) is.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// gRPC URL of the main deployment, e.g. `http://qdrant:6334`.
    pub url: String,
    /// API key of the main deployment.
    pub api_key: Option<String>,
    /// Prefix of every collection name (one Qdrant may serve several environments).
    pub collection_prefix: String,
    /// Isolated tenants' own deployments: tenant → (URL, API key).
    pub isolated: HashMap<Uuid, (String, Option<String>)>,
}

/// The index on a Qdrant server. Cheap to clone.
#[derive(Clone)]
pub struct QdrantServer {
    main: Arc<Qdrant>,
    isolated: Arc<HashMap<Uuid, Arc<Qdrant>>>,
    prefix: String,
    ensured: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for QdrantServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantServer")
            .field("prefix", &self.prefix)
            .field("isolated_tenants", &self.isolated.len())
            .finish()
    }
}

fn engine(e: impl std::fmt::Display) -> VectorError {
    VectorError::Engine(e.to_string())
}

fn client(url: &str, key: &Option<String>) -> Result<Qdrant, VectorError> {
    // The client's own version check prints to stdout (not the JSON log) from a thread it
    // blocks on at construction, and only warns: a 1.18 server is "incompatible" with a
    // 1.20 client although every call this module makes exists in both (the suites were
    // run against 1.18.3). Skipped; `health` is the connection check.
    let mut b = Qdrant::from_url(url).skip_compatibility_check();
    if let Some(k) = key {
        b = b.api_key(k.clone());
    }
    b.build().map_err(engine)
}

/// The filter every operation carries: the tenant, and optionally one document.
fn tenant_filter(tenant: Uuid, document: Option<Uuid>) -> Filter {
    let mut must = vec![Condition::matches("tenant_id", tenant.to_string())];
    if let Some(d) = document {
        must.push(Condition::matches("document_id", d.to_string()));
    }
    Filter::must(must)
}

fn uuid_of(id: Option<PointId>) -> Option<Uuid> {
    match id?.point_id_options? {
        PointIdOptions::Uuid(s) => s.parse().ok(),
        PointIdOptions::Num(_) => None,
    }
}

/// The payload from the server's value type, then the shared decoding.
fn decode(payload: HashMap<String, QValue>, vector: Vec<f32>) -> Option<(Uuid, VectorPoint)> {
    let json = payload.into_iter().map(|(k, v)| (k, v.into_json())).collect();
    from_payload(&json, vector)
}

impl QdrantServer {
    /// Connects (lazily: the first call reaches the server).
    pub fn connect(config: &ServerConfig) -> Result<Self, VectorError> {
        let mut isolated = HashMap::new();
        for (tenant, (url, key)) in &config.isolated {
            isolated.insert(*tenant, Arc::new(client(url, key)?));
        }
        Ok(Self {
            main: Arc::new(client(&config.url, &config.api_key)?),
            isolated: Arc::new(isolated),
            prefix: config.collection_prefix.clone(),
            ensured: Arc::new(Mutex::new(HashSet::new())),
        })
    }

    /// The deployment and collection of a scope.
    fn place(&self, scope: TenantScope) -> Result<(Arc<Qdrant>, String), VectorError> {
        let own = format!("{}t_{}", self.prefix, scope.tenant().simple());
        match scope.placement() {
            Placement::Shared => Ok((self.main.clone(), format!("{}shared", self.prefix))),
            Placement::Dedicated => Ok((self.main.clone(), own)),
            Placement::Isolated => match self.isolated.get(&scope.tenant()) {
                Some(c) => Ok((c.clone(), own)),
                None => Err(VectorError::Engine(format!(
                    "tenant {} is on the isolated tier but no deployment is configured for it",
                    scope.tenant()
                ))),
            },
        }
    }

    /// Creates the collection and its payload indexes once per process.
    async fn ensure(&self, client: &Qdrant, name: &str, shared: bool) -> Result<(), VectorError> {
        let key = format!("{:p}/{name}", client);
        if self.ensured.lock().map_err(engine)?.contains(&key) {
            return Ok(());
        }
        if !client.collection_exists(name).await.map_err(engine)? {
            let mut create = CreateCollectionBuilder::new(name)
                .vectors_config(VectorParamsBuilder::new(DIMENSION as u64, Distance::Cosine));
            if shared {
                // Per-tenant HNSW graphs instead of one global graph (Qdrant's multitenancy
                // recipe): searches filtered by tenant stay fast and exact.
                create = create.hnsw_config(HnswConfigDiffBuilder::default().payload_m(16).m(0));
            }
            if let Err(e) = client.create_collection(create).await {
                // Another worker may have created it meanwhile.
                if !client.collection_exists(name).await.map_err(engine)? {
                    return Err(engine(e));
                }
            }
            client
                .create_field_index(
                    CreateFieldIndexCollectionBuilder::new(name, "tenant_id", FieldType::Keyword)
                        .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true))
                        .wait(true),
                )
                .await
                .map_err(engine)?;
            client
                .create_field_index(
                    CreateFieldIndexCollectionBuilder::new(name, "document_id", FieldType::Keyword)
                        .wait(true),
                )
                .await
                .map_err(engine)?;
        }
        self.ensured.lock().map_err(engine)?.insert(key);
        Ok(())
    }

    async fn existing(&self, scope: TenantScope) -> Result<Option<(Arc<Qdrant>, String)>, VectorError> {
        let (client, name) = self.place(scope)?;
        match client.collection_exists(&name).await.map_err(engine)? {
            true => Ok(Some((client, name))),
            false => Ok(None),
        }
    }

    /// Proves the main deployment answers.
    pub async fn health(&self) -> Result<(), VectorError> {
        self.main.health_check().await.map(|_| ()).map_err(engine)
    }
}

impl VectorIndex for QdrantServer {
    async fn upsert(&self, scope: TenantScope, points: Vec<VectorPoint>) -> Result<(), VectorError> {
        if points.is_empty() {
            return Ok(());
        }
        let (client, name) = self.place(scope)?;
        self.ensure(&client, &name, scope.placement() == Placement::Shared)
            .await?;
        let tenant = scope.tenant();
        let mut batch = Vec::with_capacity(points.len());
        for p in points {
            check_dimension(&p.vector)?;
            let payload = Payload::try_from(payload(tenant, &p)).map_err(engine)?;
            let id = point_id(tenant, p.document, p.ordinal).to_string();
            batch.push(PointStruct::new(id, p.vector, payload));
        }
        client
            .upsert_points(UpsertPointsBuilder::new(&name, batch).wait(true))
            .await
            .map(|_| ())
            .map_err(engine)
    }

    async fn search(
        &self,
        scope: TenantScope,
        query: Vec<f32>,
        limit: usize,
        document: Option<Uuid>,
    ) -> Result<Searched, VectorError> {
        check_dimension(&query)?;
        let Some((client, name)) = self.existing(scope).await? else {
            return Ok(Searched::default());
        };
        let found = client
            .query(
                QueryPointsBuilder::new(&name)
                    .query(Query::new_nearest(query))
                    .filter(tenant_filter(scope.tenant(), document))
                    .limit(limit as u64)
                    .with_payload(true),
            )
            .await
            .map_err(engine)?;
        let raw = found
            .result
            .into_iter()
            .filter_map(|p| {
                let id = uuid_of(p.id)?;
                let (tenant, point) = decode(p.payload, vec![])?;
                Some(Hit::new(id, p.score, tenant, point))
            })
            .collect();
        Ok(retain_tenant(scope, raw))
    }

    async fn delete_document(&self, scope: TenantScope, document: Uuid) -> Result<(), VectorError> {
        let Some((client, name)) = self.existing(scope).await? else {
            return Ok(());
        };
        client
            .delete_points(
                DeletePointsBuilder::new(&name)
                    .points(tenant_filter(scope.tenant(), Some(document)))
                    .wait(true),
            )
            .await
            .map(|_| ())
            .map_err(engine)
    }

    async fn delete_tenant(&self, scope: TenantScope) -> Result<(), VectorError> {
        let Some((client, name)) = self.existing(scope).await? else {
            return Ok(());
        };
        client
            .delete_points(
                DeletePointsBuilder::new(&name)
                    .points(tenant_filter(scope.tenant(), None))
                    .wait(true),
            )
            .await
            .map_err(engine)?;
        if scope.placement() != Placement::Shared {
            // The tenant's own collection goes with it.
            client.delete_collection(&name).await.map_err(engine)?;
            if let Ok(mut e) = self.ensured.lock() {
                e.retain(|k| !k.ends_with(&format!("/{name}")));
            }
        }
        Ok(())
    }

    async fn count(&self, scope: TenantScope, document: Option<Uuid>) -> Result<usize, VectorError> {
        let Some((client, name)) = self.existing(scope).await? else {
            return Ok(0);
        };
        let r = client
            .count(
                CountPointsBuilder::new(&name)
                    .filter(tenant_filter(scope.tenant(), document))
                    .exact(true),
            )
            .await
            .map_err(engine)?;
        Ok(r.result.map(|c| c.count as usize).unwrap_or(0))
    }

    async fn scroll(
        &self,
        scope: TenantScope,
        offset: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<StoredPoint>, Option<Uuid>), VectorError> {
        let Some((client, name)) = self.existing(scope).await? else {
            return Ok((vec![], None));
        };
        let mut req = ScrollPointsBuilder::new(&name)
            .filter(tenant_filter(scope.tenant(), None))
            .limit(limit.max(1) as u32)
            .with_payload(true)
            .with_vectors(true);
        if let Some(o) = offset {
            req = req.offset(PointId::from(o.to_string()));
        }
        let r = client.scroll(req).await.map_err(engine)?;
        let mut out = Vec::with_capacity(r.result.len());
        for p in r.result {
            let vector = match p.vectors.as_ref().and_then(|v| v.get_vector()) {
                Some(OutVector::Dense(d)) => d.data,
                _ => continue,
            };
            let Some(id) = uuid_of(p.id) else { continue };
            if let Some((tenant, point)) = decode(p.payload, vector) {
                out.push(StoredPoint { id, tenant, point });
            }
        }
        Ok((out, uuid_of(r.next_page_offset)))
    }
}
