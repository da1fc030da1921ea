//! Docket's HTTP API: authenticates, authorizes, meters and enqueues. It never loads the
//! model or talks to the vector store; heavy work happens in workers.

pub mod answers;
pub mod auth;
pub mod edge;
pub mod error;
pub mod json;
pub mod openapi;
pub mod panel;
pub mod rate;
pub mod request_id;
pub mod routes;
pub mod state;
pub mod switchboard;

use axum::Router;
use state::AppState;
use std::future::Future;
use tokio::net::TcpListener;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

/// Every JSON route, with its OpenAPI operation (a route cannot be added without one).
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(routes::health::router())
        .merge(routes::auth::router())
        .merge(routes::me::router())
        .merge(routes::users::router())
        .merge(routes::api_keys::router())
        .merge(routes::audit::router())
        .merge(routes::documents::router())
        .merge(routes::deletions::router())
        .merge(routes::tenant_deletion::router())
        .merge(routes::imports::router())
        .merge(routes::exports::router())
        .merge(routes::export_downloads::router())
        .merge(routes::invoices::router())
        .merge(routes::stripe_webhook::router())
        .merge(routes::ops::router())
        .merge(routes::ops_limits::router())
        .merge(routes::switches::router())
        .merge(routes::usage::router())
        .merge(routes::queries::router())
        .merge(routes::policy::router())
        .merge(routes::consents::router())
        .merge(routes::access_reviews::router())
}

/// The OpenAPI document of [`router`]'s JSON API, as served at `/openapi.json`.
pub fn api_document() -> utoipa::openapi::OpenApi {
    let (_, mut api) = api_routes().split_for_parts();
    openapi::finish(&mut api);
    api
}

/// The whole application router: the documented JSON API, its document (`/openapi.json`)
/// and reference UI (`/docs`), and the operator panel (HTML pages, outside the JSON
/// contract).
pub fn router(state: AppState) -> Router {
    let (documented, mut api) = api_routes().split_for_parts();
    openapi::finish(&mut api);
    Router::new()
        .merge(documented)
        .merge(
            SwaggerUi::new("/docs")
                .url("/openapi.json", api)
                .config(utoipa_swagger_ui::Config::default().validator_url("none")),
        )
        .merge(panel::router(state.clone()))
        .fallback(edge::not_found)
        .method_not_allowed_fallback(edge::method_not_allowed)
        .route_layer(axum::middleware::from_fn(request_id::metrics))
        .layer(axum::middleware::from_fn(rate::headers))
        .layer(axum::middleware::from_fn(edge::middleware))
        .layer(axum::middleware::from_fn(request_id::middleware))
        .with_state(state)
}

/// The admin router (`/metrics`), for the admin listener only.
pub fn admin_router(state: AppState) -> Router {
    routes::health::admin_router()
        .fallback(edge::not_found)
        .layer(axum::middleware::from_fn(edge::middleware))
        .with_state(state)
}

/// Serves the admin router on `listener` until `shutdown` resolves.
pub async fn serve_admin(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = docket_platform::metrics::prometheus();
    axum::serve(listener, admin_router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = docket_platform::metrics::prometheus();
    let refresher = tokio::spawn(switchboard::run(state.switches.clone(), state.db.clone()));
    let listener_task = tokio::spawn(answers::run(state.answers.clone(), state.db.clone()));
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    refresher.abort();
    listener_task.abort();
    served
}
