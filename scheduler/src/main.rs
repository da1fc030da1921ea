//! `docket-scheduler`: fires periodic runs until SIGTERM.

use docket_platform::{config::Config, shutdown, telemetry};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("docket-scheduler: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log_filter, config.log_format);
    match docket_scheduler::run(&config, shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docket-scheduler: {e}");
            ExitCode::FAILURE
        }
    }
}
