//! The list cache, outages of Redis and of the database, refused creates and shutdown.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Backing, Server};
use crate::contract::identity;

#[tokio::test]
async fn the_second_read_of_a_list_is_a_cache_hit_and_a_create_invalidates_it() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    server
        .create(json!({"message": "one", "type": "info"}))
        .await;
    let list = || async { server.get_json("/api/notifications").await };
    // Without Kafka the server processes "one" in process; its status change invalidates the
    // cache when it arrives through the fan-out. Wait until lists show it, then count.
    tokio::time::timeout(Duration::from_secs(30), async {
        while list().await["notifications"][0]["status"] != "delivered" {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("processed within 30 s");
    let hits = || server.metric("herald_cache_hits_total");
    let misses = || server.metric("herald_cache_misses_total");
    let first = list().await;
    let hits_after_first = hits().await;
    let second = list().await;
    assert_eq!(
        hits().await,
        hits_after_first + 1.0,
        "the second read is a hit"
    );
    assert_eq!(first, second);

    server
        .create(json!({"message": "two", "type": "info"}))
        .await;
    let misses_before = misses().await;
    let third = list().await;
    assert_eq!(
        third["notifications"].as_array().unwrap().len(),
        2,
        "a create invalidates the cache"
    );
    assert_eq!(
        misses().await,
        misses_before + 1.0,
        "the read after a create misses"
    );
}

#[tokio::test]
async fn without_redis_reads_and_writes_still_work() {
    let redis = test_support::PrivateEnv::start(&["redis"]).await;
    let backing = Backing {
        redis_url: redis.var("REDIS_URL").to_owned(),
        ..Backing::real().await
    };
    let server = Server::start(&backing, &[]).await;
    server
        .create(json!({"message": "before the outage", "type": "info"}))
        .await;
    redis.stop("redis").await;

    let created = server
        .create(json!({"message": "during the outage", "type": "warning"}))
        .await;
    let list = server.get_json("/api/notifications").await;
    assert_eq!(
        identity(&list["notifications"][0]),
        identity(&created),
        "the database answers"
    );
    assert!(server.metric("herald_cache_errors_total").await >= 1.0);
    let ready = server
        .client()
        .get(server.url("/api/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let readiness: Value = ready.json().await.unwrap();
    assert!(
        readiness["checks"]["redis"]
            .as_str()
            .unwrap()
            .starts_with("unavailable"),
        "{readiness}"
    );
    assert_eq!(readiness["checks"]["database"], "ok");
    drop(redis);
}

#[tokio::test]
async fn a_database_outage_answers_503_and_recovers() {
    let postgres = test_support::PrivateEnv::start(&["postgres"]).await;
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[("DATABASE_URL", postgres.var("DATABASE_URL"))]).await;
    server
        .create(json!({"message": "before the outage", "type": "info"}))
        .await;
    postgres.stop("postgres").await;

    let post = || async {
        server
            .client()
            .post(server.url("/api/notifications"))
            .json(&json!({"message": "around the outage", "type": "info"}))
            .send()
            .await
            .unwrap()
    };
    let refused = post().await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");

    postgres.restart("postgres").await;
    // Pooled connections to the old server fail once each and are replaced.
    let mut attempts = 0;
    while post().await.status() != 201 {
        attempts += 1;
        assert!(
            attempts < 50,
            "POST still fails after the database returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..20 {
        assert_eq!(
            post().await.status(),
            201,
            "every POST after recovery succeeds"
        );
    }
    let list = server.get_json("/api/notifications?limit=50").await;
    assert_eq!(list["notifications"].as_array().unwrap().len(), 22);
    drop(postgres);
}

#[tokio::test]
async fn a_create_the_database_refuses_fails_alone() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    // Stands for any row PostgreSQL refuses that validation let through.
    for statement in [
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.message = 'poison' THEN RAISE EXCEPTION 'poison refused'; END IF; \
         RETURN NEW; END $$",
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON notifications \
         FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    ] {
        sqlx::raw_sql(statement)
            .execute(&backing.database.pool)
            .await
            .unwrap();
    }

    // Concurrent creates share transactions; the poison lands in one with others.
    let messages: Vec<String> = (0..60)
        .map(|n| {
            if n % 20 == 10 {
                "poison".into()
            } else {
                format!("fine {n}")
            }
        })
        .collect();
    let statuses = futures::future::join_all(messages.iter().map(|message| {
        server
            .client()
            .post(server.url("/api/notifications"))
            .json(&json!({"message": message, "type": "info"}))
            .send()
    }))
    .await;
    let statuses: Vec<u16> = statuses
        .into_iter()
        .map(|response| response.unwrap().status().as_u16())
        .collect();
    for (message, status) in messages.iter().zip(&statuses) {
        let expected = if message == "poison" { 500 } else { 201 };
        assert_eq!(*status, expected, "{message}: {statuses:?}");
    }
    let list = server.get_json("/api/notifications?limit=100").await;
    assert_eq!(list["notifications"].as_array().unwrap().len(), 57);
}

#[tokio::test]
async fn sigterm_does_not_wait_for_clients_that_stopped_mid_request() {
    use tokio::io::AsyncWriteExt;
    let mut server = Server::embedded(&[]).await;
    let mut stalled = Vec::new();
    for sent in [
        "POST /api/notifications HTTP/1.1\r\nHost: x\r\n".to_owned(),
        "POST /api/notifications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{\"mess"
            .to_owned(),
    ] {
        let mut client = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        client.write_all(sent.as_bytes()).await.unwrap();
        stalled.push(client);
    }
    // Read by the server before the signal.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server.terminate().await,
        "api-server exited non-zero:\n{}",
        server.log()
    );
}
