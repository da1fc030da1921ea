//! JSON request bodies. A malformed body, a wrong content type, unknown or missing fields
//! answer 400/415 in the standard error format (not axum's plain text), and the rejection is
//! audited: probing the API with bad bodies leaves a trace. Strings holding NUL or other
//! control characters are refused (400 `invalid_text`) before any handler sees them.

use crate::auth::RequestCtx;
use crate::auth::refusal::Refusal;
use crate::edge;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Whether any string (or object key) in `v` holds text the edge refuses: checked on the
/// parsed value, so every field of every body is covered whatever its type.
fn holds_forbidden_text(v: &Value) -> bool {
    match v {
        Value::String(s) => edge::has_forbidden_char(s),
        Value::Array(a) => a.iter().any(holds_forbidden_text),
        Value::Object(o) => o
            .iter()
            .any(|(k, v)| edge::has_forbidden_char(k) || holds_forbidden_text(v)),
        _ => false,
    }
}

/// JSON has one number type, and JSON Schema counts `404.0` as the integer 404: numbers
/// with no fractional part become integers before `T` reads them, so an integer field takes
/// either spelling (serde would refuse `404.0` for a `u32`).
fn integral_floats_as_integers(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.007_199_254_740_992e15
            {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(o) => o.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// For an optional field that may be left out but not sent as `null` (`#[serde(default,
/// deserialize_with = "crate::json::present")]`): `null` is refused like any wrong type, so
/// the contract's "not nullable" holds.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A JSON body of type `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let ctx = RequestCtx::from_parts(&parts);
        let parsed = Json::<Value>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(ApiError::from)
            .and_then(|Json(mut v)| match holds_forbidden_text(&v) {
                true => Err(edge::invalid_text("body")),
                false => {
                    integral_floats_as_integers(&mut v);
                    serde_json::from_value::<T>(v)
                        .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))
                }
            });
        match parsed {
            Ok(v) => Ok(ApiJson(v)),
            Err(e) => Err(Refusal::new(e.status, e.code, e.message)
                .action("request.body")
                .record(state, &ctx)
                .await),
        }
    }
}

/// Parses a JSON body read by hand (an endpoint that sniffs its content type first) under
/// the same rules as [`ApiJson`]: invalid JSON, refused text and a wrong shape are 400s.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}")))?;
    if holds_forbidden_text(&v) {
        return Err(edge::invalid_text("body"));
    }
    integral_floats_as_integers(&mut v);
    serde_json::from_value(v).map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))
}
