//! Issuing access tokens.

use crate::error::ApiError;
use crate::state::AppState;
use docket_platform::identity::jwt::{self, Audience, Claims};
use serde::Serialize;
use uuid::Uuid;

/// The token response of login and refresh.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// JWT.
    pub access_token: String,
    /// Opaque refresh token (absent for operators).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// Signs an access token for `sub` in `audience` (tenant users carry tenant and role).
pub async fn issue(
    state: &AppState,
    audience: Audience,
    sub: Uuid,
    tenant_and_role: Option<(Uuid, &str)>,
    refresh_token: Option<String>,
) -> Result<TokenResponse, ApiError> {
    let ttl = state.config.auth.access_token_ttl.as_secs();
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        iss: "docket".into(),
        aud: audience.as_str().into(),
        sub,
        tid: tenant_and_role.map(|(t, _)| t),
        role: tenant_and_role.map(|(_, r)| r.to_owned()),
        iat: now,
        exp: now + ttl as i64,
        jti: Uuid::new_v4(),
    };
    let (kid, key) = state.keys.signer().await.map_err(ApiError::internal)?;
    Ok(TokenResponse {
        access_token: jwt::sign(&kid, &key, &claims),
        refresh_token,
        token_type: "Bearer",
        expires_in: ttl,
    })
}
