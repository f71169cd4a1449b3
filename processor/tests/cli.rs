//! The command line: configuration errors, one-shot jobs and the schedule, run as the binary.

mod support;

use std::process::Stdio;
use std::time::Duration;

use herald_core::db::JobStatus;
use support::{Env, terminate, wait_until};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn missing_or_bad_configuration_exits_2_with_a_clear_message() {
    let env = Env::new(1).await;
    let no_db = env
        .command(&["job", "cleanup"])
        .env_remove("DATABASE_URL")
        .output()
        .expect("run");
    assert_eq!(no_db.status.code(), Some(2));
    assert!(
        stderr(&no_db).contains("DATABASE_URL"),
        "{}",
        stderr(&no_db)
    );

    let no_kafka = env
        .command(&["consume"])
        .env_remove("KAFKA_BROKERS")
        .output()
        .expect("run");
    assert_eq!(no_kafka.status.code(), Some(2));
    assert!(
        stderr(&no_kafka).contains("KAFKA_BROKERS"),
        "{}",
        stderr(&no_kafka)
    );

    let no_redis = env
        .command(&["consume"])
        .env_remove("REDIS_URL")
        .output()
        .expect("run");
    assert_eq!(no_redis.status.code(), Some(2));
    assert!(stderr(&no_redis).contains("REDIS_URL"));

    let mysql = env
        .command(&["job", "user-sync"])
        .env("DATABASE_URL", "mysql://localhost/x")
        .output()
        .expect("run");
    assert_eq!(mysql.status.code(), Some(2));
    assert!(stderr(&mysql).contains("postgres://"));

    for args in [
        &["job", "cleanup", "--retention-days", "0"][..],
        &["job", "report", "--batch-size", "0"],
        &[
            "job",
            "report",
            "--from",
            "yesterday",
            "--to",
            "2026-01-01T00:00:00Z",
        ],
        &["schedule", "--schedule-user-sync", "every now and then"],
        &["dlq", "replay", "--record", "zero"],
    ] {
        let output = env.run(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }

    let missing_topic = env
        .command(&["consume", "--metrics-addr", "127.0.0.1:0"])
        .env(
            "KAFKA_NOTIFICATIONS_TOPIC",
            test_support::unique_name("absent"),
        )
        .output()
        .expect("run");
    assert_eq!(missing_topic.status.code(), Some(1));
    assert!(
        stderr(&missing_topic).contains("does not exist"),
        "{}",
        stderr(&missing_topic)
    );

    let unreachable = env
        .command(&["job", "user-sync"])
        .env("DATABASE_URL", "postgres://herald@127.0.0.1:1/herald")
        .output()
        .expect("run");
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(stderr(&unreachable).contains("connecting to the database"));
}

#[tokio::test]
async fn jobs_print_their_results_and_record_their_runs() {
    let env = Env::new(1).await;
    env.create(9).await;

    let cleanup = env.run(&["job", "cleanup", "--dry-run", "--batch-size", "5"]);
    assert!(cleanup.status.success(), "{}", stderr(&cleanup));
    let printed: serde_json::Value =
        serde_json::from_slice(&cleanup.stdout).expect("the result as JSON");
    assert_eq!(printed["dryRun"], true);
    assert_eq!(printed["notifications"], 0, "nothing is 30 days old");

    let report = env.run(&["job", "report", "--hours", "2", "--json"]);
    assert!(report.status.success(), "{}", stderr(&report));
    let printed: serde_json::Value =
        serde_json::from_slice(&report.stdout).expect("the report as JSON");
    assert_eq!(printed["total"], 9);
    let table = env.run(&["job", "report", "--hours", "2"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("pending") && table.contains("total"),
        "{table}"
    );

    let sync = env.run(&["job", "user-sync"]);
    assert!(sync.status.success(), "{}", stderr(&sync));
    let printed: serde_json::Value = serde_json::from_slice(&sync.stdout).expect("JSON");
    assert_eq!(printed["usersSynced"], 3, "user-0, user-3 and user-6");

    let runs = env.db.job_runs(10, None, None).await.expect("runs");
    let names: Vec<_> = runs.iter().map(|r| r.job.as_str()).collect();
    assert_eq!(names, ["user-sync", "report", "report", "cleanup"]);
    assert!(runs.iter().all(|r| r.status == JobStatus::Succeeded));
    assert_eq!(runs[1].counts["notifications"], 9);
}

#[tokio::test]
async fn an_every_second_schedule_records_a_run_and_stops_on_sigterm() {
    let env = Env::new(1).await;
    let mut schedule = env
        .command(&[
            "schedule",
            "--schedule-report",
            "* * * * * *",
            "--schedule-cleanup",
            "off",
            "--schedule-user-sync",
            "off",
        ])
        .env("LOG_LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    wait_until(Duration::from_secs(30), "a recorded report run", || async {
        env.db
            .job_runs(10, Some("report"), None)
            .await
            .expect("runs")
            .iter()
            .any(|r| r.status == JobStatus::Succeeded)
    })
    .await;
    assert!(terminate(&mut schedule), "SIGTERM exits 0");
}
