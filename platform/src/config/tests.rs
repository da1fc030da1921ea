//! Configuration parsing and validation.

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.entry("DOCKET_MASTER_KEY".into())
        .or_insert_with(|| "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into());
    m
}

#[test]
fn defaults_load() {
    let c = Config::load(&env(&[])).expect("defaults are valid");
    assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
    assert!(
        c.admin_bind.ip().is_loopback(),
        "metrics are not exposed unless asked for"
    );
    assert_eq!(c.auth.access_token_ttl, Duration::from_secs(900));
    assert!(matches!(c.objects, ObjectStoreConfig::Local { .. }));
}

#[test]
fn every_bad_variable_is_named() {
    let err = Config::load(&env(&[
        ("DOCKET_BIND", "not-an-address"),
        ("DOCKET_DB_MAX_CONNECTIONS", "0"),
        ("DOCKET_OBJECT_STORE", "ftp"),
        ("DOCKET_LOG_FORMAT", "xml"),
    ]))
    .expect_err("invalid");
    let vars: Vec<_> = err.errors.iter().map(|e| e.var.as_str()).collect();
    assert_eq!(
        vars,
        [
            "DOCKET_BIND",
            "DOCKET_LOG_FORMAT",
            "DOCKET_DB_MAX_CONNECTIONS",
            "DOCKET_OBJECT_STORE"
        ]
    );
    assert!(
        err.to_string()
            .contains("DOCKET_BIND: cannot parse \"not-an-address\"")
    );
}

#[test]
fn missing_master_key_is_explained() {
    let mut m = env(&[]);
    m.remove("DOCKET_MASTER_KEY");
    let err = Config::load(&m).expect_err("required");
    assert_eq!(err.errors[0].var, "DOCKET_MASTER_KEY");
    assert!(err.errors[0].reason.contains("is required"));
}

#[test]
fn secrets_come_from_files_and_never_print() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    std::fs::write(&path, "postgres://u:hunter2@h/db\n").expect("write");
    let c = Config::load(&env(&[(
        "DOCKET_DATABASE_URL_FILE",
        path.to_str().expect("utf8"),
    )]))
    .expect("valid");
    assert_eq!(c.database.app_url.expose(), "postgres://u:hunter2@h/db");
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn secret_and_file_together_is_an_error() {
    let err = Config::load(&env(&[
        ("DOCKET_REDIS_URL", "redis://a"),
        ("DOCKET_REDIS_URL_FILE", "/nonexistent"),
    ]))
    .expect_err("ambiguous");
    assert_eq!(err.errors[0].var, "DOCKET_REDIS_URL");
}

#[test]
fn qdrant_settings_are_validated_and_parsed() {
    let c = Config::load(&env(&[])).expect("defaults");
    assert!(c.qdrant.is_none(), "the in-process engine by default");
    let t = "7b0c7a4e-1b1e-4a8e-9d55-0d6c8a0b7e11";
    let spec = format!("{t}=https://iso.example:6334|k3y");
    let c = Config::load(&env(&[
        ("QDRANT_URL", "http://qdrant:6334"),
        ("DOCKET_QDRANT_ISOLATED", spec.as_str()),
    ]))
    .expect("valid");
    let q = c.qdrant.expect("server");
    let (url, key) = &q.isolated[&t.parse().expect("uuid")];
    assert_eq!(url, "https://iso.example:6334");
    assert_eq!(key.as_ref().map(|k| k.expose().as_str()), Some("k3y"));
    assert!(!format!("{q:?}").contains("k3y"), "keys never print");
    let err = Config::load(&env(&[
        ("QDRANT_URL", "qdrant:6334"),
        ("DOCKET_QDRANT_ISOLATED", "not-a-tenant=http://x"),
    ]))
    .expect_err("bad");
    let vars: Vec<_> = err.errors.iter().map(|e| e.var.as_str()).collect();
    assert_eq!(vars, ["QDRANT_URL", "DOCKET_QDRANT_ISOLATED"]);
}

#[test]
fn s3_requires_its_credentials() {
    let err = Config::load(&env(&[("DOCKET_OBJECT_STORE", "s3")])).expect_err("incomplete");
    let vars: Vec<_> = err.errors.iter().map(|e| e.var.as_str()).collect();
    assert_eq!(
        vars,
        [
            "DOCKET_S3_BUCKET",
            "DOCKET_S3_ACCESS_KEY_ID",
            "DOCKET_S3_SECRET_ACCESS_KEY"
        ]
    );
}

#[test]
fn previous_master_keys_are_found_by_id() {
    let c = Config::load(&env(&[(
        "DOCKET_PREVIOUS_MASTER_KEYS",
        "k0:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
    )]))
    .expect("valid");
    assert_eq!(c.master_key.by_kid("k0"), Some(&[1u8; 32]));
    assert_eq!(c.master_key.by_kid("k1"), Some(&[0u8; 32]));
    assert_eq!(c.master_key.by_kid("k9"), None);
    let err = Config::load(&env(&[("DOCKET_PREVIOUS_MASTER_KEYS", "k0:short")])).expect_err("bad");
    assert_eq!(err.errors[0].var, "DOCKET_PREVIOUS_MASTER_KEYS");
}

#[test]
fn master_key_must_be_32_bytes() {
    assert!(MasterKey::parse("k1:AAAA").is_err());
    assert!(MasterKey::parse("nokid").is_err());
    assert!(MasterKey::parse("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_ok());
}

#[test]
fn question_model_settings_are_bounded() {
    let c = Config::load(&env(&[])).expect("defaults");
    assert_eq!((c.ingest.question_batch, c.ingest.question_sessions), (8, 1));
    let c = Config::load(&env(&[("DOCKET_QUESTION_SESSIONS", "2")])).expect("two sessions");
    assert_eq!(c.ingest.question_sessions, 2);
    for bad in ["0", "17", "many"] {
        let err = Config::load(&env(&[("DOCKET_QUESTION_SESSIONS", bad)])).expect_err(bad);
        let vars: Vec<_> = err.errors.iter().map(|e| e.var.as_str()).collect();
        assert_eq!(vars, ["DOCKET_QUESTION_SESSIONS"], "{bad}");
    }
}

#[test]
fn chunk_overlap_must_leave_room_for_carried_headings() {
    // 31 < 32, but a piece of a 32-token chunk is 26 tokens: the chunker would refuse it.
    let err = Config::load(&env(&[
        ("DOCKET_CHUNK_MAX_TOKENS", "32"),
        ("DOCKET_CHUNK_OVERLAP", "31"),
    ]))
    .expect_err("overlap too large");
    assert_eq!(err.errors[0].var, "DOCKET_CHUNK_OVERLAP");
    assert!(err.errors[0].reason.contains("four fifths"), "{}", err);
    let ok = Config::load(&env(&[
        ("DOCKET_CHUNK_MAX_TOKENS", "32"),
        ("DOCKET_CHUNK_OVERLAP", "25"),
    ]));
    assert!(ok.is_ok());
}

#[test]
fn a_language_model_is_optional_and_checked_when_named() {
    let c = Config::load(&env(&[])).expect("valid");
    assert!(c.llm.is_none(), "no model unless configured");
    let c = Config::load(&env(&[
        ("DOCKET_LLM_URL", "http://127.0.0.1:8081/v1/"),
        ("DOCKET_LLM_MODEL", "smollm2"),
    ]))
    .expect("valid");
    let llm = c.llm.expect("configured");
    assert_eq!(
        llm.url, "http://127.0.0.1:8081",
        "a trailing /v1 is the same endpoint"
    );
    assert_eq!(
        (llm.timeout, llm.retries, llm.max_passages),
        (Duration::from_secs(30), 1, 4)
    );
    let err = Config::load(&env(&[
        ("DOCKET_LLM_URL", "http://llm.example.com"),
        ("DOCKET_LLM_TIMEOUT_SECS", "300"),
    ]))
    .expect_err("invalid");
    let vars: Vec<_> = err.errors.iter().map(|e| e.var.as_str()).collect();
    assert_eq!(
        vars,
        ["DOCKET_LLM_URL", "DOCKET_LLM_MODEL", "DOCKET_LLM_TIMEOUT_SECS"]
    );
}

#[test]
fn a_language_model_url_is_parsed_not_prefix_matched() {
    for sneaky in [
        "http://127.0.0.1:1@llm.example.com",
        "https://user:pw@llm.example.com",
        "ftp://127.0.0.1",
        "http://llm.example.com",
    ] {
        let err =
            Config::load(&env(&[("DOCKET_LLM_URL", sneaky), ("DOCKET_LLM_MODEL", "m")])).expect_err(sneaky);
        assert_eq!(err.errors[0].var, "DOCKET_LLM_URL", "{sneaky}");
    }
    for fine in [
        "https://api.example.com/v1",
        "http://localhost:8080",
        "http://[::1]:9000",
    ] {
        let c = Config::load(&env(&[("DOCKET_LLM_URL", fine), ("DOCKET_LLM_MODEL", "m")])).expect(fine);
        assert!(c.llm.is_some());
    }
}

#[test]
fn the_panel_origin_is_an_origin_and_nothing_more() {
    let c = Config::load(&env(&[("DOCKET_PANEL_ORIGIN", "https://Ops.Example.com:8443/")])).expect("valid");
    assert_eq!(c.panel_origin.as_deref(), Some("https://ops.example.com:8443"));
    assert_eq!(Config::load(&env(&[])).expect("valid").panel_origin, None);
    for bad in [
        "ops.example.com",
        "ftp://ops.example.com",
        "https://ops.example.com/panel",
        "https://u:p@ops.example.com",
        "https://ops.example.com/?x=1",
    ] {
        let err = Config::load(&env(&[("DOCKET_PANEL_ORIGIN", bad)])).expect_err(bad);
        assert_eq!(err.errors[0].var, "DOCKET_PANEL_ORIGIN", "{bad}");
    }
}
