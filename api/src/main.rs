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
    let admin = tokio::net::TcpListener::bind(config.admin_bind).await?;
    tracing::info!(address = %listener.local_addr()?, admin = %admin.local_addr()?, "docket-api listening");
    // One shutdown signal for both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |rx: tokio::sync::watch::Receiver<bool>| async move {
        let mut rx = rx;
        let _ = rx.wait_for(|s| *s).await;
    };
    let admin_task = tokio::spawn(docket_api::serve_admin(
        admin,
        state.clone(),
        stopped(stop_rx.clone()),
    ));
    let signal = async move {
        shutdown::signal().await;
        let _ = stop_tx.send(true);
    };
    let served = docket_api::serve(listener, state, signal).await;
    admin_task.await??;
    served?;
    Ok(())
}
