//! Limits on endpoints anyone can call before authenticating (login, refresh, logout,
//! operator login): per client address and in total, in Redis like the tenants' limits,
//! checked before any database work or password hashing. A refusal is 429
//! `too_many_requests`, audited once per address and window. If Redis is unreachable the
//! request proceeds (logged and counted): the per-account login throttle in PostgreSQL
//! still holds, and signing in must not depend on the limiter.

use super::RequestCtx;
use super::refusal::Refusal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::StatusCode;
use docket_platform::ratelimit::{self, Limit};

/// Passes the request or refuses it with 429.
pub async fn admit(state: &AppState, ctx: &RequestCtx, action: &'static str) -> Result<(), ApiError> {
    let cfg = &state.config.auth;
    let address = ctx
        .ip
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into());
    let per_address = Limit {
        per_minute: cfg.preauth_per_minute,
        burst: cfg.preauth_burst,
    };
    let global = Limit {
        per_minute: cfg.preauth_per_minute.saturating_mul(50),
        burst: cfg.preauth_burst.saturating_mul(50),
    };
    let decided = async {
        let mine =
            ratelimit::check_key(&state.redis, &format!("preauth:addr:{address}"), per_address).await?;
        if !mine.allowed {
            return Ok::<_, docket_platform::redis_conn::RedisError>(Some(mine));
        }
        let all = ratelimit::check_key(&state.redis, "preauth:all", global).await?;
        Ok((!all.allowed).then_some(all))
    };
    match decided.await {
        Ok(None) => Ok(()),
        Ok(Some(d)) => {
            let msg = format!(
                "too many sign-in requests from this address or in total; retry in {} s",
                d.retry_after_secs
            );
            let window = format!("preauth-audited:{address}");
            let err = Refusal::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", msg)
                .action(action)
                .record_once(state, ctx, &window, d.retry_after_secs)
                .await;
            Err(err.with_retry_after(d.retry_after_secs))
        }
        Err(e) => {
            tracing::warn!(error = %e, "pre-authentication limiter unreachable; allowing");
            metrics::counter!("docket_rate_limiter_unavailable_total", "class" => "preauth").increment(1);
            Ok(())
        }
    }
}
