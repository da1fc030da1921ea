//! The API's OpenAPI 3.1 contract, generated from the handlers: every route is registered
//! through `utoipa_axum`'s `routes!`, which takes the operation from the handler's
//! `#[utoipa::path]`, so a route cannot exist without its entry. Served at
//! `/openapi.json`, with Swagger UI at `/docs` (its assets come from the
//! `utoipa-swagger-ui-vendored` crate, so the page works offline). The committed copy in
//! `docs/openapi.json` is compared with the generated one by a test.

pub mod text_rule;

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_token` (listed per status in each
    /// operation's responses).
    pub code: String,
    /// A sentence a person understands.
    pub message: String,
}

/// The document's frame: title, security schemes, shared schemas, tags.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Docket API",
        description = "Multi-tenant contract question answering. Every error is `{\"error\": {\"code\", \"message\"}}`; each operation lists its statuses and their codes.",
        license(name = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Sign-in, tokens, keys"),
        (name = "tenant", description = "A tenant's own users, policy, consents, usage"),
        (name = "documents", description = "Upload, status, deletion"),
        (name = "imports", description = "Bulk imports"),
        (name = "queries", description = "Questions and cited answers"),
        (name = "billing", description = "Invoices and Stripe"),
        (name = "compliance", description = "Audit trail, exports, deletions, access reviews"),
        (name = "ops", description = "Operators (operator tokens only)")
    )
)]
pub struct ApiDoc;

/// The three credentials: a tenant's access token (JWT from `/v1/auth/login`), a tenant's
/// API key (`dk_…`), and an operator's access token (JWT from `/ops/auth/login`). All are
/// sent as `Authorization: Bearer …`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |format: Option<&str>, description: &str| {
            let mut h = Http::new(HttpAuthScheme::Bearer);
            h.bearer_format = format.map(str::to_owned);
            h.description = Some(description.to_owned());
            SecurityScheme::Http(h)
        };
        components.add_security_scheme(
            "tenant_token",
            bearer(
                Some("JWT"),
                "A tenant user's access token from `POST /v1/auth/login` (15 minutes).",
            ),
        );
        components.add_security_scheme(
            "api_key",
            bearer(
                Some("dk_…"),
                "A tenant API key from `POST /v1/api-keys`, sent as a bearer token.",
            ),
        );
        components.add_security_scheme(
            "operator_token",
            bearer(
                Some("JWT"),
                "An operator's access token from `POST /ops/auth/login`; accepted under `/ops` only.",
            ),
        );
    }
}

/// One error response: the status's meaning and the codes it carries, with [`ErrorBody`].
pub fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
        .into()
}

/// Who may call a path: decided in one place from the path, so every operation gets its
/// security requirement and the refusals the authentication layer can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// No credentials (health, sign-in, webhooks, links that carry their own secret).
    Anyone,
    /// A tenant's access token or API key.
    Tenant,
    /// An operator's access token.
    Operator,
}

/// Paths under `/v1` that take no tenant credential.
const PUBLIC: &[&str] = &[
    "/v1/auth/login",
    "/v1/auth/refresh",
    "/v1/auth/logout",
    "/v1/billing/stripe/webhook",
    "/v1/deletion-certificates/{id}",
    "/v1/exports/{id}/package",
];

fn caller(path: &str) -> Caller {
    if path == "/ops/auth/login" {
        Caller::Anyone
    } else if path.starts_with("/ops/") {
        Caller::Operator
    } else if path.starts_with("/v1/") && !PUBLIC.contains(&path) {
        Caller::Tenant
    } else {
        Caller::Anyone
    }
}

/// `get_v1_documents_id` for `GET /v1/documents/{id}`.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<String> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    format!("{method}_{}", words.join("_"))
}

/// Adds a response, or appends `codes` to the one the operation already declares.
fn merge(op: &mut Operation, status: &str, codes: &str) {
    match op.responses.responses.get_mut(status) {
        Some(RefOr::T(r)) => {
            r.description = format!("{}; also {codes}", r.description);
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            op.responses
                .responses
                .insert(status.to_owned(), error_response(codes));
        }
    }
}

const EDGE_400: &str = "`invalid_text` (a control character in the path or query string), `duplicate_authorization` (more than one Authorization header)";
const TENANT_401: &str = "credentials refused: `missing_credentials`, `invalid_authorization_header`, `invalid_token`, `unsupported_token_algorithm`, `unknown_signing_key`, `signing_key_retired`, `invalid_signature`, `token_expired`, `wrong_token_kind`, `invalid_api_key`, `api_key_revoked`, `api_key_expired`, `api_key_creator_disabled`, `user_disabled`, `tenant_deleted`";
const TENANT_403: &str =
    "`forbidden` (the role or key lacks the capability), `tenant_suspended`, `feature_not_in_plan`";
const TENANT_429: &str = "`rate_limited` (with `Retry-After` and `RateLimit-*` headers), `quota_exceeded` (the month's token quota; `Retry-After` until it resets)";
const TENANT_503: &str = "`disabled_by_operator` (an incident switch; its reason is the message), `switches_unavailable`, `rate_limiter_unavailable`";
const OPERATOR_401: &str = "credentials refused: `missing_credentials`, `invalid_authorization_header`, `wrong_token_kind` (API keys and tenant tokens are refused under /ops), `invalid_token`, `unsupported_token_algorithm`, `unknown_signing_key`, `signing_key_retired`, `invalid_signature`, `token_expired`, `operator_disabled`";
const JSON_400: &str = "`invalid_json`, `invalid_body` (a field is missing, unknown or of the wrong type)";
const JSON_413: &str = "`too_large`: the body is larger than this endpoint accepts";
const JSON_415: &str = "`unsupported_media_type`: send JSON with `Content-Type: application/json`";
const INTERNAL_500: &str = "`internal`: a failure on Docket's side; the request id identifies it in the logs";

/// Completes the document once every router's operations are in it (see
/// [`CommonResponses`]).
pub fn finish(api: &mut utoipa::openapi::OpenApi) {
    CommonResponses.modify(api);
    text_rule::apply(api);
    text_rule::raw_bodies(api);
}

/// Gives every operation its security requirement and the responses that layers outside
/// the handler can answer: the edge's 400s, authentication and governance refusals, body
/// parsing refusals, 404 for paths with ids, 500.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let who = caller(path);
            for (method, op) in [
                ("get", item.get.as_mut()),
                ("put", item.put.as_mut()),
                ("post", item.post.as_mut()),
                ("delete", item.delete.as_mut()),
                ("patch", item.patch.as_mut()),
            ]
            .into_iter()
            .filter_map(|(m, op)| Some((m, op?)))
            {
                // Unique and stable: handlers' names repeat across resources (`list`, `show`).
                op.operation_id = Some(operation_id(method, path));
                merge(op, "400", EDGE_400);
                match who {
                    Caller::Tenant => {
                        op.security = Some(vec![
                            SecurityRequirement::new("tenant_token", Vec::<String>::new()),
                            SecurityRequirement::new("api_key", Vec::<String>::new()),
                        ]);
                        merge(op, "401", TENANT_401);
                        merge(op, "403", TENANT_403);
                        merge(op, "429", TENANT_429);
                        merge(op, "503", TENANT_503);
                    }
                    Caller::Operator => {
                        op.security = Some(vec![SecurityRequirement::new(
                            "operator_token",
                            Vec::<String>::new(),
                        )]);
                        merge(op, "401", OPERATOR_401);
                    }
                    Caller::Anyone => {}
                }
                if op.request_body.is_some() {
                    merge(op, "400", JSON_400);
                    merge(op, "413", JSON_413);
                    merge(op, "415", JSON_415);
                }
                if path.contains('{') {
                    merge(
                        op,
                        "404",
                        "`not_found`: no such resource for this caller (another tenant's ids are not found either)",
                    );
                }
                merge(op, "500", INTERNAL_500);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/openapi.json`, the committed contract.
    const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");

    #[test]
    fn the_committed_spec_is_the_generated_one() {
        let generated = crate::api_document()
            .to_pretty_json()
            .expect("the document serializes")
            + "\n";
        // Regenerating is explicit: `DOCKET_UPDATE_OPENAPI=1 cargo test -p docket-api spec`.
        if std::env::var_os("DOCKET_UPDATE_OPENAPI").is_some() {
            std::fs::write(COMMITTED, &generated).expect("write docs/openapi.json");
            return;
        }
        let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json differs from the API the code serves: review the change, then run \
             `DOCKET_UPDATE_OPENAPI=1 cargo test -p docket-api spec` and commit docs/openapi.json"
        );
    }

    #[test]
    fn every_operation_is_described_secured_as_its_path_says_and_errors_carry_the_error_body() {
        let api = crate::api_document();
        let mut operations = 0;
        for (path, item) in &api.paths.paths {
            let ops = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for op in ops.into_iter().flatten() {
                operations += 1;
                assert!(
                    op.summary.as_deref().is_some_and(|s| !s.is_empty()),
                    "{path}: no summary"
                );
                assert!(op.tags.as_ref().is_some_and(|t| !t.is_empty()), "{path}: no tag");
                let statuses: Vec<&String> = op.responses.responses.keys().collect();
                assert!(
                    statuses.iter().any(|s| s.starts_with('2') || s.starts_with('3')),
                    "{path}: no success"
                );
                for (status, r) in &op.responses.responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        let RefOr::T(r) = r else {
                            panic!("{path} {status}: a reference")
                        };
                        assert!(
                            r.content.contains_key("application/json"),
                            "{path} {status}: no error body"
                        );
                    }
                }
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                assert_eq!(secured, caller(path) != Caller::Anyone, "{path}: security");
            }
        }
        assert!(operations >= 70, "only {operations} operations documented");
    }
}
