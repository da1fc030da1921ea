//! The `VectorIndex` contract, run against the in-process Qdrant engine always and against a
//! Qdrant server when `QDRANT_URL` is set. Canary strings are embedded with the real model.

use docket_rag::embed::{EmbedSettings, Embedder};
use docket_rag::vectors::{
    DIMENSION, EdgeStore, Placement, QdrantServer, ServerConfig, TenantScope, VectorError, VectorIndex,
    VectorPoint, point_id,
};
use std::path::PathBuf;
use uuid::Uuid;

fn embedder() -> Embedder {
    let dir = std::env::var("DOCKET_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/model"));
    Embedder::load(&EmbedSettings {
        model_dir: dir,
        library: None,
        threads: 2,
        batch: 16,
    })
    .expect("model (run scripts/test to fetch it)")
}

/// A deterministic pseudo-random unit vector (xorshift; no RNG dependency).
fn unit_vector(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..DIMENSION)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 20_000) as f32 / 10_000.0 - 1.0
        })
        .collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.iter_mut().for_each(|a| *a /= n);
    v
}

fn point(document: Uuid, ordinal: u32, text: String, vector: Vec<f32>) -> VectorPoint {
    VectorPoint {
        document,
        ordinal,
        page_start: ordinal + 1,
        page_end: ordinal + 2,
        text,
        vector,
    }
}

struct Tenant {
    scope: TenantScope,
    canaries: Vec<String>,
}

fn canary(i: usize, n: usize) -> String {
    // Distinct words per tenant so each canary is nearest to its own tenant's point.
    let words = [
        "pelican marmalade quarantine",
        "zeppelin turquoise harpsichord",
        "obsidian lighthouse saxophone",
    ];
    format!("CANARY-{i}-{n} {} clause number {n}", words[i % words.len()])
}

/// Three tenants, one per tier, each with ordinary points and canaries; thousands of
/// searches, including every other tenant's canary text, never cross a tenant boundary.
async fn isolation_suite<I: VectorIndex>(index: &I, model: &Embedder, ids: [Uuid; 3]) {
    let tiers = [Placement::Shared, Placement::Dedicated, Placement::Isolated];
    let mut tenants = vec![];
    for (i, tier) in tiers.into_iter().enumerate() {
        let scope = TenantScope::new(ids[i], tier);
        let doc = Uuid::new_v4();
        let canaries: Vec<String> = (0..5).map(|n| canary(i, n)).collect();
        let refs: Vec<&str> = canaries.iter().map(String::as_str).collect();
        let vectors = model.embed(&refs).expect("embed canaries");
        let mut points: Vec<VectorPoint> = canaries
            .iter()
            .zip(vectors)
            .enumerate()
            .map(|(n, (t, v))| point(doc, n as u32, t.clone(), v))
            .collect();
        for n in 0..300u32 {
            points.push(point(
                doc,
                100 + n,
                format!("ordinary text {n} of tenant {i}"),
                unit_vector(u64::from(n) + 1000 * i as u64),
            ));
        }
        index.upsert(scope, points.clone()).await.expect("upsert");
        // Idempotent: the same points again change nothing.
        index.upsert(scope, points).await.expect("re-upsert");
        assert_eq!(index.count(scope, None).await.expect("count"), 305);
        assert_eq!(index.count(scope, Some(doc)).await.expect("count doc"), 305);
        tenants.push(Tenant { scope, canaries });
    }

    let all_canaries: Vec<String> = tenants.iter().flat_map(|t| t.canaries.clone()).collect();
    let refs: Vec<&str> = all_canaries.iter().map(String::as_str).collect();
    let canary_vectors = model.embed(&refs).expect("embed queries");
    let mut searches = 0;
    for (i, t) in tenants.iter().enumerate() {
        let others: Vec<&String> = tenants
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, o)| o.canaries.iter())
            .collect();
        let mut queries: Vec<Vec<f32>> = canary_vectors.clone();
        queries.extend((0..1000u64).map(|s| unit_vector(s + 77_000 * (i as u64 + 1))));
        for q in queries {
            let found = index.search(t.scope, q, 10, None).await.expect("search");
            searches += 1;
            assert!(found.violations.is_empty(), "violations: {:?}", found.violations);
            assert_eq!(found.hits.len(), 10);
            for h in &found.hits {
                assert_eq!(h.tenant, t.scope.tenant());
                assert_eq!(h.id, point_id(h.tenant, h.document, h.ordinal));
                assert!(
                    !others.iter().any(|c| h.text.contains(c.as_str())),
                    "tenant {i} saw another tenant's canary: {}",
                    h.text
                );
            }
        }
        // The tenant's own canary is found first: the searches above really searched.
        for (n, c) in t.canaries.iter().enumerate() {
            let q = model.embed(&[c.as_str()]).expect("embed").remove(0);
            let found = index.search(t.scope, q, 1, None).await.expect("search");
            assert_eq!(found.hits[0].text, *c);
            assert_eq!(found.hits[0].ordinal, n as u32);
        }
    }
    assert!(searches >= 3000, "{searches} searches");
    println!("isolation: {searches} searches over 3 tiers, 0 cross-tenant hits");

    // A tenant's scope at a placement it does not use holds nothing of it.
    let shared = &tenants[0].scope;
    let elsewhere = TenantScope::new(shared.tenant(), Placement::Dedicated);
    assert_eq!(index.count(elsewhere, None).await.expect("count"), 0);
    assert!(
        index
            .search(elsewhere, unit_vector(1), 5, None)
            .await
            .expect("search")
            .hits
            .is_empty()
    );

    for t in &tenants {
        index.delete_tenant(t.scope).await.expect("delete tenant");
        assert_eq!(index.count(t.scope, None).await.expect("count"), 0);
    }
}

/// Document filter, document deletion, scrolling with vectors.
async fn lifecycle_suite<I: VectorIndex>(index: &I) {
    let scope = TenantScope::new(Uuid::new_v4(), Placement::Shared);
    let neighbour = TenantScope::new(Uuid::new_v4(), Placement::Shared);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mk = |doc, range: std::ops::Range<u32>| {
        range
            .map(|n| point(doc, n, format!("text {n}"), unit_vector(u64::from(n) + 5)))
            .collect::<Vec<_>>()
    };
    index.upsert(scope, mk(a, 0..40)).await.expect("upsert a");
    index.upsert(scope, mk(b, 0..25)).await.expect("upsert b");
    // The neighbour indexes identical vectors under the same document ids.
    index
        .upsert(neighbour, mk(a, 0..40))
        .await
        .expect("upsert neighbour");

    let within_b = index
        .search(scope, unit_vector(5), 50, Some(b))
        .await
        .expect("search b");
    assert_eq!(within_b.hits.len(), 25);
    assert!(
        within_b
            .hits
            .iter()
            .all(|h| h.document == b && h.tenant == scope.tenant())
    );
    assert_eq!(within_b.hits[0].ordinal, 0, "the identical vector ranks first");
    assert!((within_b.hits[0].score - 1.0).abs() < 1e-4);

    // Scroll pages through exactly the tenant's 65 points, vectors included.
    let (mut seen, mut offset) = (vec![], None);
    loop {
        let (page, next) = index.scroll(scope, offset, 16).await.expect("scroll");
        assert!(page.len() <= 16);
        seen.extend(page);
        match next {
            Some(n) => offset = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 65);
    assert!(seen.iter().all(|p| p.tenant == scope.tenant()));
    let first = seen
        .iter()
        .find(|p| p.point.document == a && p.point.ordinal == 3)
        .expect("a/3");
    assert_eq!(first.point.vector.len(), DIMENSION);
    let expected = unit_vector(8);
    assert!(
        first
            .point
            .vector
            .iter()
            .zip(&expected)
            .all(|(x, y)| (x - y).abs() < 1e-5)
    );
    assert_eq!((first.point.page_start, first.point.page_end), (4, 5));

    index.delete_document(scope, a).await.expect("delete a");
    assert_eq!(index.count(scope, Some(a)).await.expect("count"), 0);
    assert_eq!(index.count(scope, Some(b)).await.expect("count"), 25);
    assert_eq!(
        index.count(neighbour, Some(a)).await.expect("count"),
        40,
        "neighbour untouched"
    );

    let bad = index
        .upsert(scope, vec![point(a, 0, "short".into(), vec![0.5; 3])])
        .await;
    assert!(matches!(bad, Err(VectorError::Dimension { got: 3 })), "{bad:?}");

    index.delete_tenant(scope).await.expect("delete");
    index.delete_tenant(neighbour).await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_engine_keeps_tenants_apart_on_every_tier() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = EdgeStore::open(dir.path(), "test").await.expect("open");
    let ids = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
    isolation_suite(&store, &embedder(), ids).await;
    // The tenants' own shards were removed with them.
    assert!(
        !dir.path()
            .join("dedicated")
            .read_dir()
            .expect("dir")
            .any(|_| true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_engine_filters_scrolls_and_deletes() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = EdgeStore::open(dir.path(), "test").await.expect("open");
    lifecycle_suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_reopen_and_a_second_owner_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let scope = TenantScope::new(Uuid::new_v4(), Placement::Dedicated);
    let shared = TenantScope::new(Uuid::new_v4(), Placement::Shared);
    let doc = Uuid::new_v4();
    {
        let store = EdgeStore::open(dir.path(), "first").await.expect("open");
        let points: Vec<_> = (0..50)
            .map(|n| point(doc, n, format!("t{n}"), unit_vector(u64::from(n))))
            .collect();
        store.upsert(scope, points.clone()).await.expect("upsert");
        store.upsert(shared, points).await.expect("upsert");

        let second = EdgeStore::open(dir.path(), "second").await;
        match second {
            Err(VectorError::DirectoryOwned { holder, .. }) => assert!(holder.contains("first")),
            other => panic!("second owner: {other:?}"),
        }
        // Simulate a crash: leak the store so nothing is flushed on drop. The lock is
        // leaked too, so release it by hand below by reopening in a fresh directory copy.
        std::mem::forget(store);
    }
    // The leaked store still holds the lock: copy the files, as a restarted process on the
    // same disk would find them.
    let copy = tempfile::tempdir().expect("tmp");
    copy_dir(dir.path(), copy.path());
    let reopened = EdgeStore::open(copy.path(), "restarted").await.expect("reopen");
    assert_eq!(reopened.count(scope, None).await.expect("count"), 50);
    assert_eq!(reopened.count(shared, Some(doc)).await.expect("count"), 50);
    let found = reopened
        .search(scope, unit_vector(7), 1, None)
        .await
        .expect("search");
    assert_eq!(found.hits[0].ordinal, 7);
    assert!(reopened.disk_bytes() > 0);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != ".owner.lock" {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// The same suites against a Qdrant server, when `QDRANT_URL` names one (its gRPC port).
/// The isolated tenant's "own deployment" is `QDRANT_ISOLATED_URL` (default: the same server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_server_keeps_tenants_apart_on_every_tier() {
    let Ok(url) = std::env::var("QDRANT_URL") else {
        println!(
            "SKIPPED: QDRANT_URL is not set, so the VectorIndex suite ran against the in-process \
             engine only (no Qdrant server can be installed from this machine's registries)"
        );
        return;
    };
    let key = std::env::var("QDRANT_API_KEY").ok();
    let ids = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
    let isolated_url = std::env::var("QDRANT_ISOLATED_URL").unwrap_or_else(|_| url.clone());
    let config = ServerConfig {
        url,
        api_key: key.clone(),
        collection_prefix: format!("docket_test_{}_", Uuid::new_v4().simple()),
        isolated: [(ids[2], (isolated_url, key))].into_iter().collect(),
    };
    let server = QdrantServer::connect(&config).expect("connect");
    server
        .health()
        .await
        .expect("the Qdrant server at QDRANT_URL answers");
    isolation_suite(&server, &embedder(), ids).await;
    lifecycle_suite(&server).await;
    // An isolated tenant without a configured deployment is refused, never placed elsewhere.
    let stray = TenantScope::new(Uuid::new_v4(), Placement::Isolated);
    let refused = server
        .upsert(stray, vec![point(Uuid::new_v4(), 0, "x".into(), unit_vector(1))])
        .await;
    assert!(matches!(refused, Err(VectorError::Engine(m)) if m.contains("no deployment")));
}
