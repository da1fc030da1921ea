//! A document's vectors as stored in object storage: `vectors.bin` (little-endian f32, one
//! row per chunk in ordinal order) and `vectors.json` (model, dimension, count). Re-indexing,
//! tier moves and exports read these; nothing is embedded twice.

use serde::{Deserialize, Serialize};

/// The manifest next to a document's vectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorManifest {
    /// Model name.
    pub model: String,
    /// Floats per vector.
    pub dimension: usize,
    /// Vectors (= chunks).
    pub count: usize,
}

/// Object key of a document's vectors.
pub fn vectors_key(id: crate::ids::DocumentId) -> String {
    format!("documents/{id}/vectors.bin")
}

/// Object key of a document's vector manifest.
pub fn manifest_key(id: crate::ids::DocumentId) -> String {
    format!("documents/{id}/vectors.json")
}

/// Packs vectors as little-endian f32.
pub fn pack(vectors: &[Vec<f32>]) -> Vec<u8> {
    vectors
        .iter()
        .flat_map(|v| v.iter().flat_map(|x| x.to_le_bytes()))
        .collect()
}

/// Unpacks `count` vectors of `dimension`; `None` if the sizes disagree.
pub fn unpack(bytes: &[u8], dimension: usize, count: usize) -> Option<Vec<Vec<f32>>> {
    if dimension == 0 || bytes.len() != dimension * count * 4 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(dimension * 4)
            .map(|row| {
                row.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn pack_round_trips_and_checks_sizes() {
        let v = vec![vec![0.5f32, -1.25, 3.0], vec![1e-7, 0.0, -0.0]];
        let b = super::pack(&v);
        assert_eq!(b.len(), 24);
        assert_eq!(super::unpack(&b, 3, 2), Some(v));
        assert_eq!(super::unpack(&b, 3, 3), None);
        assert_eq!(super::unpack(&b, 4, 2), None);
    }
}
