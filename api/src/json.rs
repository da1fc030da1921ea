//! JSON request bodies. A malformed body, a wrong content type, unknown or missing fields
//! answer 400/415 in the standard error format (not axum's plain text), and the rejection is
//! audited: probing the API with bad bodies leaves a trace.

use crate::auth::RequestCtx;
use crate::auth::refusal::Refusal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

/// A JSON body of type `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let ctx = RequestCtx::from_parts(&parts);
        match Json::<T>::from_request(Request::from_parts(parts, body), state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => {
                let e = ApiError::from(rejection);
                Err(Refusal::new(e.status, e.code, e.message)
                    .action("request.body")
                    .record(state, &ctx)
                    .await)
            }
        }
    }
}
