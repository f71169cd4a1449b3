//! PostgreSQL stopped while the processor consumes: nothing goes to the dead-letter topic and
//! everything is processed once it returns. The shared PostgreSQL of the test environment
//! stays up: this test starts a private server of its own and stops that.

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{Broadcasts, Env, free_port, metrics, sample, terminate, wait_until};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL server in a temporary directory, run as the `postgres` user when we are root
/// (as `scripts/testenv` does).
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            run(Command::new("chown").arg("postgres").arg(dir.path()));
        }
        let server = Self {
            dir,
            port: free_port(),
        };
        run(as_postgres(&format!("{PG_BIN}/initdb"))
            .arg("-D")
            .arg(server.data())
            .args([
                "-U",
                "herald",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]));
        server.up();
        run(Command::new(format!("{PG_BIN}/createdb")).args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "herald",
            "herald",
        ]));
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://herald@127.0.0.1:{}/herald", self.port)
    }

    fn up(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.path().display()
        );
        run(as_postgres(&format!("{PG_BIN}/pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("postgres.log"))
            .args(["-w", "-t", "60", "start", "-o", &options]));
    }

    fn down(&self) {
        run(as_postgres(&format!("{PG_BIN}/pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "60", "stop"]));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            let _ = as_postgres(&format!("{PG_BIN}/pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn as_postgres(program: &str) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command) {
    let output = command.output().expect("run");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_retried_without_dead_letters() {
    assert!(
        Path::new(PG_BIN).join("initdb").exists(),
        "PostgreSQL 15 binaries missing in {PG_BIN}: run scripts/testenv up postgres"
    );
    let postgres = PrivatePostgres::start();
    let env = Env::with_database(postgres.url(), 2).await;
    let broadcasts = Broadcasts::subscribe(&env.redis_url, &env.channel).await;
    let events = env.create(200).await;
    env.produce(&events[..100]).await;

    let port = free_port();
    let mut processor = env.consume(
        "outage",
        port,
        &["--retry-max-ms", "1000", "--max-attempts", "2"],
    );
    wait_until(
        Duration::from_secs(60),
        "the first 100 delivered",
        || async { env.try_delivered().await == Some(100) },
    )
    .await;

    postgres.down();
    env.produce(&events[100..]).await;
    wait_until(
        Duration::from_secs(30),
        "retries while PostgreSQL is down",
        || async {
            sample(
                &metrics(port).await,
                r#"herald_processor_retries_total{reason="unavailable"}"#,
            ) >= 3.0
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    postgres.up();

    wait_until(Duration::from_secs(120), "all 200 delivered", || async {
        env.try_delivered().await == Some(200)
    })
    .await;
    wait_until(Duration::from_secs(10), "200 broadcasts", || async {
        broadcasts.len() >= 200
    })
    .await;
    let body = metrics(port).await;
    assert!(terminate(&mut processor), "{}", env.log("outage"));

    assert_eq!(
        sample(&body, "herald_processor_dead_letter_records_total"),
        0.0,
        "{body}"
    );
    assert!(env.dlq_list().is_empty(), "no dead letters");
    let received = broadcasts.events();
    let distinct: HashSet<_> = received.iter().map(|e| e.notification_id).collect();
    assert_eq!((received.len(), distinct.len()), (200, 200));
    assert_eq!(
        env.count("SELECT COUNT(*) FROM events WHERE type = 'notification.delivered'")
            .await,
        200
    );
}
