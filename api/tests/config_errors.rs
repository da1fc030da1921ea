//! The real binary with a bad configuration: a clear message naming the variable, exit
//! code 2, no panic.

use std::process::Command;

#[test]
fn invalid_configuration_exits_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_docket-api"))
        .env_clear()
        .env("DOCKET_BIND", "not-an-address")
        .env("DOCKET_DB_MAX_CONNECTIONS", "many")
        .env(
            "DOCKET_MASTER_KEY",
            "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .output()
        .expect("run docket-api");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DOCKET_BIND"), "{stderr}");
    assert!(stderr.contains("DOCKET_DB_MAX_CONNECTIONS"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_missing_secret_file_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_docket-api"))
        .env_clear()
        .env("DOCKET_MASTER_KEY_FILE", "/nonexistent/master.key")
        .output()
        .expect("run docket-api");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DOCKET_MASTER_KEY_FILE: cannot read /nonexistent/master.key"),
        "{stderr}"
    );
}
