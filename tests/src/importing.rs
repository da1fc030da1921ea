//! Bulk-import helpers: building zip archives (honest and malicious), calling the imports
//! API, waiting on an import, and running the feeder (in this process or as a real
//! `docket-scheduler` process).

use crate::{TestApp, WorkerProcess};
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};
use zip::write::SimpleFileOptions;

/// A zip of `(name, bytes)` entries, deflated.
pub fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(name.as_str(), opts).expect("start entry");
        w.write_all(bytes).expect("write entry");
    }
    w.finish().expect("finish zip").into_inner()
}

/// A zip whose one entry inflates `mib` MiB of zeros from a few KiB: a zip bomb.
pub fn zip_bomb(mib: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(mib >= 4096);
    w.start_file("contract.txt", opts).expect("start entry");
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..mib {
        w.write_all(&zeros).expect("write");
    }
    w.finish().expect("finish zip").into_inner()
}

/// A zip with `n` empty entries.
pub fn zip_of_empty_entries(n: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..n {
        w.start_file(format!("e{i}.txt"), opts).expect("start entry");
    }
    w.finish().expect("finish zip").into_inner()
}

impl TestApp {
    /// `POST /v1/imports` with a zip body.
    pub async fn import_zip(&self, token: &str, bytes: Vec<u8>) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/imports?filename=batch.zip", self.address))
            .bearer_auth(token)
            .header("content-type", "application/zip")
            .body(bytes)
            .send()
            .await
            .expect("request")
    }

    /// Imports `n` synthetic contracts (family `seed`) as one zip under `folder/`; asserts
    /// 202 and returns the import id.
    pub async fn import_synthetic(&self, token: &str, folder: &str, seed: u64, n: u64) -> String {
        let entries: Vec<(String, Vec<u8>)> = (0..n)
            .map(|i| {
                (
                    format!("{folder}/{i:05}.txt"),
                    crate::synthetic::contract(seed, i).into_bytes(),
                )
            })
            .collect();
        let r = self.import_zip(token, zip_of(&entries)).await;
        assert_eq!(r.status(), 202, "import accepted");
        let v: Value = r.json().await.expect("json");
        v["import_id"].as_str().expect("import id").to_owned()
    }

    /// `GET /v1/imports/{id}` as JSON.
    pub async fn import_status(&self, token: &str, id: &str) -> Value {
        let resp = self
            .client
            .get(format!("{}/v1/imports/{id}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "import status");
        resp.json().await.expect("json")
    }

    /// Polls an import until it is over (`done`, `cancelled`, `failed`); panics after
    /// `timeout`.
    pub async fn wait_import(&self, token: &str, id: &str, timeout: Duration) -> Value {
        let started = Instant::now();
        loop {
            let s = self.import_status(token, id).await;
            if ["done", "cancelled", "failed"].contains(&s["status"].as_str().unwrap_or("")) {
                return s;
            }
            assert!(
                started.elapsed() < timeout,
                "import {id} not over after {timeout:?}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Runs the feeder in this process until the app stops.
    pub fn spawn_feeder(&self) -> tokio::task::JoinHandle<()> {
        let queue = docket_platform::jobs::JobQueue::new(
            docket_platform::redis_conn::Redis::new(&self.config.redis.url, &self.config.redis.prefix)
                .expect("redis"),
            self.config.ingest.job_max_attempts,
        );
        let settings = docket_scheduler::feeder_settings(&self.config);
        let (control, db, stop) = (self.control.clone(), self.db.clone(), self.shutdown.clone());
        tokio::spawn(docket_platform::imports::feeder::run(
            control,
            db,
            queue,
            settings,
            async move { stop.cancelled().await },
        ))
    }

    /// Runs the reaper in this process until the app stops, with `settings`.
    pub fn spawn_reaper(
        &self,
        settings: docket_platform::jobs::reaper::ReaperSettings,
    ) -> tokio::task::JoinHandle<()> {
        let queue = docket_platform::jobs::JobQueue::new(
            docket_platform::redis_conn::Redis::new(&self.config.redis.url, &self.config.redis.prefix)
                .expect("redis"),
            self.config.ingest.job_max_attempts,
        );
        let (control, db, stop) = (self.control.clone(), self.db.clone(), self.shutdown.clone());
        tokio::spawn(docket_platform::jobs::reaper::run(
            control,
            db,
            queue,
            settings,
            async move { stop.cancelled().await },
        ))
    }

    /// Starts a real `docket-scheduler` process (the feeder) on this app's configuration;
    /// killed on drop like a worker process.
    pub fn spawn_scheduler_process(&self, name: &str) -> WorkerProcess {
        let bin = crate::sibling_binary("docket-scheduler");
        let log = std::fs::File::create(self.dirs.path().join(format!("{name}.log"))).expect("log file");
        std::process::Command::new(bin)
            .env_clear()
            .envs(&self.env)
            .env("DOCKET_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .map(WorkerProcess::from_child)
            .expect("start docket-scheduler")
    }
}

/// Asserts an import's parts add up to its total.
pub fn assert_totals_add_up(s: &Value) {
    let n = |k: &str| s[k].as_i64().unwrap_or_else(|| panic!("{k} in {s}"));
    assert_eq!(
        n("queued")
            + n("processing")
            + n("ready")
            + n("failed")
            + n("duplicates")
            + n("cancelled")
            + n("deleted"),
        n("total"),
        "parts add up to the total: {s}"
    );
}
