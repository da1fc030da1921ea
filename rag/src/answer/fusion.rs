//! Reciprocal-rank fusion: one ranking from several, by rank alone. Dense cosines and
//! lexical BM25 scores live on different scales that no fixed weight reconciles for every
//! tenant and question; ranks do. `score(d) = Σ 1 / (K + rank_i(d))` over the rankings
//! that hold `d` (rank from 1).

use std::collections::HashMap;
use std::hash::Hash;

/// The usual constant (Cormack et al., 2009): damps the head of each ranking so that one
/// list's first place does not outweigh agreement between lists.
pub const K: f32 = 60.0;

/// Items of all `rankings` (each best first), fused best first with their fused scores.
/// Ties keep the order of first appearance (the first ranking wins).
pub fn fuse<T: Eq + Hash + Clone>(rankings: &[Vec<T>]) -> Vec<(T, f32)> {
    let mut score: HashMap<T, (f32, usize)> = HashMap::new();
    let mut seen = 0;
    for ranking in rankings {
        for (rank, item) in ranking.iter().enumerate() {
            let e = score.entry(item.clone()).or_insert_with(|| {
                seen += 1;
                (0.0, seen)
            });
            e.0 += 1.0 / (K + rank as f32 + 1.0);
        }
    }
    let mut out: Vec<(T, f32, usize)> = score.into_iter().map(|(t, (s, first))| (t, s, first)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    out.into_iter().map(|(t, s, _)| (t, s)).collect()
}

/// The best fused score an item can have with `lists` rankings (first in every one).
pub fn best(lists: usize) -> f32 {
    lists as f32 / (K + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_beats_one_first_place() {
        let dense = vec!["a", "b", "c"];
        let lexical = vec!["d", "b", "a"];
        let fused = fuse(&[dense, lexical]);
        let order: Vec<&str> = fused.iter().map(|(t, _)| *t).collect();
        // b is second in both, a first and third; d only in one list.
        assert_eq!(order, vec!["a", "b", "d", "c"]);
        assert!((fused[0].1 - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-6);
        assert!(fused[0].1 <= best(2));
    }

    #[test]
    fn one_ranking_keeps_its_order_and_nothing_is_invented() {
        let fused = fuse(&[vec![3, 1, 2]]);
        assert_eq!(fused.iter().map(|x| x.0).collect::<Vec<_>>(), vec![3, 1, 2]);
        assert!(fuse::<u8>(&[vec![], vec![]]).is_empty());
    }
}
