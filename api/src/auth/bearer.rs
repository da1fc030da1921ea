//! The `Authorization: Bearer …` header.

use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

/// What is wrong with the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// No header.
    Missing,
    /// Not `Bearer <token>` with a plausible token.
    Malformed,
}

/// The bearer token, or why there is none.
pub fn bearer(parts: &Parts) -> Result<&str, BearerError> {
    let value = parts.headers.get(AUTHORIZATION).ok_or(BearerError::Missing)?;
    let value = value.to_str().map_err(|_| BearerError::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(BearerError::Malformed)?;
    let token = token.trim();
    let plausible = !token.is_empty() && token.len() <= 4096 && token.bytes().all(|b| b.is_ascii_graphic());
    if !scheme.eq_ignore_ascii_case("bearer") || !plausible {
        return Err(BearerError::Malformed);
    }
    Ok(token)
}
