//! What an audit event says.

use crate::ids::{ApiKeyId, OperatorId, UserId};
use serde_json::Value;
use std::net::IpAddr;

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The action was allowed and done.
    Allowed,
    /// A rule refused it (the rule goes in `reason`).
    Refused,
    /// It was attempted and failed.
    Failed,
}

impl Outcome {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// Who acted. Ids of people are pseudonymized before they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A tenant user.
    User(UserId),
    /// A tenant API key.
    ApiKey(ApiKeyId),
    /// A platform operator.
    Operator(OperatorId),
    /// Someone not (yet) authenticated.
    Anonymous,
    /// Docket itself (jobs, scheduler).
    System,
}

impl Actor {
    /// The actor a job's `user:{id}` / `api_key:{id}` label names.
    pub fn parse_label(label: &str) -> Option<Self> {
        let (kind, id) = label.split_once(':')?;
        let id = uuid::Uuid::try_parse(id).ok()?;
        match kind {
            "user" => Some(Actor::User(UserId(id))),
            "api_key" => Some(Actor::ApiKey(ApiKeyId(id))),
            _ => None,
        }
    }

    /// Stored kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::ApiKey(_) => "api_key",
            Actor::Operator(_) => "operator",
            Actor::Anonymous => "anonymous",
            Actor::System => "system",
        }
    }

    /// The raw identifier that gets pseudonymized (`None` for anonymous/system).
    pub fn raw_id(&self) -> Option<String> {
        match self {
            Actor::User(id) => Some(format!("user:{id}")),
            Actor::ApiKey(id) => Some(format!("api_key:{id}")),
            Actor::Operator(id) => Some(format!("operator:{id}")),
            Actor::Anonymous | Actor::System => None,
        }
    }
}

/// One event to append.
#[derive(Debug, Clone)]
pub struct Event {
    /// e.g. `auth.login`, `users.create`, `authz.denied`.
    pub action: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Who.
    pub actor: Actor,
    /// What it was done to (ids only, never personal data), e.g. `user:…`.
    pub target: Option<String>,
    /// The rule or reason (machine-readable code), e.g. `invalid_signature`.
    pub reason: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
    /// Extra facts (no secrets, no personal data in clear).
    pub details: Value,
    /// Client address; stored pseudonymized.
    pub ip: Option<IpAddr>,
}

impl Event {
    /// A new event with empty details.
    pub fn new(action: impl Into<String>, outcome: Outcome, actor: Actor) -> Self {
        Self {
            action: action.into(),
            outcome,
            actor,
            target: None,
            reason: None,
            request_id: None,
            details: Value::Object(Default::default()),
            ip: None,
        }
    }

    /// Sets the target.
    pub fn target(mut self, t: impl Into<String>) -> Self {
        self.target = Some(t.into());
        self
    }

    /// Sets the reason.
    pub fn reason(mut self, r: impl Into<String>) -> Self {
        self.reason = Some(r.into());
        self
    }

    /// Sets the request id.
    pub fn request_id(mut self, r: Option<String>) -> Self {
        self.request_id = r;
        self
    }

    /// Adds a detail.
    pub fn detail(mut self, k: &str, v: impl Into<Value>) -> Self {
        if let Value::Object(m) = &mut self.details {
            m.insert(k.to_owned(), v.into());
        }
        self
    }

    /// Sets the client address.
    pub fn ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }
}
