//! The access-review report as signed (`docket-access-review/1`): what it holds about each
//! account and event, and the findings an owner decides. Built by [`super::report`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The reviewed tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = AccessReviewTenant)]
pub struct TenantRef {
    /// Id.
    pub id: Uuid,
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
}

/// A user as of the report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = AccessReviewUser)]
pub struct UserLine {
    /// User id.
    pub id: Uuid,
    /// Current role.
    pub role: String,
    /// `active` or `disabled`.
    pub status: String,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
    /// Last successful sign-in before the quarter's end (any time).
    pub last_sign_in: Option<DateTime<Utc>>,
    /// Successful sign-ins in the quarter.
    pub sign_ins: i64,
    /// Refused sign-ins in the quarter, as recorded (repeats within a lockout window are
    /// recorded once).
    pub failed_sign_ins: i64,
    /// Active owner or admin.
    pub privileged: bool,
    /// Active, older than [`DORMANT_DAYS`](super::report::DORMANT_DAYS) and no sign-in in the last [`DORMANT_DAYS`](super::report::DORMANT_DAYS).
    pub dormant: bool,
}

/// A membership change in the quarter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = AccessReviewMembershipChange)]
pub struct Change {
    /// Audit sequence number.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// `users.create`, `users.update`, `users.disable`, `users.erase`.
    pub action: String,
    /// The user changed (`user:{id}`).
    pub target: Option<String>,
    /// Who changed it (`user:{id}`, `api_key:{id}`, or the actor's kind and pseudonym).
    pub by: String,
    /// The role after the change.
    pub role: Option<String>,
    /// The status after the change.
    pub status: Option<String>,
}

/// An API key as of the report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = AccessReviewApiKey)]
pub struct KeyLine {
    /// Key id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// The user who made it.
    pub created_by: Option<Uuid>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Present and never used.
    pub never_used: bool,
    /// Expired but not revoked.
    pub expired: bool,
}

/// Administrative actions of one actor in the quarter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = AccessReviewActionCount)]
pub struct ActionCount {
    /// Who (`user:{id}`, `api_key:{id}`).
    pub actor: String,
    /// What.
    pub action: String,
    /// How often.
    pub count: i64,
    /// Last time.
    pub last_at: DateTime<Utc>,
}

/// An operator's action on the tenant in the quarter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = AccessReviewOperatorAction)]
pub struct OperatorAction {
    /// Audit sequence number.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// `allowed`, `refused`, `failed`.
    pub outcome: String,
    /// The operator's reason, when given.
    pub reason: Option<String>,
}

/// What an owner must decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AccessReviewFindingKind)]
pub enum FindingKind {
    /// An active account nobody signed in with for [`DORMANT_DAYS`](super::report::DORMANT_DAYS).
    DormantUser,
    /// An active owner or admin.
    PrivilegedUser,
    /// A present key never used.
    NeverUsedKey,
    /// A key past its expiry but never revoked.
    ExpiredKey,
}

/// One flagged finding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = AccessReviewFinding)]
pub struct Finding {
    /// Stable within the review: `{subject}:{kind}`.
    pub id: String,
    /// What kind.
    pub kind: FindingKind,
    /// `user:{id}` or `api_key:{id}`: what a revocation disables.
    pub subject: String,
    /// The key's name (`None` for a user: the address is added when read).
    pub label: Option<String>,
    /// Why it is flagged, in a sentence.
    pub detail: String,
}

/// The report (signed as issued).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = AccessReviewReport)]
pub struct Report {
    /// [`super::FORMAT`].
    pub format: String,
    /// The review.
    pub review_id: Uuid,
    /// The tenant.
    pub tenant: TenantRef,
    /// `YYYYQn`.
    pub quarter: String,
    /// First instant reviewed.
    pub period_start: DateTime<Utc>,
    /// First instant after it.
    pub period_end: DateTime<Utc>,
    /// When the report was built.
    pub generated_at: DateTime<Utc>,
    /// [`DORMANT_DAYS`](super::report::DORMANT_DAYS).
    pub dormant_after_days: i64,
    /// Audit events of the quarter read.
    pub events_in_quarter: i64,
    /// Every user made before the quarter's end.
    pub users: Vec<UserLine>,
    /// Membership changes in the quarter, in order.
    pub membership_changes: Vec<Change>,
    /// Every API key made before the quarter's end.
    pub api_keys: Vec<KeyLine>,
    /// Administrative actions in the quarter, per actor and action.
    pub admin_actions: Vec<ActionCount>,
    /// Operators' actions on the tenant in the quarter, in order.
    pub operator_actions: Vec<OperatorAction>,
    /// What an owner must keep or revoke.
    pub findings: Vec<Finding>,
}
