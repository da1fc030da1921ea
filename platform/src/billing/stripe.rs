//! A small client for Stripe's REST API (form-encoded requests, JSON answers), written from
//! Stripe's API reference: customers, invoice items, invoices, finalize, pay. Every POST
//! carries an `Idempotency-Key` derived from Docket's own ids, so a request retried after a
//! crash or a timeout returns the object the first one made instead of a second one.
//! Every response field is optional: only the few read here are decoded.

use crate::secret::Secret;
use serde::Deserialize;
use std::time::Duration;

/// A Stripe call failed.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe could not be reached, timed out, or answered 409/429/5xx: retry later.
    #[error("Stripe is unavailable: {0}")]
    Unavailable(String),
    /// Stripe refused the request (4xx); retrying the same request will not help.
    #[error("Stripe refused the request ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Stripe's error code, when it gave one.
        code: Option<String>,
        /// Stripe's message.
        message: String,
    },
    /// The answer was not what Stripe's reference says.
    #[error("unexpected answer from Stripe: {0}")]
    Decode(String),
}

impl StripeError {
    /// Whether a later retry may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, StripeError::Unavailable(_))
    }
}

/// The fields of a Stripe object this client reads.
#[derive(Debug, Clone, Deserialize)]
pub struct StripeObject {
    /// `cus_…`, `ii_…`, `in_…`.
    pub id: String,
    /// An invoice's status (`draft`, `open`, `paid`, `void`, `uncollectible`).
    #[serde(default)]
    pub status: Option<String>,
    /// An invoice's total in minor units.
    #[serde(default)]
    pub total: Option<i64>,
}

/// A page of a Stripe list (`{"data": [...]}`).
#[derive(Debug, Clone, Deserialize)]
pub struct StripeList {
    /// The objects.
    #[serde(default)]
    pub data: Vec<ListItem>,
}

/// An object in a list: its metadata is what this client reads.
#[derive(Debug, Clone, Deserialize)]
pub struct ListItem {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Metadata.
    #[serde(default)]
    pub metadata: std::collections::HashMap<String, String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// A Stripe account, by its secret key.
#[derive(Debug, Clone)]
pub struct Stripe {
    http: reqwest::Client,
    base: String,
    key: Secret<String>,
}

/// Longest one Stripe call may take.
const TIMEOUT: Duration = Duration::from_secs(20);

impl Stripe {
    /// A client for the account of `key` at `base` (`https://api.stripe.com`).
    pub fn new(base: &str, key: Secret<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client for Stripe");
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
        }
    }

    /// Whether the key is a test-mode key (`sk_test_…`): only then are customers given
    /// Stripe's test card, so that invoices can be paid.
    pub fn test_mode(&self) -> bool {
        self.key.expose().starts_with("sk_test_")
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, StripeError> {
        let resp = req
            .bearer_auth(self.key.expose())
            .header("Stripe-Version", "2024-06-20")
            .send()
            .await
            .map_err(|e| StripeError::Unavailable(without_url(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| StripeError::Unavailable(without_url(&e)))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body).map_err(|e| StripeError::Decode(e.to_string()));
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(b) => (b.error.code, b.error.message.unwrap_or_default()),
            Err(_) => (None, String::from_utf8_lossy(&body).chars().take(200).collect()),
        };
        match status {
            409 | 429 | 500.. => Err(StripeError::Unavailable(format!("HTTP {status}: {message}"))),
            _ => Err(StripeError::Refused {
                status,
                code,
                message,
            }),
        }
    }

    /// `POST {path}` with a form body and an idempotency key.
    pub async fn post(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<StripeObject, StripeError> {
        // Built in a block: the serializer is not `Send` and must not live across the await.
        let body = {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                s.append_pair(k, v);
            }
            s.finish()
        };
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Idempotency-Key", idempotency_key)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// `GET {path}`.
    pub async fn get(&self, path: &str) -> Result<StripeObject, StripeError> {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    /// `GET {path}` of a list.
    pub async fn list(&self, path: &str) -> Result<StripeList, StripeError> {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }
}

/// A transport error without the URL (which is ours and dull) or anything secret.
fn without_url(e: &reqwest::Error) -> String {
    let kind = match () {
        _ if e.is_timeout() => "timed out",
        _ if e.is_connect() => "could not connect",
        _ => "request failed",
    };
    kind.to_owned()
}
