//! Authentication and authorization of requests.

pub mod bearer;
pub mod context;
pub mod operator;
pub mod refusal;
pub mod tenant;
pub mod tokens;

pub use context::RequestCtx;
pub use operator::OperatorAuth;
pub use tenant::{Principal, TenantAuth};
