//! A client of any OpenAI-compatible chat endpoint (`POST /v1/chat/completions`): the one
//! place the language-model provider is named. Bounded everywhere: a per-process limit on
//! requests in flight, one deadline per question that covers waiting for a permit and
//! every retry, and retries only for what a retry can fix (connection failures, 429, 5xx).
//! Every failure has a machine-readable code the answer reports in its notices.

use crate::config::LlmConfig;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Largest response body read from the endpoint.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `system` or `user`.
    pub role: &'static str,
    /// Its text.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: "system",
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user",
            content: content.into(),
        }
    }
}

/// What the model wrote, with the token counts it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The assistant's message.
    pub text: String,
    /// Prompt tokens (the endpoint's count).
    pub tokens_in: u32,
    /// Completion tokens (the endpoint's count).
    pub tokens_out: u32,
    /// Why it stopped (`stop`, `length`, …).
    pub finish_reason: Option<String>,
    /// Whether the endpoint reported its token counts (some OpenAI-compatible servers do
    /// not; the caller then estimates them).
    pub usage_reported: bool,
}

impl Completion {
    /// Whether the model was cut off by the token limit (its last sentence is unfinished).
    pub fn truncated(&self) -> bool {
        self.finish_reason.as_deref() == Some("length")
    }
}

/// Why no completion came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// No connection could be made (or it broke before an answer).
    #[error("the language model could not be reached: {0}")]
    Unreachable(String),
    /// The deadline passed (waiting for a permit, the request, or retries).
    #[error("the language model did not answer within {0:?}")]
    Timeout(Duration),
    /// The endpoint refused the key.
    #[error("the language model refused the configured API key (HTTP {0})")]
    Unauthorized(u16),
    /// Too many requests, still after the retries.
    #[error("the language model is rate limiting requests")]
    RateLimited,
    /// The prompt does not fit the model's context.
    #[error("the prompt does not fit the language model's context: {0}")]
    ContextTooLong(String),
    /// Any other error status.
    #[error("the language model answered HTTP {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The endpoint's error message.
        message: String,
    },
    /// Every permit is taken and as many questions already wait for one: answered
    /// extractively at once instead of holding an answer slot (extractive questions of
    /// every tenant share those slots).
    #[error("the language model is busy with other questions")]
    Busy,
    /// A 200 whose body is not a chat completion, or one without text.
    #[error("the language model's response could not be read: {0}")]
    BadResponse(String),
}

impl LlmError {
    /// Machine-readable code (reported in the answer's notices and counted in `/metrics`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "generator_unreachable",
            Self::Timeout(_) => "generator_timeout",
            Self::Unauthorized(_) => "generator_unauthorized",
            Self::RateLimited => "generator_rate_limited",
            Self::ContextTooLong(_) => "generator_context_too_long",
            Self::Status { .. } => "generator_error",
            Self::BadResponse(_) => "generator_bad_response",
            Self::Busy => "generator_busy",
        }
    }

    /// What a tenant may read about it: the code's meaning, without the endpoint's own
    /// words (they can name the provider's internals, or be a proxy's HTML page).
    pub fn public_message(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "the language model could not be reached",
            Self::Timeout(_) => "the language model did not answer in time",
            Self::Unauthorized(_) => "the language model refused the configured API key",
            Self::RateLimited => "the language model is rate limiting requests",
            Self::ContextTooLong(_) => "the passages do not fit the language model's context",
            Self::Status { .. } => "the language model answered with an error",
            Self::BadResponse(_) => "the language model's response could not be read",
            Self::Busy => "the language model is busy with other questions",
        }
    }

    /// Whether another attempt could succeed.
    fn retryable(&self) -> bool {
        match self {
            Self::Unreachable(_) | Self::RateLimited => true,
            Self::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// The client (cheap to clone; one per worker process shares its permits).
#[derive(Debug, Clone)]
pub struct Llm {
    http: reqwest::Client,
    config: LlmConfig,
    permits: Arc<Semaphore>,
    /// Questions waiting for a permit (at most as many as there are permits).
    waiting: Arc<AtomicUsize>,
}

/// Counts a question as waiting for a permit until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    messages: &'a [Message],
    max_tokens: u32,
    // Answers are read, not enjoyed: the most likely words, the same for the same input.
    temperature: f32,
    stream: bool,
}

#[derive(Deserialize)]
struct Response {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

/// OpenAI's error body: `{"error": {"message", "type", "code"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

impl Llm {
    /// A client for `config`.
    pub fn new(config: LlmConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // A redirect would resend the tenant's passages somewhere not configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            // Only fails when no TLS backend can start: the worker cannot work anyway, and
            // a default client would follow redirects.
            .expect("an HTTP client for the language model");
        Self {
            permits: Arc::new(Semaphore::new(config.concurrency)),
            waiting: Arc::new(AtomicUsize::new(0)),
            http,
            config,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// Asks the model; one deadline covers the wait for a permit and every attempt: the
    /// configured timeout, or `by` if that comes first (the caller's own deadline).
    pub async fn complete(&self, messages: &[Message], by: Option<Instant>) -> Result<Completion, LlmError> {
        let own = Instant::now() + self.config.timeout;
        let deadline = by.map_or(own, |b| b.min(own));
        let timeout = deadline.saturating_duration_since(Instant::now());
        let _permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // A generative answer holds one of the worker's answer slots while it
                // waits: the queue for permits is as long as the permits, no longer.
                if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.config.concurrency {
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                    return Err(LlmError::Busy);
                }
                let _waiting = Waiting(&self.waiting);
                tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
                    .await
                    .map_err(|_| LlmError::Timeout(timeout))?
                    .map_err(|_| LlmError::Unreachable("the client is shut down".into()))?
            }
        };
        let mut attempt = 0;
        loop {
            let result = tokio::time::timeout_at(deadline, self.once(messages))
                .await
                .unwrap_or(Err(LlmError::Timeout(timeout)));
            match result {
                Err(e) if e.retryable() && attempt < self.config.retries => {
                    attempt += 1;
                    // Short and growing: the whole question has one deadline anyway.
                    let pause = Duration::from_millis(250 * u64::from(attempt));
                    if Instant::now() + pause >= deadline {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, attempt, "language model request failed; retrying");
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }

    async fn once(&self, messages: &[Message]) -> Result<Completion, LlmError> {
        let body = Request {
            model: &self.config.model,
            messages,
            max_tokens: self.config.max_tokens,
            temperature: 0.0,
            stream: false,
        };
        let mut req = self
            .http
            .post(format!("{}/v1/chat/completions", self.config.url))
            .json(&body);
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key.expose());
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| LlmError::Unreachable(describe(&e)))?;
        let status = resp.status().as_u16();
        // Read with a cap: a chat completion is a few KiB; a misbehaving endpoint must not
        // fill the worker's memory.
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| LlmError::Unreachable(describe(&e)))?
        {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(LlmError::BadResponse(format!(
                    "larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if status != 200 {
            return Err(classify(status, &bytes));
        }
        let r: Response = serde_json::from_slice(&bytes).map_err(|e| LlmError::BadResponse(e.to_string()))?;
        let choice = r
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| LlmError::BadResponse("no choices".into()))?;
        let text = choice
            .message
            .content
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| LlmError::BadResponse("an empty message".into()))?;
        let usage_reported = r.usage.is_some();
        let usage = r.usage.unwrap_or(Usage {
            prompt_tokens: 0,
            completion_tokens: 0,
        });
        Ok(Completion {
            text,
            tokens_in: usage.prompt_tokens,
            tokens_out: usage.completion_tokens,
            finish_reason: choice.finish_reason,
            usage_reported,
        })
    }
}

/// A transport error without the URL (it may carry credentials in a query string).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "connection refused or unreachable"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "the response broke off"
    } else {
        "request failed"
    };
    what.to_owned()
}

/// An error status and body as an [`LlmError`].
fn classify(status: u16, body: &[u8]) -> LlmError {
    let detail = serde_json::from_slice::<ErrorBody>(body).ok().map(|b| b.error);
    let message = detail
        .as_ref()
        .map(|d| d.message.clone())
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    let names = |needle: &str| {
        detail.as_ref().is_some_and(|d| {
            d.kind.as_deref().is_some_and(|k| k.contains(needle))
                || d.code
                    .as_ref()
                    .and_then(|c| c.as_str())
                    .is_some_and(|c| c.contains(needle))
        })
    };
    match status {
        401 | 403 => LlmError::Unauthorized(status),
        429 => LlmError::RateLimited,
        // OpenAI: 400 `context_length_exceeded`; llama.cpp: 400 `exceed_context_size_error`.
        400 if names("context") => LlmError::ContextTooLong(message),
        _ => LlmError::Status { status, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_classified_by_status_and_type() {
        let ctx = br#"{"error":{"code":400,"message":"request (9000 tokens) exceeds the available context size","type":"exceed_context_size_error"}}"#;
        assert_eq!(classify(400, ctx).code(), "generator_context_too_long");
        let openai = br#"{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
        assert_eq!(classify(400, openai).code(), "generator_context_too_long");
        assert_eq!(classify(401, b"{}").code(), "generator_unauthorized");
        assert_eq!(classify(429, b"").code(), "generator_rate_limited");
        let e = classify(503, b"<html>busy</html>");
        assert_eq!(e.code(), "generator_error");
        assert!(e.retryable(), "a 5xx is worth another attempt");
        assert!(!classify(400, b"{}").retryable(), "a bad request stays bad");
    }

    #[test]
    fn every_error_code_is_one_metrics_reports() {
        let all = [
            LlmError::Unreachable(String::new()),
            LlmError::Timeout(Duration::ZERO),
            LlmError::Unauthorized(401),
            LlmError::RateLimited,
            LlmError::ContextTooLong(String::new()),
            LlmError::Status {
                status: 500,
                message: String::new(),
            },
            LlmError::BadResponse(String::new()),
            LlmError::Busy,
        ];
        for e in all {
            assert!(crate::queries::FALLBACK_CODES.contains(&e.code()), "{}", e.code());
            assert!(!e.public_message().is_empty());
        }
    }
}
