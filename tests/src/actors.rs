//! Tenants, users, operators and their tokens, made through the real CLI functions and
//! the real HTTP API.

use crate::TestApp;
use docket_platform::ids::TenantId;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use uuid::Uuid;

/// A tenant with its first owner.
#[derive(Debug, Clone)]
pub struct TestTenant {
    /// Id.
    pub id: TenantId,
    /// Slug (for login).
    pub slug: String,
    /// Owner's user id.
    pub owner_id: Uuid,
    /// Owner's email.
    pub owner_email: String,
    /// Shared test password.
    pub password: String,
}

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    /// Creates a tenant with an owner through `docketctl tenant create` (plan `team`).
    pub async fn create_tenant(&self, prefix: &str) -> TestTenant {
        self.create_tenant_on(prefix, "team", "shared").await
    }

    /// Creates a tenant on `plan` at `tier`, with an owner.
    pub async fn create_tenant_on(&self, prefix: &str, plan: &str, tier: &str) -> TestTenant {
        let slug = format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8]);
        let owner_email = format!("owner@{slug}.example.com");
        let args = docketctl::TenantCreate {
            slug: slug.clone(),
            name: format!("{prefix} Inc."),
            plan: plan.into(),
            tier: tier.into(),
            owner_email: Some(owner_email.clone()),
            owner_password: Some(PASSWORD.into()),
        };
        let out = docketctl::tenant_create(&self.control, &self.auditor(), &args)
            .await
            .expect("tenant create");
        TestTenant {
            id: out["tenant_id"].as_str().expect("id").parse().expect("uuid"),
            slug,
            owner_id: out["owner_user_id"]
                .as_str()
                .expect("owner")
                .parse()
                .expect("uuid"),
            owner_email,
            password: PASSWORD.into(),
        }
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, format!("{}{path}", self.address));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request")
    }

    /// `POST /v1/auth/login`.
    /// Polls `GET path` every 200 ms until its `status` is one of `ended`; panics after
    /// `timeout` (exports, deletions: anything with a status that ends).
    pub async fn poll_until(
        &self,
        token: &str,
        path: &str,
        ended: &[&str],
        timeout: std::time::Duration,
    ) -> Value {
        let started = std::time::Instant::now();
        loop {
            let v: Value = self
                .call(Method::GET, path, Some(token), None)
                .await
                .json()
                .await
                .expect("json");
            if ended.contains(&v["status"].as_str().unwrap_or("")) {
                return v;
            }
            assert!(
                started.elapsed() < timeout,
                "{path} still {} after {timeout:?}: {v}",
                v["status"]
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    pub async fn login(&self, slug: &str, email: &str, password: &str) -> Response {
        let body = json!({"tenant": slug, "email": email, "password": password});
        self.call(Method::POST, "/v1/auth/login", None, Some(body)).await
    }

    /// Logs in and returns the token response (panics on failure).
    pub async fn tokens(&self, slug: &str, email: &str) -> Value {
        let resp = self.login(slug, email, PASSWORD).await;
        assert_eq!(resp.status(), 200, "login of {email} failed");
        resp.json().await.expect("json")
    }

    /// The owner's access token.
    pub async fn owner_token(&self, t: &TestTenant) -> String {
        self.tokens(&t.slug, &t.owner_email).await["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// Creates a user with `role` (as the owner) and returns (user id, access token).
    pub async fn user_with_role(&self, t: &TestTenant, owner_token: &str, role: &str) -> (Uuid, String) {
        let email = format!(
            "{role}-{}@{}.example.com",
            &Uuid::new_v4().simple().to_string()[..6],
            t.slug
        );
        let resp = self
            .call(
                Method::POST,
                "/v1/users",
                Some(owner_token),
                Some(json!({"email": email, "password": PASSWORD, "role": role})),
            )
            .await;
        assert_eq!(resp.status(), 201, "create {role}");
        let user: Value = resp.json().await.expect("json");
        let token = self.tokens(&t.slug, &email).await["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
        (user["id"].as_str().expect("id").parse().expect("uuid"), token)
    }

    /// Creates an operator and returns its access token.
    pub async fn operator_token(&self) -> String {
        let email = format!(
            "op-{}@docket.example.com",
            &Uuid::new_v4().simple().to_string()[..8]
        );
        docketctl::operator_create(&self.control, &self.auditor(), &email, PASSWORD)
            .await
            .expect("operator");
        let resp = self
            .call(
                Method::POST,
                "/ops/auth/login",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(resp.status(), 200, "operator login");
        let v: Value = resp.json().await.expect("json");
        v["access_token"].as_str().expect("token").to_owned()
    }

    /// Audit rows (of any chain) whose reason is `code`.
    pub async fn audit_reasons(&self, code: &str) -> i64 {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM audit_events WHERE reason = $1) + (SELECT count(*) FROM platform_audit_events WHERE reason = $1)",
        )
        .bind(code)
        .fetch_one(self.control.pool())
        .await
        .expect("audit count");
        n
    }
}

/// Asserts status and error code of a response; returns the body.
pub async fn expect_error(resp: Response, status: u16, code: &str) -> Value {
    let got = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "expected {status} {code}, got {got}: {body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| m.len() > 10),
        "a sentence: {body}"
    );
    body
}
