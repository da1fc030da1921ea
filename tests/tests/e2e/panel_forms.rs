//! The panel's gate and forms over plain HTTP (the browser scenarios are in `panel.rs`):
//! sessions, the cookie's attributes, CSRF and origin checks, idle expiry, a disabled
//! operator, and every refusal a form can meet, each with its status and code.

use docket_tests::actors::PASSWORD;
use docket_tests::{TestApp, spawn_app};
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Client, Response, redirect};
use uuid::Uuid;

/// What a browser's form submission sends.
pub(crate) trait FormBody {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

/// A browser-like client that does not follow redirects (the tests look at them).
pub(crate) fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client")
}

pub(crate) async fn operator(app: &TestApp) -> String {
    let email = format!(
        "forms-{}@docket.example.com",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    docketctl::operator_create(&app.control, &app.auditor(), &email, PASSWORD)
        .await
        .expect("operator");
    email
}

pub(crate) async fn sign_in(app: &TestApp, email: &str, password: &str) -> Response {
    client()
        .post(format!("{}/ops/panel/login", app.address))
        .header(ORIGIN, &app.address)
        .form_body(&[("email", email), ("password", password)])
        .send()
        .await
        .expect("sign in")
}

/// A signed-in session: the cookie header and the CSRF token from a page.
pub(crate) struct Session {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

pub(crate) async fn session(app: &TestApp, email: &str) -> Session {
    let r = sign_in(app, email, PASSWORD).await;
    assert_eq!(r.status(), 303);
    let set = r.headers()[SET_COOKIE].to_str().expect("ascii").to_owned();
    let cookie = set.split(';').next().expect("pair").to_owned();
    let page = get(app, "/ops/panel/switches", Some(&cookie)).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a form with the token")
        .to_owned();
    Session { cookie, csrf }
}

pub(crate) async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> Response {
    let mut req = client().get(format!("{}{path}", app.address));
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    req.send().await.expect("get")
}

pub(crate) async fn post(
    app: &TestApp,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> Response {
    let mut req = client()
        .post(format!("{}{path}", app.address))
        .header(COOKIE, cookie)
        .form_body(form);
    if let Some(o) = origin {
        req = req.header(ORIGIN, o);
    }
    req.send().await.expect("post")
}

/// Asserts a refusal page: status, and the code shown on it.
pub(crate) async fn refused(r: Response, status: u16, code: &str) {
    assert_eq!(r.status(), status);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html"),
        "a page, not JSON"
    );
    let html = r.text().await.expect("html");
    assert!(
        html.contains(&format!("<code>{code}</code>")),
        "{code} not in {html}"
    );
}

#[tokio::test]
async fn pages_need_a_session_and_the_cookie_is_host_only_httponly_secure_strict() {
    let app = spawn_app().await;
    let email = operator(&app).await;

    let r = get(&app, "/ops/panel/tenants", None).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/ops/panel/login");
    // The panel never takes bearer credentials, an operator token included.
    let token = app.operator_token().await;
    let r = client()
        .get(format!("{}/ops/panel/tenants", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    let r = client()
        .post(format!("{}/ops/panel/switches", app.address))
        .form_body(&[("class", "query"), ("reason", "x")])
        .send()
        .await
        .expect("post");
    refused(r, 401, "session_required").await;

    let r = sign_in(&app, &email, PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/ops/panel/tenants");
    let set = r.headers()[SET_COOKIE].to_str().expect("ascii").to_owned();
    assert!(set.starts_with("__Host-docket_panel="), "{set}");
    for attr in ["Path=/", "HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Domain="), "a __Host- cookie names no domain");
    let cookie = set.split(';').next().expect("pair");
    let token_value = cookie.split_once('=').expect("value").1;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM operator_sessions WHERE token_hash = $1")
        .bind(docket_platform::crypto::sha256_hex(token_value.as_bytes()))
        .fetch_one(app.control.pool())
        .await
        .expect("sessions");
    assert_eq!(stored, 1, "only the token's hash is stored");

    let page = get(&app, "/ops/panel/tenants", Some(cookie)).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let js = get(&app, "/ops/panel/assets/htmx.min.js", None).await;
    assert_eq!(js.status(), 200, "assets need no session");
    assert!(js.text().await.expect("js").contains("htmx"));
}

#[tokio::test]
async fn a_wrong_password_page_says_so_and_starts_nothing() {
    let app = spawn_app().await;
    let email = operator(&app).await;
    let r = sign_in(&app, &email, "not it").await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert!(
        r.text()
            .await
            .expect("html")
            .contains("the email or password is wrong")
    );
    let r = sign_in(&app, "not an email", "x").await;
    assert_eq!(r.status(), 400);
    // A sign-in posted from another site is refused before the password is looked at.
    let r = client()
        .post(format!("{}/ops/panel/login", app.address))
        .header(ORIGIN, "https://evil.example")
        .form_body(&[("email", email.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    refused(r, 403, "cross_site_request").await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM operator_sessions")
        .fetch_one(app.control.pool())
        .await
        .expect("sessions");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn every_form_refuses_bad_input_with_a_code_and_changes_nothing() {
    let app = spawn_app().await;
    let email = operator(&app).await;
    let s = session(&app, &email).await;
    let t = app.create_tenant("forms").await;
    let tid = t.id.to_string();
    let me = Some(app.address.as_str());
    let csrf = s.csrf.as_str();

    let suspend = format!("/ops/panel/tenants/{tid}/suspend");
    refused(
        post(&app, &suspend, &s.cookie, me, &[("csrf", csrf), ("reason", "  ")]).await,
        400,
        "invalid_reason",
    )
    .await;
    refused(
        post(
            &app,
            &suspend,
            &s.cookie,
            me,
            &[("csrf", "forged"), ("reason", "r")],
        )
        .await,
        403,
        "csrf_token_invalid",
    )
    .await;
    refused(
        post(
            &app,
            &suspend,
            &s.cookie,
            Some("http://127.0.0.1:1"),
            &[("csrf", csrf), ("reason", "r")],
        )
        .await,
        403,
        "cross_site_request",
    )
    .await;
    refused(
        post(
            &app,
            "/ops/panel/tenants/not-a-uuid/suspend",
            &s.cookie,
            me,
            &[("csrf", csrf), ("reason", "r")],
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let plan = format!("/ops/panel/tenants/{tid}/plan");
    refused(
        post(
            &app,
            &plan,
            &s.cookie,
            me,
            &[("csrf", csrf), ("plan", "platinum")],
        )
        .await,
        400,
        "invalid_limit",
    )
    .await;
    let over = format!("/ops/panel/tenants/{tid}/rate-override");
    let form = |pm: &'static str, class: &'static str| {
        [
            ("csrf", csrf),
            ("class", class),
            ("per_minute", pm),
            ("burst", "5"),
            ("expires_in_minutes", "10"),
            ("reason", "r"),
        ]
    };
    refused(
        post(&app, &over, &s.cookie, me, &form("lots", "read")).await,
        400,
        "invalid_limit",
    )
    .await;
    refused(
        post(&app, &over, &s.cookie, me, &form("0", "read")).await,
        400,
        "invalid_limit",
    )
    .await;
    refused(
        post(&app, &over, &s.cookie, me, &form("10", "everything")).await,
        400,
        "invalid_limit",
    )
    .await;
    let clear = format!("/ops/panel/tenants/{tid}/rate-override/clear");
    refused(
        post(&app, &clear, &s.cookie, me, &[("csrf", csrf), ("class", "read")]).await,
        404,
        "not_found",
    )
    .await;
    let sw = |tenant: &'static str, class: &'static str, exp: &'static str| {
        [
            ("csrf", csrf),
            ("class", class),
            ("tenant", tenant),
            ("reason", "incident"),
            ("expires_in_minutes", exp),
        ]
    };
    refused(
        post(
            &app,
            "/ops/panel/switches",
            &s.cookie,
            me,
            &sw("no-such-tenant", "query", ""),
        )
        .await,
        400,
        "unknown_tenant",
    )
    .await;
    refused(
        post(&app, "/ops/panel/switches", &s.cookie, me, &sw("", "bogus", "")).await,
        400,
        "invalid_class",
    )
    .await;
    refused(
        post(
            &app,
            "/ops/panel/switches",
            &s.cookie,
            me,
            &sw("", "query", "soon"),
        )
        .await,
        400,
        "invalid_expiry",
    )
    .await;
    let lift = format!("/ops/panel/switches/{}/lift", Uuid::new_v4());
    refused(
        post(&app, &lift, &s.cookie, me, &[("csrf", csrf)]).await,
        404,
        "not_found",
    )
    .await;

    let (status, plan_now): (String, String) =
        sqlx::query_as("SELECT status, plan_id FROM tenants WHERE id = $1")
            .bind(t.id)
            .fetch_one(app.control.pool())
            .await
            .expect("tenant");
    assert_eq!((status.as_str(), plan_now.as_str()), ("active", "team"));
    let switches: i64 = sqlx::query_scalar("SELECT count(*) FROM incident_switches")
        .fetch_one(app.control.pool())
        .await
        .expect("switches");
    assert_eq!(switches, 0);
    // A valid change goes through (the refusals above were about their input only).
    let r = post(
        &app,
        &suspend,
        &s.cookie,
        me,
        &[("csrf", csrf), ("reason", "test"), ("slug", &t.slug)],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()[LOCATION]
            .to_str()
            .expect("ascii")
            .contains("done=suspended")
    );
}
