//! One router per resource.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod documents;
pub mod health;
pub mod me;
pub mod ops;
pub mod ops_limits;
pub mod policy;
pub mod queries;
pub mod switches;
pub mod usage;
pub mod users;

use crate::error::ApiError;

/// Parses a path id; anything unparsable is simply not found (no oracle, no 500).
pub fn parse_id(s: &str, what: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::try_parse(s).map_err(|_| ApiError::not_found(what))
}
