//! Authentication and authorization of requests.

pub mod bearer;
pub mod context;
pub mod govern;
pub mod operator;
pub mod preauth;
pub mod refusal;
pub mod tenant;
pub mod tokens;

pub use context::RequestCtx;
pub use govern::{Gate, Governed};
pub use operator::OperatorAuth;
pub use tenant::{Principal, TenantAuth, TenantAuthDuringDeletion};
