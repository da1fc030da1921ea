//! Parsing where it can be stopped: one child process (`docket-parse`) per document, with a
//! CPU-time limit and an address-space limit it sets on itself before reading a byte, and a
//! wall-time limit the parent enforces by killing it.
//!
//! Why a process: a PDF parse is a blocking library call. A job timeout can stop waiting
//! for it but cannot stop it; the thread (and its memory) stays busy until the library
//! returns, which for a hostile file may be never. A killed process gives everything back.
//!
//! The protocol is private to this module and the binary: arguments
//! `<mime type> <cpu-seconds> <memory-bytes>`, the file on stdin, one JSON
//! `Result<Parsed, ParseError>` on stdout.

use super::{ContentKind, ParseError, Parsed};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The limits one parse runs under, and where the parser binary is.
#[derive(Debug, Clone)]
pub struct Bounds {
    /// The `docket-parse` executable.
    pub program: PathBuf,
    /// Wall time, and (rounded up to whole seconds) CPU time.
    pub timeout: Duration,
    /// Address-space limit of the child, bytes.
    pub memory_bytes: u64,
}

/// The parser could not be run at all (missing binary, no processes left): the document is
/// not at fault, so callers treat this as transient.
#[derive(Debug, thiserror::Error)]
#[error("could not run the parser {program}: {source}")]
pub struct SpawnError {
    program: String,
    #[source]
    source: std::io::Error,
}

/// What the child writes on stdout.
pub(crate) type Reply = Result<Parsed, ParseError>;

/// Parses `bytes` in a child process under `bounds`. The outer error means the parser could
/// not be started; the inner one is the document's verdict, including
/// [`ParseError::TimedOut`] and [`ParseError::Crashed`].
pub async fn parse(bounds: &Bounds, kind: ContentKind, bytes: Vec<u8>) -> Result<Reply, SpawnError> {
    let spawn_error = |source| SpawnError {
        program: bounds.program.display().to_string(),
        source,
    };
    let cpu_secs = bounds.timeout.as_secs_f64().ceil().max(1.0) as u64;
    let mut child = tokio::process::Command::new(&bounds.program)
        .arg(kind.mime())
        .arg(cpu_secs.to_string())
        .arg(bounds.memory_bytes.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env_clear()
        // Dropping the wait (the wall-time limit) kills the child; tokio reaps it.
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| spawn_error(std::io::Error::other("no stdin")))?;
    // Written concurrently with reading stdout: a large file must not fill both pipes.
    let feed = tokio::spawn(async move {
        // A child that dies early closes the pipe: its exit status tells why, not this.
        let _ = stdin.write_all(&bytes).await;
    });
    let waited = tokio::time::timeout(bounds.timeout, child.wait_with_output()).await;
    feed.abort();
    let output = match waited {
        Err(_) => return Ok(Err(ParseError::TimedOut(cpu_secs))),
        Ok(Err(e)) => return Err(spawn_error(e)),
        Ok(Ok(output)) => output,
    };
    // SIGXCPU at the soft CPU limit, SIGKILL at the hard one.
    const SIGKILL: i32 = 9;
    const SIGXCPU: i32 = 24;
    if matches!(output.status.signal(), Some(SIGXCPU | SIGKILL)) {
        return Ok(Err(ParseError::TimedOut(cpu_secs)));
    }
    if !output.status.success() {
        return Ok(Err(ParseError::Crashed));
    }
    Ok(serde_json::from_slice::<Reply>(&output.stdout).unwrap_or(Err(ParseError::Crashed)))
}

/// The child's side: limits first, then the parse. Returns the reply to print.
pub fn run_child(args: &[String], input: impl FnOnce() -> std::io::Result<Vec<u8>>) -> Result<Reply, String> {
    let [kind, cpu_secs, memory_bytes] = args else {
        return Err("usage: docket-parse <mime type> <cpu-seconds> <memory-bytes>".into());
    };
    let kind = ContentKind::from_mime(kind).ok_or_else(|| format!("cannot parse {kind}"))?;
    let cpu_secs: u64 = cpu_secs.parse().map_err(|_| "cpu-seconds must be a number")?;
    let memory_bytes: u64 = memory_bytes
        .parse()
        .map_err(|_| "memory-bytes must be a number")?;
    use rustix::process::{Resource, Rlimit, setrlimit};
    setrlimit(
        Resource::Cpu,
        Rlimit {
            current: Some(cpu_secs),
            maximum: Some(cpu_secs + 1),
        },
    )
    .map_err(|e| format!("cannot limit CPU time: {e}"))?;
    setrlimit(
        Resource::As,
        Rlimit {
            current: Some(memory_bytes),
            maximum: Some(memory_bytes),
        },
    )
    .map_err(|e| format!("cannot limit memory: {e}"))?;
    let bytes = input().map_err(|e| format!("cannot read the file: {e}"))?;
    Ok(super::parse(kind, &bytes))
}
