//! The package format `docket-export/1`: its files, `manifest.json` (every file with size
//! and SHA-256, the count of every store, the tenant, the snapshot, the head of the tenant's
//! audit chain) and `manifest.sig.json` (Ed25519 over a domain-separated manifest), and the
//! offline verification `docketctl export verify` runs on a downloaded package.

use crate::audit::{GENESIS, StoredEvent, row_hash};
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The format's name and version written now: documents and chunks as two JSONL files at
/// the package's root (one object per document fewer to send, load and check).
pub const FORMAT: &str = "docket-export/2";
/// The first version (each document's row and chunks in its own folder), still verified.
pub const FORMAT_V1: &str = "docket-export/1";
/// What the signature covers, before the manifest's bytes (so the key's other use, access
/// tokens, can never be confused with a manifest).
pub const SIGNING_CONTEXT: &[u8] = b"docket-export-manifest/1\n";
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The signature's file name.
pub const SIGNATURE: &str = "manifest.sig.json";

/// One file of the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path inside the package.
    pub path: String,
    /// Size in bytes.
    pub bytes: i64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// The head of the tenant's audit chain at the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Last sequence number included (0: none).
    pub seq: i64,
    /// Its hash (the genesis hash when empty).
    pub hash: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The export.
    pub export_id: uuid::Uuid,
    /// The tenant.
    pub tenant_id: uuid::Uuid,
    /// The database as of this instant.
    pub snapshot_at: DateTime<Utc>,
    /// When the manifest was written.
    pub generated_at: DateTime<Utc>,
    /// Rows per store at the snapshot (each equals the lines or files of that store).
    pub counts: BTreeMap<String, i64>,
    /// The embedding model's name and dimension (`vectors.bin`: little-endian f32, one row
    /// per chunk in ordinal order).
    pub embeddings: serde_json::Value,
    /// The tenant's audit chain head.
    pub audit_head: AuditHead,
    /// Every file but the manifest and its signature, by path.
    pub files: Vec<FileEntry>,
}

/// `manifest.sig.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ManifestSignature {
    /// `EdDSA` (Ed25519).
    pub alg: String,
    /// The signing key's id (as published at `/.well-known/docket-keys.json`).
    pub kid: String,
    /// Its public half, base64url (for convenience; pin the published key to trust it).
    pub public_key: String,
    /// Signature over [`SIGNING_CONTEXT`] + the manifest's bytes, base64url.
    pub signature: String,
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()
}

/// Signs the manifest's bytes.
pub fn sign(manifest: &[u8], kid: &str, key: &SigningKey) -> ManifestSignature {
    sign_in(SIGNING_CONTEXT, manifest, kid, key)
}

/// Signs `context` + `bytes` (each signed kind of document has its own context, so a
/// signature over one can never pass for another).
pub fn sign_in(context: &[u8], bytes: &[u8], kid: &str, key: &SigningKey) -> ManifestSignature {
    let mut msg = context.to_vec();
    msg.extend_from_slice(bytes);
    ManifestSignature {
        alg: "EdDSA".into(),
        kid: kid.into(),
        public_key: b64(key.verifying_key().as_bytes()),
        signature: b64(&key.sign(&msg).to_bytes()),
    }
}

/// Why a signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureProblem {
    /// It names a key that is not among the trusted ones.
    Untrusted(String),
    /// The signature or the key it carries is not well-formed.
    Malformed,
    /// It does not match the bytes (they were changed, or signed by another key).
    Mismatch,
}

/// Checks `sig` over `context` + `bytes`: against `trusted` keys by id when given, else
/// against the public key the signature carries (integrity only, not origin).
pub fn check_signature(
    context: &[u8],
    bytes: &[u8],
    sig: &ManifestSignature,
    trusted: Option<&BTreeMap<String, VerifyingKey>>,
) -> Result<(), SignatureProblem> {
    let key = match trusted {
        Some(keys) => keys
            .get(&sig.kid)
            .copied()
            .ok_or_else(|| SignatureProblem::Untrusted(sig.kid.clone()))?,
        None => unb64(&sig.public_key)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .ok_or(SignatureProblem::Malformed)?,
    };
    let signature = unb64(&sig.signature)
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b))
        .ok_or(SignatureProblem::Malformed)?;
    let mut msg = context.to_vec();
    msg.extend_from_slice(bytes);
    key.verify(&msg, &signature)
        .map_err(|_| SignatureProblem::Mismatch)
}

/// Trusted public keys by key id.
pub type TrustedKeys = BTreeMap<String, VerifyingKey>;

/// Public keys by id, from a JWKS document (`{"keys": [{"kid", "x"}]}`).
pub fn keys_from_jwks(doc: &serde_json::Value) -> TrustedKeys {
    let mut out = BTreeMap::new();
    for k in doc["keys"].as_array().into_iter().flatten() {
        let (Some(kid), Some(x)) = (k["kid"].as_str(), k["x"].as_str()) else {
            continue;
        };
        let key = unb64(x)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .and_then(|b| VerifyingKey::from_bytes(&b).ok());
        if let Some(key) = key {
            out.insert(kid.to_owned(), key);
        }
    }
    out
}

/// What verification found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    /// Files checked.
    pub files: usize,
    /// Audit events whose chain was recomputed.
    pub audit_events: usize,
    /// The key that signed (kid), when the signature holds.
    pub signed_by: Option<String>,
    /// Whether the key was pinned (given by the caller) rather than taken from the package.
    pub key_pinned: bool,
    /// Every problem, each naming the file or count at fault (empty: the package is intact).
    pub problems: Vec<String>,
}

impl Verification {
    /// No problem found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// `path` inside `dir`, if it is a plain relative path (no `..`, no root, no prefix): a
/// manifest cannot make the verifier read outside the package.
fn inside(dir: &Path, path: &str) -> Option<std::path::PathBuf> {
    let p = Path::new(path);
    let plain = !path.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    plain.then(|| dir.join(p))
}

/// A regular file's size, never following a symlink.
fn regular_size(file: &Path) -> Option<u64> {
    std::fs::symlink_metadata(file)
        .ok()
        .filter(|m| m.file_type().is_file())
        .map(|m| m.len())
}

/// SHA-256 and line count of a file, read in blocks (bounded memory).
fn digest(file: &Path) -> Option<(String, i64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(file).ok()?;
    let (mut h, mut lines, mut buf, mut last) = (Sha256::new(), 0i64, vec![0u8; 1 << 16], b'\n');
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as i64;
        last = buf[n - 1];
    }
    // A last line without its newline still counts.
    if last != b'\n' {
        lines += 1;
    }
    Some((hex::encode(h.finalize()), lines))
}

/// Lines of a package file (0 if missing or unsafe: reported by the file check).
fn lines(dir: &Path, path: &str) -> i64 {
    inside(dir, path)
        .filter(|f| regular_size(f).is_some())
        .and_then(|f| digest(&f))
        .map(|(_, n)| n)
        .unwrap_or(0)
}

/// How a store's count is seen in the package.
fn counted(dir: &Path, m: &Manifest, store: &str) -> i64 {
    match store {
        "documents" if m.format == FORMAT_V1 => m
            .files
            .iter()
            .filter(|f| f.path.ends_with("/metadata.json"))
            .count() as i64,
        "chunks" if m.format == FORMAT_V1 => m
            .files
            .iter()
            .filter(|f| f.path.ends_with("/chunks.jsonl"))
            .map(|f| lines(dir, &f.path))
            .sum(),
        other => lines(dir, &format!("{other}.jsonl")),
    }
}

/// Verifies a package in `dir`: the signature (with `trusted` keys when given, else the key
/// the package names), every file's size and SHA-256, no file missing or added, every count
/// against the files, and the audit chain recomputed up to the manifest's head.
pub fn verify(dir: &Path, trusted: Option<&BTreeMap<String, VerifyingKey>>) -> Verification {
    let mut v = Verification::default();
    let manifest_bytes = match std::fs::read(dir.join(MANIFEST)) {
        Ok(b) => b,
        Err(e) => {
            v.problems.push(format!("{MANIFEST}: cannot be read ({e})"));
            return v;
        }
    };
    match std::fs::read(dir.join(SIGNATURE))
        .ok()
        .and_then(|b| serde_json::from_slice::<ManifestSignature>(&b).ok())
    {
        None => v
            .problems
            .push(format!("{SIGNATURE}: missing or not a signature")),
        Some(sig) => {
            v.key_pinned = trusted.is_some();
            match check_signature(SIGNING_CONTEXT, &manifest_bytes, &sig, trusted) {
                Ok(()) => v.signed_by = Some(sig.kid),
                Err(SignatureProblem::Untrusted(kid)) => v
                    .problems
                    .push(format!("{SIGNATURE}: key {kid} is not a trusted key")),
                Err(SignatureProblem::Malformed) => v
                    .problems
                    .push(format!("{SIGNATURE}: the signature is malformed")),
                Err(SignatureProblem::Mismatch) => v.problems.push(format!(
                    "{MANIFEST}: the signature does not match (the manifest was changed)"
                )),
            }
        }
    }
    let m: Manifest = match serde_json::from_slice(&manifest_bytes) {
        Ok(m) => m,
        Err(e) => {
            v.problems.push(format!("{MANIFEST}: not a manifest ({e})"));
            return v;
        }
    };
    if m.format != FORMAT && m.format != FORMAT_V1 {
        v.problems.push(format!(
            "{MANIFEST}: format {:?}, expected {FORMAT} or {FORMAT_V1}",
            m.format
        ));
    }
    for f in &m.files {
        let Some(file) = inside(dir, &f.path) else {
            v.problems
                .push(format!("{}: not a path inside the package", f.path));
            continue;
        };
        match regular_size(&file) {
            None => v
                .problems
                .push(format!("{}: missing (or not a regular file)", f.path)),
            Some(n) if n as i64 != f.bytes => v
                .problems
                .push(format!("{}: {n} bytes, the manifest says {}", f.path, f.bytes)),
            Some(_) => match digest(&file) {
                Some((sha, _)) if sha == f.sha256 => v.files += 1,
                _ => v.problems.push(format!("{}: SHA-256 does not match", f.path)),
            },
        }
    }
    let listed: std::collections::HashSet<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    for entry in walk(dir) {
        if entry != MANIFEST && entry != SIGNATURE && !listed.contains(entry.as_str()) {
            v.problems.push(format!("{entry}: not in the manifest"));
        }
    }
    for (store, n) in &m.counts {
        let seen = counted(dir, &m, store);
        if seen != *n {
            v.problems.push(format!(
                "count of {store}: the package holds {seen}, the manifest says {n}"
            ));
        }
    }
    verify_chain(dir, &m, &mut v);
    v
}

/// Recomputes the tenant's audit chain from `audit.jsonl` up to the manifest's head.
fn verify_chain(dir: &Path, m: &Manifest, v: &mut Verification) {
    let Ok(file) = std::fs::File::open(dir.join("audit.jsonl")) else {
        return;
    };
    let text = std::io::BufRead::lines(std::io::BufReader::new(file)).map_while(Result::ok);
    let chain = m.tenant_id.to_string();
    let mut prev = GENESIS.to_owned();
    let mut last = (0i64, GENESIS.to_owned());
    for (n, line) in text.filter(|l| !l.is_empty()).enumerate() {
        let Ok(e) = serde_json::from_str::<StoredEvent>(&line) else {
            v.problems
                .push(format!("audit.jsonl: line {} is not an audit event", n + 1));
            return;
        };
        if e.prev_hash != prev || row_hash(&chain, &e) != e.hash {
            v.problems
                .push(format!("audit.jsonl: the chain breaks at seq {}", e.seq));
            return;
        }
        prev = e.hash.clone();
        last = (e.seq, e.hash);
        v.audit_events += 1;
    }
    if last.0 != m.audit_head.seq || last.1 != m.audit_head.hash {
        v.problems.push(format!(
            "audit.jsonl: ends at seq {}, the manifest's head is seq {}",
            last.0, m.audit_head.seq
        ));
    }
}

/// Every file under `dir`, as relative `/`-separated paths.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            // Never follows a link (a link to `..` would loop); a link is reported as a file
            // the manifest does not list.
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(
        dir: &Path,
        files: &[(&str, &[u8])],
        extra_paths: &[&str],
    ) -> (SigningKey, BTreeMap<String, VerifyingKey>) {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let mut entries: Vec<FileEntry> = files
            .iter()
            .map(|(p, b)| {
                std::fs::write(dir.join(p), b).expect("write");
                FileEntry {
                    path: (*p).into(),
                    bytes: b.len() as i64,
                    sha256: sha256_hex(b),
                }
            })
            .collect();
        for p in extra_paths {
            entries.push(FileEntry {
                path: (*p).into(),
                bytes: 1,
                sha256: "00".into(),
            });
        }
        let m = Manifest {
            format: FORMAT.into(),
            export_id: uuid::Uuid::nil(),
            tenant_id: uuid::Uuid::nil(),
            snapshot_at: Utc::now(),
            generated_at: Utc::now(),
            counts: BTreeMap::new(),
            embeddings: serde_json::Value::Null,
            audit_head: AuditHead {
                seq: 0,
                hash: GENESIS.into(),
            },
            files: entries,
        };
        let bytes = serde_json::to_vec_pretty(&m).expect("json");
        std::fs::write(dir.join(MANIFEST), &bytes).expect("manifest");
        let sig = sign(&bytes, "k1", &key);
        std::fs::write(dir.join(SIGNATURE), serde_json::to_vec(&sig).expect("sig")).expect("sig file");
        let trusted = [("k1".to_owned(), key.verifying_key())].into_iter().collect();
        (key, trusted)
    }

    #[test]
    fn an_intact_package_verifies_and_every_change_is_named() {
        let dir = tempfile::tempdir().expect("dir");
        let (_, trusted) = package(
            dir.path(),
            &[("a.txt", b"alpha\n"), ("b.jsonl", b"{}\n{}\n")],
            &[],
        );
        let v = verify(dir.path(), Some(&trusted));
        assert!(v.ok(), "{:?}", v.problems);
        assert_eq!(v.files, 2);
        std::fs::write(dir.path().join("a.txt"), b"alphA\n").expect("tamper");
        std::fs::write(dir.path().join("stray.bin"), b"x").expect("extra");
        let v = verify(dir.path(), Some(&trusted));
        let all = v.problems.join("\n");
        assert!(all.contains("a.txt: SHA-256 does not match"), "{all}");
        assert!(all.contains("stray.bin: not in the manifest"), "{all}");
        let other = [(
            "k1".to_owned(),
            SigningKey::from_bytes(&[9u8; 32]).verifying_key(),
        )]
        .into_iter()
        .collect();
        assert!(
            verify(dir.path(), Some(&other))
                .problems
                .join("\n")
                .contains("signature does not match")
        );
    }

    #[test]
    fn manifest_paths_cannot_leave_the_package() {
        let dir = tempfile::tempdir().expect("dir");
        let (_, trusted) = package(
            dir.path(),
            &[("a.txt", b"alpha")],
            &["../outside", "/etc/passwd", "x/../../y"],
        );
        let v = verify(dir.path(), Some(&trusted));
        let all = v.problems.join("\n");
        for p in ["../outside", "/etc/passwd", "x/../../y"] {
            assert!(
                all.contains(&format!("{p}: not a path inside the package")),
                "{all}"
            );
        }
    }
}
