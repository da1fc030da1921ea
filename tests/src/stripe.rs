//! A real Stripe emulator for the billing tests: localstripe (PyPI, installed by
//! `scripts/test`) with `scripts/localstripe-compat.py`, one process per test on a free
//! loopback port, so each test counts its own Stripe objects.

use serde_json::Value;
use std::time::Duration;

/// The test-mode key the emulator is called with (any `sk_test_` key is accepted).
pub const KEY: &str = "sk_test_docket";

/// A running emulator; stopped when dropped.
#[derive(Debug)]
pub struct LocalStripe {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<std::process::Child>,
    http: reqwest::Client,
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl LocalStripe {
    /// Starts an emulator on a free port and waits until it answers.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// Starts an emulator on `port` and waits until it answers.
    pub async fn start_on(port: u16) -> Self {
        let script = crate::workspace().join("scripts/localstripe-compat.py");
        let child = std::process::Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs scripts/localstripe-compat.py (scripts/test installs localstripe)");
        let s = Self {
            port,
            child: Some(child),
            http: reqwest::Client::new(),
        };
        crate::wait_until_up(
            &format!("localstripe on port {port}"),
            Duration::from_secs(30),
            async || {
                s.http
                    .get(format!("{}/v1/customers", s.base()))
                    .bearer_auth(KEY)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            },
        )
        .await;
        s
    }

    /// `http://127.0.0.1:{port}`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops it (the port then refuses connections: Stripe is down).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `GET {path}` with the key, as JSON.
    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base()))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("localstripe answers")
            .json()
            .await
            .expect("json")
    }

    /// How many objects a list endpoint (`/v1/customers`, `/v1/invoices`,
    /// `/v1/invoiceitems`) holds.
    pub async fn count(&self, list: &str) -> usize {
        let v = self.get(&format!("{list}?limit=100")).await;
        v["data"].as_array().map(Vec::len).unwrap_or(0)
    }

    /// Registers Docket's webhook endpoint with the signing secret.
    pub async fn webhook(&self, url: &str, secret: &str) {
        let r = self
            .http
            .post(format!("{}/_config/webhooks/docket", self.base()))
            .bearer_auth(KEY)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!(
                "url={}&secret={secret}",
                url.replace(':', "%3A").replace('/', "%2F")
            ))
            .send()
            .await
            .expect("config webhook");
        assert!(r.status().is_success(), "{}", r.status());
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        self.stop();
    }
}
