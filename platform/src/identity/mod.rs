//! Identity: passwords, access tokens and their signing keys, refresh tokens, API keys,
//! users, operators (and their panel sessions) and the failed-login throttle.

pub mod api_keys;
pub mod credential;
pub mod jwt;
pub mod keyring;
pub mod operator_sessions;
pub mod operators;
pub mod password;
pub mod refresh;
pub mod throttle;
pub mod users;
