//! `docket-worker`: runs background jobs until SIGTERM.

use docket_platform::{config::Config, shutdown, telemetry};
use docket_worker::Worker;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("docket-worker: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log_filter, config.log_format);
    let result = match Worker::start(config).await {
        Ok(w) => w.run(shutdown::signal()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "docket-worker stopped");
            eprintln!("docket-worker: {e}");
            ExitCode::FAILURE
        }
    }
}
