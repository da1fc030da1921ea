//! The report as a PDF a compliance officer files: what was reviewed, the signature that
//! makes the JSON the authoritative copy, the findings to decide, then every user, key,
//! membership change, administrative action and operator action of the quarter. Rendered
//! when asked for, with the users' addresses as they are then (the signed report holds
//! ids only, so an erased user shows as erased).

use super::report::Report;
use crate::pdf::{Flow, PdfError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;

/// Names accounts for people: users by address, keys by name.
struct Names<'a> {
    addresses: &'a HashMap<Uuid, String>,
    keys: HashMap<Uuid, &'a str>,
}

impl Names<'_> {
    /// `user:{id}` → its address, `api_key:{id}` → `API key {name}`; anything else as is.
    fn of(&self, account: &str) -> String {
        let parsed = account
            .split_once(':')
            .and_then(|(k, id)| Some((k, Uuid::parse_str(id).ok()?)));
        match parsed {
            Some(("user", id)) => self.user(id),
            Some(("api_key", id)) => match self.keys.get(&id) {
                Some(n) => format!("API key {n}"),
                None => account.to_owned(),
            },
            _ => account.to_owned(),
        }
    }

    fn user(&self, id: Uuid) -> String {
        self.addresses
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("user {id}"))
    }
}

fn day(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "-".into())
}

/// Renders `r`, naming the key that signed it and the signed document's SHA-256, with
/// `addresses` (user id → address) for the people it names.
pub fn render(
    r: &Report,
    kid: &str,
    report_sha256: &str,
    addresses: &HashMap<Uuid, String>,
) -> Result<Vec<u8>, PdfError> {
    let names = Names {
        addresses,
        keys: r.api_keys.iter().map(|k| (k.id, k.name.as_str())).collect(),
    };
    let mut f = Flow::new();
    f.title(&format!("Access review {}", r.quarter));
    f.line(
        50.0,
        &format!("Organisation: {} ({})", r.tenant.name, r.tenant.slug),
    );
    f.line(
        50.0,
        &format!(
            "Period: {} to {} (UTC, end exclusive)",
            r.period_start.format("%Y-%m-%d"),
            r.period_end.format("%Y-%m-%d")
        ),
    );
    f.line(
        50.0,
        &format!("Generated: {}", r.generated_at.format("%Y-%m-%d %H:%M UTC")),
    );
    f.line(50.0, &format!("Review id: {}", r.review_id));
    f.line(50.0, &format!("Signed report SHA-256: {report_sha256}"));
    f.line(
        50.0,
        &format!("Signed with platform key {kid}; the signed JSON is the authoritative copy."),
    );
    f.line(
        50.0,
        &format!(
            "{} users, {} API keys, {} audit events in the quarter, {} findings to decide.",
            r.users.len(),
            r.api_keys.len(),
            r.events_in_quarter,
            r.findings.len()
        ),
    );

    f.heading(&format!("Findings ({})", r.findings.len()));
    if r.findings.is_empty() {
        f.line(50.0, "Nothing flagged.");
    }
    f.row(true, &[(50.0, "Kind"), (160.0, "Account"), (340.0, "Why")]);
    for x in &r.findings {
        let kind = serde_json::to_value(x.kind)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
            .unwrap_or_default();
        f.row(
            false,
            &[(50.0, &kind), (160.0, &names.of(&x.subject)), (340.0, &x.detail)],
        );
    }

    f.heading(&format!("Users ({})", r.users.len()));
    f.row(
        true,
        &[
            (50.0, "Address"),
            (265.0, "Role"),
            (305.0, "Status"),
            (345.0, "Last sign-in"),
            (410.0, "Sign-ins"),
            (452.0, "Failed"),
            (485.0, "Flags"),
        ],
    );
    for u in &r.users {
        let flags = [(u.privileged, "privileged"), (u.dormant, "dormant")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
            .join(", ");
        f.row(
            false,
            &[
                (50.0, &names.user(u.id)),
                (265.0, &u.role),
                (305.0, &u.status),
                (345.0, &day(u.last_sign_in)),
                (410.0, &u.sign_ins.to_string()),
                (452.0, &u.failed_sign_ins.to_string()),
                (485.0, &flags),
            ],
        );
    }

    f.heading(&format!("Membership changes ({})", r.membership_changes.len()));
    for c in &r.membership_changes {
        let after = [c.role.as_deref(), c.status.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        f.line(
            50.0,
            &format!(
                "{}  {} {} by {} -> {}",
                c.at.format("%Y-%m-%d %H:%M"),
                c.action,
                c.target.as_deref().map(|t| names.of(t)).unwrap_or_default(),
                names.of(&c.by),
                after
            ),
        );
    }

    f.heading(&format!("API keys ({})", r.api_keys.len()));
    f.row(
        true,
        &[
            (50.0, "Name"),
            (140.0, "Role"),
            (180.0, "Made by"),
            (330.0, "Made"),
            (380.0, "Expires"),
            (430.0, "Last used"),
            (485.0, "State"),
        ],
    );
    for k in &r.api_keys {
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else if k.expired {
            "expired"
        } else if k.never_used {
            "unused"
        } else {
            "in use"
        };
        f.row(
            false,
            &[
                (50.0, &k.name),
                (140.0, &k.role),
                (180.0, &k.created_by.map(|u| names.user(u)).unwrap_or_default()),
                (330.0, &day(Some(k.created_at))),
                (380.0, &day(k.expires_at)),
                (430.0, &day(k.last_used_at)),
                (485.0, state),
            ],
        );
    }

    f.heading(&format!("Administrative actions ({})", r.admin_actions.len()));
    for a in &r.admin_actions {
        f.line(
            50.0,
            &format!(
                "{}: {} x{} (last {})",
                names.of(&a.actor),
                a.action,
                a.count,
                a.last_at.format("%Y-%m-%d")
            ),
        );
    }

    f.heading(&format!(
        "Operator actions on the organisation ({})",
        r.operator_actions.len()
    ));
    for o in &r.operator_actions {
        f.line(
            50.0,
            &format!(
                "{}  {} {} ({}){}",
                o.at.format("%Y-%m-%d %H:%M"),
                o.action,
                o.target.as_deref().unwrap_or(""),
                o.outcome,
                o.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            ),
        );
    }
    f.gap(12.0);
    f.line(
        50.0,
        "Findings are decided in Docket (keep with a reason, or revoke); the review is complete when an owner closes it.",
    );
    f.finish()
}
