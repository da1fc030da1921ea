//! The operator principal extractor for `/ops`: operator tokens only.

use super::bearer::{BearerError, bearer};
use super::context::RequestCtx;
use super::refusal::Refusal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::identity::credential;
use docket_platform::identity::jwt::{self, Audience};
use docket_platform::identity::operators;
use docket_platform::ids::OperatorId;

/// An authenticated operator.
#[derive(Debug, Clone)]
pub struct OperatorAuth {
    /// Who.
    pub operator: OperatorId,
    /// Request id and address.
    pub ctx: RequestCtx,
}

impl OperatorAuth {
    /// An audit event by this operator, stamped with the request.
    pub fn event(&self, action: &str, outcome: Outcome) -> Event {
        self.ctx
            .stamp(Event::new(action, outcome, Actor::Operator(self.operator)))
    }
}

fn unauthorized(code: &'static str, message: &str) -> Refusal {
    Refusal::new(StatusCode::UNAUTHORIZED, code, message).action("ops.authenticate")
}

impl FromRequestParts<AppState> for OperatorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ctx = RequestCtx::from_parts(parts);
        let refusal = match bearer(parts) {
            Err(BearerError::Missing) => unauthorized(
                "missing_credentials",
                "send `Authorization: Bearer <operator token>`",
            ),
            Err(BearerError::Malformed) => unauthorized(
                "invalid_authorization_header",
                "the Authorization header must be `Bearer <operator token>`",
            ),
            Ok(t) if credential::looks_like_api_key(t) => unauthorized(
                "wrong_token_kind",
                "API keys are not accepted on operator endpoints",
            ),
            Ok(token) => {
                let verified = match jwt::header_kid(token) {
                    Ok(kid) => {
                        let lookup = state.keys.lookup(&kid).await;
                        jwt::verify(token, lookup, Audience::Operator, chrono::Utc::now().timestamp())
                    }
                    Err(e) => Err(e),
                };
                match verified {
                    Err(e) => unauthorized(e.code(), &e.to_string()),
                    Ok(claims) => {
                        let id = OperatorId(claims.sub);
                        match operators::is_active(&state.control, id).await {
                            Ok(true) => return Ok(OperatorAuth { operator: id, ctx }),
                            Ok(false) => {
                                unauthorized("operator_disabled", "this operator account is not active")
                                    .actor(Actor::Operator(id))
                            }
                            Err(e) => return Err(ApiError::internal(e)),
                        }
                    }
                }
            }
        };
        Err(refusal.record(state, &ctx).await)
    }
}
