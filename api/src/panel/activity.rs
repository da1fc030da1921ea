//! Work in progress across tenants: imports with live progress bars (htmx refreshes the
//! table every two seconds; without JavaScript the page is simply read again), and failed
//! or stalled jobs by kind with their errors.

use super::session::PanelAuth;
use super::{Frame, PanelError, audit_view, render, thousands, when};
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Extension, State};
use axum::response::Response;
use axum::routing::get;
use docket_platform::overview::{self, ImportRow, JobRow};

/// `/ops/panel/imports`, `/ops/panel/imports/rows`, `/ops/panel/jobs`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ops/panel/imports", get(imports))
        .route("/ops/panel/imports/rows", get(import_rows))
        .route("/ops/panel/jobs", get(jobs))
}

struct ImportLine {
    id: String,
    slug: String,
    source: String,
    status: String,
    total: String,
    ready: String,
    failed: String,
    processing: String,
    percent: i64,
    started: String,
}

impl From<ImportRow> for ImportLine {
    fn from(i: ImportRow) -> Self {
        Self {
            percent: i.percent(),
            id: i.id.to_string(),
            slug: i.slug,
            source: i.source,
            status: i.status,
            total: thousands(i64::from(i.total)),
            ready: thousands(i.ready),
            failed: thousands(i.failed),
            processing: thousands(i.processing),
            started: when(&i.started_at),
        }
    }
}

#[derive(Template)]
#[template(path = "panel/imports.html")]
struct ImportsPage {
    frame: Frame,
    rows: Vec<ImportLine>,
}

#[derive(Template)]
#[template(path = "panel/import_rows.html")]
struct ImportRows {
    rows: Vec<ImportLine>,
}

async fn import_lines(state: &AppState) -> Result<Vec<ImportLine>, PanelError> {
    Ok(overview::imports_in_progress(&state.control)
        .await?
        .into_iter()
        .map(ImportLine::from)
        .collect())
}

async fn imports(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
) -> Result<Response, PanelError> {
    let rows = import_lines(&state).await?;
    audit_view(&state, &auth, "imports").await?;
    Ok(render(&ImportsPage {
        frame: Frame::new(&auth, "imports"),
        rows,
    }))
}

/// The table body alone, for htmx's refresh. Not audited: the page that polls it was, and
/// an audit row every two seconds per open tab would drown the chain.
async fn import_rows(State(state): State<AppState>) -> Result<Response, PanelError> {
    Ok(render(&ImportRows {
        rows: import_lines(&state).await?,
    }))
}

struct JobLine {
    id: String,
    slug: String,
    kind: String,
    state: &'static str,
    attempts: i32,
    error: String,
    updated: String,
}

impl From<JobRow> for JobLine {
    fn from(j: JobRow) -> Self {
        let error = match (j.error_code, j.error_message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c,
            (None, Some(m)) => m,
            (None, None) => String::new(),
        };
        Self {
            id: j.id.to_string(),
            slug: j.slug,
            state: if j.status == "failed" { "failed" } else { "stalled" },
            kind: j.kind,
            attempts: j.attempts,
            error,
            updated: when(&j.updated_at),
        }
    }
}

#[derive(Template)]
#[template(path = "panel/jobs.html")]
struct JobsPage {
    frame: Frame,
    kinds: Vec<(String, usize, usize)>,
    rows: Vec<JobLine>,
}

async fn jobs(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
) -> Result<Response, PanelError> {
    let rows: Vec<JobLine> = overview::troubled_jobs(&state.control)
        .await?
        .into_iter()
        .map(JobLine::from)
        .collect();
    // Failed and stalled counts per kind, by kind.
    let mut kinds: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for r in &rows {
        let e = kinds.entry(r.kind.clone()).or_default();
        if r.state == "failed" {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    audit_view(&state, &auth, "jobs").await?;
    Ok(render(&JobsPage {
        frame: Frame::new(&auth, "jobs"),
        kinds: kinds.into_iter().map(|(k, (f, s))| (k, f, s)).collect(),
        rows,
    }))
}
