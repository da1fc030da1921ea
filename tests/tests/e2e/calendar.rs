//! The calendar: several schedulers, exactly one leads; a killed leader is replaced within
//! seconds and the month's billing run still happens once.

use docket_platform::billing::Month;
use docket_platform::billing::run;
use docket_tests::{TestApp, WorkerProcess, sibling_binary, spawn_app};
use std::time::{Duration, Instant};

fn start_scheduler(app: &TestApp, name: &str) -> WorkerProcess {
    let log = std::fs::File::create(app.dirs.path().join(format!("{name}.log"))).expect("log");
    let child = std::process::Command::new(sibling_binary("docket-scheduler"))
        .env_clear()
        .envs(&app.env)
        .env("DOCKET_LEADER_POLL_MS", "200")
        .env("DOCKET_CALENDAR_INTERVAL_SECS", "1")
        .env("DOCKET_HEARTBEAT_SECS", "1")
        .env("DOCKET_BILLING_CATCH_UP_MONTHS", "1")
        .env("DOCKET_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start docket-scheduler");
    WorkerProcess::from_child(child)
}

/// The scheduler processes (but `gone`) that report leading in a heartbeat of the last 2
/// seconds.
async fn leaders(app: &TestApp, gone: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT name FROM service_heartbeats WHERE kind = 'scheduler' AND name <> $1
           AND (components->>'leader')::boolean AND last_seen > now() - interval '2 seconds'",
    )
    .bind(gone)
    .fetch_all(app.control.pool())
    .await
    .expect("heartbeats")
}

async fn one_leader(app: &TestApp, gone: &str, within: Duration) -> String {
    let started = Instant::now();
    loop {
        let l = leaders(app, gone).await;
        assert!(l.len() <= 1, "two schedulers lead at once: {l:?}");
        if let [one] = l.as_slice() {
            return one.clone();
        }
        assert!(started.elapsed() < within, "no scheduler leads after {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn one_scheduler_leads_and_a_killed_leader_is_replaced_without_a_second_run() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let mut a = start_scheduler(&app, "scheduler-a");
    let mut b = start_scheduler(&app, "scheduler-b");
    let first = one_leader(&app, "", Duration::from_secs(30)).await;
    // Both run; for a few seconds only one ever leads.
    for _ in 0..10 {
        assert!(leaders(&app, "").await.len() <= 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (leader, survivor) = match first == format!("scheduler-{}", a.id()) {
        true => (&mut a, &mut b),
        false => (&mut b, &mut a),
    };
    leader.kill();
    let killed_at = Instant::now();
    // The killed one's last heartbeat still says it led: it is left out.
    let next = one_leader(&app, &first, Duration::from_secs(10)).await;
    assert_eq!(next, format!("scheduler-{}", survivor.id()));
    assert!(killed_at.elapsed() < Duration::from_secs(10));

    // Now two tenants owe last month: the new leader's catch-up bills them, once.
    let month = Month::of(chrono::Utc::now()).previous();
    let (x, y) = (
        app.create_tenant("late-x").await,
        app.create_tenant("late-y").await,
    );
    // Both at once: a catch-up between the two would bill one now and the other only after
    // the calendar's ten-minute quiet period.
    app.active_since_before_all(&[x.id, y.id], "team").await;
    let started = Instant::now();
    loop {
        let due = run::billable(&app.control, month, None).await.expect("billable");
        if due.len() == 2 && due.iter().all(|d| d.2) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not invoiced: {due:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Several more calendar steps pass: nothing is run again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM billing_runs WHERE period = $1 AND origin = 'schedule'")
            .bind(month.first_day())
            .fetch_one(app.control.pool())
            .await
            .expect("runs");
    assert_eq!(runs, 1, "one scheduled run for {month}");
    for t in [&x, &y] {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices WHERE tenant_id = $1")
            .bind(t.id)
            .fetch_one(app.control.pool())
            .await
            .expect("invoices");
        assert_eq!(n, 1);
    }
}
