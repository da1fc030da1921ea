//! Signing keys for access tokens, kept in PostgreSQL (private halves sealed under the
//! master key) so that every API process signs and verifies with the same set. One key is
//! active; `docketctl keys rotate` retires it and a retired key stays accepted for the
//! rotation window, so tokens issued just before a rotation keep working until they expire.

use crate::config::MasterKey;
use crate::crypto;
use crate::db::{ControlDb, Db, DbError};
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::Serialize;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

use super::jwt::KeyLookup;

/// Loading or creating keys failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A stored key could not be decrypted (wrong master key?).
    #[error("signing key {kid}: {source}")]
    Crypto {
        /// Key id.
        kid: String,
        /// Cause.
        source: crypto::CryptoError,
    },
    /// A stored key is malformed.
    #[error("signing key {0} is malformed")]
    Malformed(String),
    /// No active key could be established.
    #[error("no active signing key")]
    NoActiveKey,
}

impl From<sqlx::Error> for KeyError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    public_key: Vec<u8>,
    private_key_enc: Vec<u8>,
    master_kid: String,
    retired_at: Option<DateTime<Utc>>,
}

struct Entry {
    public: VerifyingKey,
    retired_at: Option<DateTime<Utc>>,
}

struct Snapshot {
    active: Option<(String, SigningKey)>,
    keys: HashMap<String, Entry>,
    loaded: Option<Instant>,
}

/// The process's view of the signing keys; refreshes itself from the database.
#[derive(Clone)]
pub struct KeyRing {
    db: Db,
    master: MasterKey,
    window: Duration,
    snap: Arc<RwLock<Snapshot>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// How often the active key is re-read (a rotation reaches every process within this).
const REFRESH: Duration = Duration::from_secs(10);
/// An unknown `kid` triggers a re-read at most this often (no amplification by garbage).
const UNKNOWN_KID_REFRESH: Duration = Duration::from_secs(2);

fn context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

fn new_kid() -> String {
    format!(
        "{}-{}",
        Utc::now().format("%Y%m%d"),
        hex::encode(crypto::random_bytes::<4>())
    )
}

/// Inserts a new active key; the caller has retired the previous one (or there was none).
async fn insert_key(conn: &mut sqlx::PgConnection, master: &MasterKey) -> Result<String, KeyError> {
    let kid = new_kid();
    let seed = crypto::random_bytes::<32>();
    let sk = SigningKey::from_bytes(&seed);
    sqlx::query(
        "INSERT INTO signing_keys (kid, public_key, private_key_enc, master_kid) VALUES ($1, $2, $3, $4)",
    )
    .bind(&kid)
    .bind(sk.verifying_key().as_bytes().to_vec())
    .bind(crypto::seal(master, &context(&kid), &seed))
    .bind(&master.kid)
    .execute(conn)
    .await?;
    Ok(kid)
}

impl KeyRing {
    /// A key ring that loads from the database on first use (so a process starts while
    /// PostgreSQL is down), creating the deployment's first key if there is none.
    pub fn new(db: Db, master: MasterKey, window: Duration) -> Self {
        Self {
            db,
            master,
            window,
            snap: Arc::new(RwLock::new(Snapshot {
                active: None,
                keys: HashMap::new(),
                loaded: None,
            })),
        }
    }

    async fn ensure_active(&self) -> Result<(), KeyError> {
        self.reload().await?;
        if self.snap.read().await.active.is_some() {
            return Ok(());
        }
        let mut conn = self.db.platform_pool().acquire().await.map_err(DbError::from)?;
        // Two processes may race here; the partial unique index lets exactly one win.
        if let Err(e) = insert_key(&mut conn, &self.master).await
            && !matches!(&e, KeyError::Db(d) if d.is_unique_violation())
        {
            return Err(e);
        }
        self.reload().await
    }

    async fn reload(&self) -> Result<(), KeyError> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, public_key, private_key_enc, master_kid, retired_at FROM signing_keys",
        )
        .fetch_all(self.db.platform_pool())
        .await?;
        let mut keys = HashMap::new();
        let mut active = None;
        for KeyRow {
            kid,
            public_key: public,
            private_key_enc: sealed,
            master_kid,
            retired_at,
        } in rows
        {
            let public: [u8; 32] = public.try_into().map_err(|_| KeyError::Malformed(kid.clone()))?;
            let public = VerifyingKey::from_bytes(&public).map_err(|_| KeyError::Malformed(kid.clone()))?;
            if retired_at.is_none() {
                let seed =
                    crypto::open(&self.master, &master_kid, &context(&kid), &sealed).map_err(|source| {
                        KeyError::Crypto {
                            kid: kid.clone(),
                            source,
                        }
                    })?;
                let seed: [u8; 32] = seed.try_into().map_err(|_| KeyError::Malformed(kid.clone()))?;
                active = Some((kid.clone(), SigningKey::from_bytes(&seed)));
            }
            keys.insert(kid, Entry { public, retired_at });
        }
        *self.snap.write().await = Snapshot {
            active,
            keys,
            loaded: Some(Instant::now()),
        };
        Ok(())
    }

    async fn refresh_if_older(&self, age: Duration) {
        let stale = self.snap.read().await.loaded.is_none_or(|l| l.elapsed() >= age);
        if stale && let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "could not refresh signing keys; using the cached set");
        }
    }

    /// The active key, for signing.
    pub async fn signer(&self) -> Result<(String, SigningKey), KeyError> {
        self.refresh_if_older(REFRESH).await;
        if self.snap.read().await.active.is_none() {
            self.ensure_active().await?;
        }
        self.snap.read().await.active.clone().ok_or(KeyError::NoActiveKey)
    }

    /// The public key for `kid`, if it is active or retired within the window.
    pub async fn lookup(&self, kid: &str) -> KeyLookup {
        self.refresh_if_older(REFRESH).await;
        if !self.snap.read().await.keys.contains_key(kid) {
            self.refresh_if_older(UNKNOWN_KID_REFRESH).await;
        }
        let snap = self.snap.read().await;
        match snap.keys.get(kid) {
            None => KeyLookup::Unknown,
            Some(Entry {
                public,
                retired_at: None,
            }) => KeyLookup::Valid(*public),
            Some(Entry {
                public,
                retired_at: Some(at),
            }) => {
                let window = chrono::Duration::from_std(self.window).unwrap_or_default();
                if Utc::now() <= *at + window {
                    KeyLookup::Valid(*public)
                } else {
                    KeyLookup::Retired
                }
            }
        }
    }

    /// The JWKS document: the active key and those still inside the rotation window.
    pub async fn jwks(&self) -> JwkSet {
        self.refresh_if_older(REFRESH).await;
        let snap = self.snap.read().await;
        let window = chrono::Duration::from_std(self.window).unwrap_or_default();
        let mut keys: Vec<(&String, &Entry)> = snap
            .keys
            .iter()
            .filter(|(_, e)| e.retired_at.is_none_or(|at| Utc::now() <= at + window))
            .collect();
        keys.sort_by_key(|(_, e)| e.retired_at.is_some());
        let keys: Vec<Jwk> = keys
            .into_iter()
            .map(|(kid, e)| Jwk::ed25519(kid.clone(), e.public.as_bytes()))
            .collect();
        JwkSet { keys }
    }
}

/// A JSON Web Key Set (RFC 7517): the public keys that verify access tokens.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JwkSet {
    /// The active key first, then retired keys still within their verification window.
    pub keys: Vec<Jwk>,
}

/// One Ed25519 public key as a JSON Web Key (RFC 8037).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Jwk {
    /// Key type: always `OKP`.
    pub kty: String,
    /// Curve: always `Ed25519`.
    pub crv: String,
    /// Algorithm: always `EdDSA`.
    pub alg: String,
    /// Public key use: always `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
    /// The key id, as in an access token's `kid` header.
    pub kid: String,
    /// The public key, base64url without padding.
    pub x: String,
}

impl Jwk {
    /// The JWK of an Ed25519 signing key.
    fn ed25519(kid: String, public: &[u8]) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            alg: "EdDSA".into(),
            key_use: "sig".into(),
            kid,
            x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public),
        }
    }
}

/// Every signing key Docket has used, with its rotation dates
/// (`/.well-known/docket-keys.json`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublishedKeys {
    /// Every key that has signed, active or retired, oldest first.
    pub keys: Vec<PublishedKey>,
}

/// A signing key as a JWK, with when it was made and retired.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublishedKey {
    /// The key.
    #[serde(flatten)]
    pub jwk: Jwk,
    /// When the key was made.
    pub created_at: DateTime<Utc>,
    /// When it stopped signing; null while it is active.
    pub retired_at: Option<DateTime<Utc>>,
}

/// Retires the active key and creates a new one (control plane). Returns the new `kid`.
pub async fn rotate(conn: &mut sqlx::PgConnection, master: &MasterKey) -> Result<String, KeyError> {
    sqlx::query("UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL")
        .execute(&mut *conn)
        .await?;
    insert_key(conn, master).await
}

/// Moves a retired key's retirement into the past (operators shortening a window after a
/// suspected leak; tests of the window).
pub async fn backdate_retirement(control: &ControlDb, kid: &str, ago: Duration) -> Result<(), KeyError> {
    sqlx::query("UPDATE signing_keys SET retired_at = now() - make_interval(secs => $2) WHERE kid = $1 AND retired_at IS NOT NULL")
        .bind(kid)
        .bind(ago.as_secs_f64())
        .execute(control.pool())
        .await?;
    Ok(())
}

/// kid, public key, created, retired.
type PublishedRow = (String, Vec<u8>, DateTime<Utc>, Option<DateTime<Utc>>);

/// Every signing key, active and retired, as a JWKS-style document with rotation dates
/// (`/.well-known/docket-keys.json`): export manifests are verified against these long after
/// a key stopped signing access tokens.
pub async fn published(pool: &sqlx::PgPool) -> Result<PublishedKeys, KeyError> {
    let rows: Vec<PublishedRow> = sqlx::query_as(
        "SELECT kid, public_key, created_at, retired_at FROM signing_keys ORDER BY created_at",
    )
    .fetch_all(pool)
    .await?;
    let keys = rows
        .into_iter()
        .map(|(kid, public, created_at, retired_at)| PublishedKey {
            jwk: Jwk::ed25519(kid, &public),
            created_at,
            retired_at,
        })
        .collect();
    Ok(PublishedKeys { keys })
}
