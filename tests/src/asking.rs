//! Asking questions through the real API, and reading what it answered.

use crate::TestApp;
use reqwest::Response;
use serde_json::{Value, json};

impl TestApp {
    /// `POST /v1/queries?wait={wait}` with `question` and any extra body fields.
    pub async fn ask_raw(&self, token: &str, question: &str, extra: Value, wait: u64) -> Response {
        let mut body = json!({"question": question});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.client
            .post(format!("{}/v1/queries?wait={wait}", self.address))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("ask")
    }

    /// Asks and waits (up to 30 s) for the finished result; panics unless it is 200.
    pub async fn ask(&self, token: &str, question: &str, extra: Value) -> Value {
        let r = self.ask_raw(token, question, extra, 30).await;
        let status = r.status();
        let v: Value = r.json().await.expect("json");
        assert_eq!(status, 200, "{question}: {v}");
        v
    }

    /// Asks and waits for the final result however long the answer takes (a language model
    /// on two shared cores can take longer than one `wait`): `wait=30`, then polls.
    pub async fn ask_final(&self, token: &str, question: &str, extra: Value) -> Value {
        let r = self.ask_raw(token, question, extra, 30).await;
        let status = r.status();
        let v: Value = r.json().await.expect("json");
        if status == 200 {
            return v;
        }
        assert_eq!(status, 202, "{question}: {v}");
        self.wait_query(token, v["query_id"].as_str().expect("query id"))
            .await
    }

    /// Polls `GET /v1/queries/{id}` until the query is final (at most 150 s).
    pub async fn wait_query(&self, token: &str, id: &str) -> Value {
        let started = std::time::Instant::now();
        loop {
            let q: Value = self
                .client
                .get(format!("{}/v1/queries/{id}", self.address))
                .bearer_auth(token)
                .send()
                .await
                .expect("poll")
                .json()
                .await
                .expect("json");
            if matches!(q["status"].as_str(), Some("answered" | "no_answer" | "failed")) {
                return q;
            }
            assert!(started.elapsed().as_secs() < 150, "{id} never finished: {q}");
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// The text of every chunk of tenant `t` (a quote must be an exact substring of one).
    pub async fn chunk_texts(&self, t: docket_platform::ids::TenantId) -> Vec<String> {
        sqlx::query_scalar("SELECT text FROM chunks WHERE tenant_id = $1")
            .bind(t)
            .fetch_all(self.control.pool())
            .await
            .expect("chunks")
    }

    /// Rows in `queries` and token rows in the ledger for the tenant (what a refusal must
    /// not create).
    pub async fn query_footprint(&self, t: docket_platform::ids::TenantId) -> (i64, i64) {
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM queries WHERE tenant_id = $1),
                    (SELECT count(*) FROM usage_events WHERE tenant_id = $1 AND kind LIKE 'query_tokens%')",
        )
        .bind(t)
        .fetch_one(self.control.pool())
        .await
        .expect("footprint")
    }
}

/// Words of `s`, lowercased (for overlap checks robust to PDF whitespace).
pub fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether `quote` overlaps the annotated `clause`: they share a run of consecutive words
/// at least as long as the clause or six words, whichever is shorter.
pub fn overlaps(quote: &str, clause: &str) -> bool {
    let (q, c) = (words(quote), words(clause));
    if c.is_empty() || q.is_empty() {
        return false;
    }
    let need = c.len().min(6);
    // Longest common run of words (dynamic programming over the two sequences).
    let mut prev = vec![0usize; c.len() + 1];
    for qw in &q {
        let mut cur = vec![0usize; c.len() + 1];
        for (j, cw) in c.iter().enumerate() {
            if qw == cw {
                cur[j + 1] = prev[j] + 1;
                if cur[j + 1] >= need {
                    return true;
                }
            }
        }
        prev = cur;
    }
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn overlap_needs_a_shared_run_of_words() {
        let clause = "This Agreement shall be governed by the laws of the State of Delaware";
        assert!(super::overlaps(
            "... shall be governed by the laws of the State of Delaware, without",
            clause
        ));
        assert!(!super::overlaps(
            "governed by New York law; the laws of Delaware do not apply",
            clause
        ));
        assert!(super::overlaps("made by Glu Mobile Inc. and", "Glu Mobile Inc."));
        assert!(!super::overlaps("Glu", "Glu Mobile Inc."));
    }
}
