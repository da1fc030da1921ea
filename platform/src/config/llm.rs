//! The language model behind generative answers (`DOCKET_LLM_*`): any OpenAI-compatible
//! `POST /v1/chat/completions` endpoint. Without `DOCKET_LLM_URL` no model is configured
//! and generative questions are refused with 503 `generator_unavailable`.

use super::Reader;
use crate::secret::Secret;
use std::time::Duration;

/// Where and how generative answers are written.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Base URL (`DOCKET_LLM_URL`), without the `/v1` suffix (a trailing `/v1` is
    /// accepted and dropped): `https://api.example.com`, or `http://127.0.0.1:PORT` for a
    /// model server on this machine.
    pub url: String,
    /// The model name sent with every request (`DOCKET_LLM_MODEL`).
    pub model: String,
    /// Bearer key (`DOCKET_LLM_API_KEY[_FILE]`), if the endpoint needs one.
    pub api_key: Option<Secret<String>>,
    /// Longest one question may wait for the model, retries and queueing for a permit
    /// included (`DOCKET_LLM_TIMEOUT_SECS`, default 30; at most 45 so the answer job's
    /// 60 s attempt always has time left to fall back).
    pub timeout: Duration,
    /// Retries after a connection failure, a 429 or a 5xx (`DOCKET_LLM_RETRIES`, 0–3,
    /// default 1). A 4xx other than 429 is never retried.
    pub retries: u32,
    /// Requests to the model one worker process has in flight at once
    /// (`DOCKET_LLM_CONCURRENCY`, 1–6, default 2). As many more questions may wait for a
    /// permit; past that they are answered extractively at once (`generator_busy`), so
    /// generative questions never hold more than 12 of a worker's 16 answer slots.
    pub concurrency: usize,
    /// Most tokens the model may write per answer (`DOCKET_LLM_MAX_TOKENS`, default 256).
    pub max_tokens: u32,
    /// Most retrieved passages put in the prompt (`DOCKET_LLM_MAX_PASSAGES`, default 4).
    pub max_passages: usize,
}

impl Reader<'_> {
    /// The `DOCKET_LLM_*` variables; `None` without `DOCKET_LLM_URL`.
    pub(super) fn llm(&mut self) -> Option<LlmConfig> {
        let raw = self.raw("DOCKET_LLM_URL")?;
        let url = raw.trim_end_matches('/').trim_end_matches("/v1").to_owned();
        // Parsed, not prefix-matched: `http://127.0.0.1:1@elsewhere` names another host.
        let acceptable = url::Url::parse(&url).is_ok_and(|u| {
            let loopback = matches!(
                u.host(),
                Some(url::Host::Ipv4(ip)) if ip.is_loopback()
            ) || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                || u.host_str() == Some("localhost");
            u.username().is_empty()
                && u.password().is_none()
                && (u.scheme() == "https" || (u.scheme() == "http" && loopback))
        });
        if !acceptable {
            // Questions and the tenant's passages travel to this endpoint: never in clear
            // text over a network.
            self.fail(
                "DOCKET_LLM_URL",
                "must be an https:// URL (or http://127.0.0.1:PORT for a model server on this machine)",
            );
        }
        let model = self.raw("DOCKET_LLM_MODEL").unwrap_or_else(|| {
            self.fail("DOCKET_LLM_MODEL", "is required when DOCKET_LLM_URL is set");
            String::new()
        });
        Some(LlmConfig {
            url,
            model,
            api_key: self.secret("DOCKET_LLM_API_KEY"),
            timeout: Duration::from_secs(self.ranged("DOCKET_LLM_TIMEOUT_SECS", 30, 1, 45)),
            retries: self.ranged("DOCKET_LLM_RETRIES", 1, 0, 3) as u32,
            concurrency: self.ranged("DOCKET_LLM_CONCURRENCY", 2, 1, 6) as usize,
            max_tokens: self.ranged("DOCKET_LLM_MAX_TOKENS", 256, 16, 4096) as u32,
            max_passages: self.ranged("DOCKET_LLM_MAX_PASSAGES", 4, 1, 20) as usize,
        })
    }
}
