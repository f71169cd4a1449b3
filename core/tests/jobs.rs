//! The batch jobs on the real PostgreSQL of the test environment and on SQLite.

mod support;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use herald_core::db::{Db, JobStatus};
use herald_core::jobs::{
    CleanupParams, Job, JobError, JobOptions, JobOutput, LogProgress, ReportParams, ReportPeriod,
    run_job,
};
use support::{postgres, sqlite};

fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

/// Inserts `count` notifications with ids `{prefix}{n}`, sequences `first_sequence + n` and
/// creation times `start + n * step`, cycling through types, statuses and seven users (every
/// fifth is a broadcast), each with a created and a status event. Plain SQL that runs on both
/// backends, so 100,000 rows take seconds.
async fn seed(
    db: &Db,
    prefix: &str,
    count: i64,
    first_sequence: i64,
    start: DateTime<Utc>,
    step: TimeDelta,
) {
    sqlx::query(
        "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < $1) \
         INSERT INTO notifications \
           (id, sequence, message, type, user_id, metadata, status, created_at, updated_at) \
         SELECT $2 || n, $3 + n, 'seeded', \
           CASE n % 4 WHEN 0 THEN 'info' WHEN 1 THEN 'warning' WHEN 2 THEN 'error' \
             ELSE 'success' END, \
           CASE WHEN n % 5 = 0 THEN NULL ELSE 'user-' || (n % 7) END, NULL, \
           CASE n % 3 WHEN 0 THEN 'pending' WHEN 1 THEN 'delivered' ELSE 'failed' END, \
           $4 + n * $5, $4 + n * $5 \
         FROM g",
    )
    .bind(count)
    .bind(prefix)
    .bind(first_sequence)
    .bind(micros(start))
    .bind(step.num_microseconds().expect("step"))
    .execute(db.pool())
    .await
    .expect("seed notifications");
    for (kind, id) in [
        ("notification.created", "c-"),
        ("notification.delivered", "d-"),
    ] {
        sqlx::query(
            "INSERT INTO events (id, notification_id, type, occurred_at, payload) \
             SELECT $1 || id, id, $2, created_at, '{}' FROM notifications \
             WHERE id LIKE $3",
        )
        .bind(id)
        .bind(kind)
        .bind(format!("{prefix}%"))
        .execute(db.pool())
        .await
        .expect("seed events");
    }
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(db.pool())
        .await
        .expect("count")
}

async fn run(db: &Db, job: Job, dry_run: bool, batch_size: u32) -> JobOutput {
    let options = JobOptions {
        dry_run,
        batch_size,
    };
    run_job(db, &job, options, &LogProgress::default())
        .await
        .expect("job")
        .output
}

const RETENTION_DAYS: i64 = 30;

fn cleanup() -> Job {
    Job::Cleanup(CleanupParams {
        retention: Duration::from_secs(RETENTION_DAYS as u64 * 86_400),
    })
}

async fn cleanup_removes_exactly_the_old_rows(db: Db, old: i64) {
    let now = Utc::now();
    // Old ones end an hour past the cutoff; fresh ones start a day inside it.
    let old_start =
        now - TimeDelta::days(RETENTION_DAYS) - TimeDelta::hours(1) - TimeDelta::seconds(old);
    seed(&db, "old-", old, 0, old_start, TimeDelta::seconds(1)).await;
    let fresh = 500;
    let fresh_start = now - TimeDelta::days(RETENTION_DAYS - 1);
    seed(
        &db,
        "new-",
        fresh,
        10 * old,
        fresh_start,
        TimeDelta::seconds(1),
    )
    .await;
    for (key, age) in [("k-old", 25), ("k-new", 23)] {
        sqlx::query(
            "INSERT INTO idempotency_keys (key, request_hash, notification_id, created_at) \
             VALUES ($1, 'h', 'x', $2)",
        )
        .bind(key)
        .bind(micros(now - TimeDelta::hours(age)))
        .execute(db.pool())
        .await
        .expect("key");
    }
    for (event, age) in [("p-old", RETENTION_DAYS + 1), ("p-new", 1)] {
        sqlx::query("INSERT INTO processed_events (event_id, processed_at) VALUES ($1, $2)")
            .bind(event)
            .bind(micros(now - TimeDelta::days(age)))
            .execute(db.pool())
            .await
            .expect("processed");
    }

    let JobOutput::Cleanup(dry) = run(&db, cleanup(), true, 1000).await else {
        panic!("cleanup output")
    };
    assert!(dry.dry_run);
    assert_eq!(dry.counts.notifications, old as u64);
    assert_eq!(dry.counts.events, 2 * old as u64);
    assert_eq!(dry.counts.idempotency_keys, 1);
    assert_eq!(dry.counts.processed_events, 1);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM notifications").await,
        old + fresh
    );

    let JobOutput::Cleanup(done) = run(&db, cleanup(), false, 1000).await else {
        panic!("cleanup output")
    };
    assert_eq!(done.counts, dry.counts);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM notifications").await,
        fresh
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM notifications WHERE id LIKE 'new-%'"
        )
        .await,
        fresh
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM events").await, 2 * fresh);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM events e JOIN notifications n ON n.id = e.notification_id"
        )
        .await,
        2 * fresh,
        "every remaining event belongs to a remaining notification"
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM idempotency_keys WHERE key = 'k-new'"
        )
        .await,
        1
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM idempotency_keys").await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM processed_events").await, 1);

    // Idempotent: a second run finds nothing.
    let JobOutput::Cleanup(again) = run(&db, cleanup(), false, 1000).await else {
        panic!("cleanup output")
    };
    assert_eq!(again.counts.notifications, 0);

    let runs = db.job_runs(10, Some("cleanup"), None).await.expect("runs");
    assert_eq!(runs.len(), 3);
    assert!(
        runs.iter()
            .all(|r| r.status == JobStatus::Succeeded && r.finished_at.is_some())
    );
    assert_eq!(runs[2].counts["notifications"], old);
    assert!(runs[2].dry_run);
    assert_eq!(runs[1].counts["events"], 2 * old);
    assert_eq!(runs[1].parameters["batchSize"], 1000);
}

async fn report_totals_equal_a_direct_count(db: Db) {
    let now = Utc::now();
    let start = now - TimeDelta::hours(5);
    // 1,000 notifications 54 s apart: 15 hours, some before the reported period.
    seed(
        &db,
        "r-",
        1000,
        0,
        start - TimeDelta::hours(10),
        TimeDelta::seconds(54),
    )
    .await;
    let period = ReportPeriod::Between {
        from: start,
        to: now,
    };
    let (from, to) = period.resolve(now).expect("period");
    let job = Job::Report(ReportParams { period });
    let JobOutput::Report(report) = run(&db, job.clone(), false, 97).await else {
        panic!("report output")
    };
    let direct: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications WHERE created_at >= $1 AND created_at < $2",
    )
    .bind(micros(from))
    .bind(micros(to))
    .fetch_one(db.pool())
    .await
    .expect("count");
    assert!(direct > 0);
    assert_eq!(report.total as i64, direct);
    assert_eq!(
        report.rows.iter().map(|r| r.count).sum::<u64>(),
        report.total
    );
    // Each cell agrees with a GROUP BY over the same rows.
    let grouped: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT created_at - (created_at % 3600000000) AS hour, type, status, COUNT(*) \
         FROM notifications WHERE created_at >= $1 AND created_at < $2 \
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .bind(micros(from))
    .bind(micros(to))
    .fetch_all(db.pool())
    .await
    .expect("group");
    let cells: Vec<(i64, String, String, i64)> = report
        .rows
        .iter()
        .map(|r| {
            (
                micros(r.hour),
                r.kind.clone(),
                r.status.clone(),
                r.count as i64,
            )
        })
        .collect();
    assert_eq!(cells, grouped);

    // Re-running the period replaces its rows rather than adding to them.
    run(&db, job, false, 1000).await;
    let stored = db.report_rows(from, to).await.expect("rows");
    assert_eq!(stored.len(), report.rows.len());
    assert_eq!(stored.iter().map(|(_, c)| *c).sum::<u64>(), report.total);
    let text = report.to_string();
    assert!(text.contains(&format!("{:>10}", report.total)), "{text}");

    let invalid = run_job(
        &db,
        &Job::Report(ReportParams {
            period: ReportPeriod::LastHours(0),
        }),
        JobOptions::default(),
        &LogProgress::default(),
    )
    .await;
    assert!(matches!(invalid, Err(JobError::Invalid(_))));
}

async fn user_sync_is_correct_after_a_re_run(db: Db) {
    let now = Utc::now();
    let start = now - TimeDelta::hours(2);
    // 70 notifications, one a minute: users user-0..user-6, broadcasts every fifth.
    seed(&db, "u-", 70, 0, start, TimeDelta::minutes(1)).await;
    let seen_at = start + TimeDelta::minutes(35);
    db.mark_user_seen("user-1", seen_at).await.expect("seen");
    db.mark_user_seen("user-1", seen_at - TimeDelta::hours(1))
        .await
        .expect("an older time does not move it back");

    // A crashed earlier run may have left any values behind.
    sqlx::query(
        "INSERT INTO users (user_id, notification_count, unread_count, synced_at) \
         VALUES ('user-2', 999, 999, 0), ('ghost', 5, 5, 0)",
    )
    .execute(db.pool())
    .await
    .expect("stale rows");

    let expect = |user: &str, seen: Option<DateTime<Utc>>| {
        let db = db.clone();
        let user = user.to_owned();
        async move {
            let (total, unread, last): (i64, i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), \
                   SUM(CASE WHEN status = 'delivered' AND created_at > $2 THEN 1 ELSE 0 END), \
                   MAX(created_at) FROM notifications WHERE user_id = $1",
            )
            .bind(&user)
            .bind(seen.map_or(-1, micros))
            .fetch_one(db.pool())
            .await
            .expect("direct");
            let summary = db.user_summary(&user).await.expect("read").expect("row");
            assert_eq!(summary.notification_count, total, "{user}");
            assert_eq!(summary.unread_count, unread, "{user}");
            assert_eq!(summary.last_notification_at.map(micros), last, "{user}");
            assert_eq!(summary.last_seen_at, seen, "{user}");
        }
    };

    let JobOutput::UserSync(first) = run(&db, Job::UserSync, false, 3).await else {
        panic!("user-sync output")
    };
    assert_eq!(first.users_synced, 7);
    assert_eq!(first.users_cleared, 1, "ghost has no notifications");
    for user in ["user-0", "user-2", "user-3", "user-4", "user-5", "user-6"] {
        expect(user, None).await;
    }
    let seen_stored = db.user_summary("user-1").await.expect("read").expect("row");
    let seen_micros = seen_stored.last_seen_at.map(micros).expect("seen");
    assert_eq!(seen_micros, micros(seen_at));
    expect("user-1", seen_stored.last_seen_at).await;
    let ghost = db.user_summary("ghost").await.expect("read").expect("kept");
    assert_eq!((ghost.notification_count, ghost.unread_count), (0, 0));

    // Things change (deliveries, cleanup); a re-run converges again.
    sqlx::query("UPDATE notifications SET status = 'delivered' WHERE user_id = 'user-3'")
        .execute(db.pool())
        .await
        .expect("deliver");
    sqlx::query("DELETE FROM notifications WHERE user_id = 'user-4'")
        .execute(db.pool())
        .await
        .expect("clean up");
    let JobOutput::UserSync(second) = run(&db, Job::UserSync, false, 1000).await else {
        panic!("user-sync output")
    };
    assert_eq!(second.users_synced, 6);
    assert_eq!(second.users_cleared, 1, "user-4 lost its notifications");
    expect("user-3", None).await;
    let user4 = db
        .user_summary("user-4")
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        (
            user4.notification_count,
            user4.unread_count,
            user4.last_notification_at
        ),
        (0, 0, None)
    );
    let before = db.user_summary("user-5").await.expect("read");
    let JobOutput::UserSync(dry) = run(&db, Job::UserSync, true, 1000).await else {
        panic!("user-sync output")
    };
    assert!(dry.dry_run);
    assert_eq!(db.user_summary("user-5").await.expect("read"), before);
}

#[tokio::test]
async fn postgres_cleanup_removes_exactly_the_old_rows() {
    cleanup_removes_exactly_the_old_rows(postgres().await, 100_000).await;
}

#[tokio::test]
async fn sqlite_cleanup_removes_exactly_the_old_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    cleanup_removes_exactly_the_old_rows(sqlite(&dir).await, 5_000).await;
}

#[tokio::test]
async fn postgres_report_totals_equal_a_direct_count() {
    report_totals_equal_a_direct_count(postgres().await).await;
}

#[tokio::test]
async fn sqlite_report_totals_equal_a_direct_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    report_totals_equal_a_direct_count(sqlite(&dir).await).await;
}

#[tokio::test]
async fn postgres_user_sync_is_correct_after_a_re_run() {
    user_sync_is_correct_after_a_re_run(postgres().await).await;
}

#[tokio::test]
async fn sqlite_user_sync_is_correct_after_a_re_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    user_sync_is_correct_after_a_re_run(sqlite(&dir).await).await;
}

#[tokio::test]
async fn cleanup_refuses_a_retention_shorter_than_idempotency_keys_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sqlite(&dir).await;
    let job = Job::Cleanup(CleanupParams {
        retention: Duration::from_secs(3600),
    });
    let result = run_job(&db, &job, JobOptions::default(), &LogProgress::default()).await;
    assert!(matches!(result, Err(JobError::Invalid(_))), "{result:?}");
    let runs = db.job_runs(10, None, None).await.expect("runs");
    assert_eq!(runs[0].status, JobStatus::Failed);
    assert!(runs[0].error.as_deref().is_some_and(|e| e.contains("24")));
}

#[tokio::test]
async fn an_every_second_schedule_records_runs() {
    use herald_core::jobs::schedule::{ScheduleError, ScheduledJob, run_schedule};
    use tokio_util::sync::CancellationToken;

    let db = postgres().await;
    let shutdown = CancellationToken::new();
    let every_second = ScheduledJob {
        cron: "* * * * * *".into(),
        job: Job::UserSync,
        options: JobOptions::default(),
    };
    let scheduler = tokio::spawn(run_schedule(
        db.clone(),
        vec![every_second.clone()],
        shutdown.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let succeeded = loop {
        let runs = db
            .job_runs(10, Some("user-sync"), None)
            .await
            .expect("runs");
        let done = runs
            .iter()
            .filter(|r| r.status == JobStatus::Succeeded)
            .count();
        if done >= 2 || tokio::time::Instant::now() > deadline {
            break done;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), scheduler)
        .await
        .expect("the scheduler stops on shutdown")
        .expect("task")
        .expect("schedule");
    assert!(
        succeeded >= 2,
        "{succeeded} runs in 20 s of an every-second schedule"
    );

    let invalid = ScheduledJob {
        cron: "every now and then".into(),
        ..every_second
    };
    let error = run_schedule(db, vec![invalid], CancellationToken::new())
        .await
        .expect_err("refused");
    assert!(
        matches!(error, ScheduleError::InvalidCron { .. }),
        "{error}"
    );
}
