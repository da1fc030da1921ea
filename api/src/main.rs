//! `docket-api`: loads configuration, then serves the API.

use docket_api::state::AppState;
use docket_platform::{config::Config, shutdown, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("docket-api: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(&config.log_filter, config.log_format);
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "docket-api stopped");
            eprintln!("docket-api: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let state = AppState::from_config(&config)?;
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    tracing::info!(address = %listener.local_addr()?, "docket-api listening");
    docket_api::serve(listener, state, shutdown::signal()).await?;
    Ok(())
}
