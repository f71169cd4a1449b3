//! The REST API on real PostgreSQL and Redis, and the same API in embedded mode.

mod common;

use std::time::Duration;

use common::{Backing, Server};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message};
use serde_json::{Value, json};

/// The fields a notification keeps for life; `status` and `updatedAt` change once the
/// processor (here, or the in-process step of a server without Kafka) has handled it.
fn identity(notification: &Value) -> Value {
    let mut fixed = notification.clone();
    if let Some(object) = fixed.as_object_mut() {
        object.remove("status");
        object.remove("updatedAt");
    }
    fixed
}

fn identities(list: &Value) -> Value {
    Value::Array(
        list.as_array()
            .expect("an array")
            .iter()
            .map(identity)
            .collect(),
    )
}

/// What every deployment of the API must do, whatever stores it uses.
async fn serves_the_notification_api(server: &Server) {
    let client = server.client();
    let health: Value = server.get_json("/api/health").await;
    assert_eq!(health["status"], "ok");
    let ready = client.get(server.url("/api/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());

    let first = server
        .create(json!({"message": "Test notification", "type": "info"}))
        .await;
    assert_eq!(first["message"], "Test notification");
    assert_eq!(first["type"], "info");
    assert_eq!(first["status"], "pending");
    assert!(first.get("userId").is_none());
    let second = server
        .create(json!({"message": "for alice", "type": "error", "userId": "alice", "metadata": {"k": [1, 2]}}))
        .await;
    assert!(second["sequence"].as_i64() > first["sequence"].as_i64());
    assert_eq!(second["metadata"], json!({"k": [1, 2]}));

    let one: Value = server
        .get_json(&format!(
            "/api/notifications/{}",
            first["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(identity(&one), identity(&first));

    let list: Value = server.get_json("/api/notifications").await;
    assert_eq!(
        identities(&list["notifications"]),
        identities(&json!([second, first])),
        "newest first"
    );
    assert!(list.get("nextBefore").is_none(), "one page only");

    let page: Value = server.get_json("/api/notifications?limit=1").await;
    assert_eq!(
        identities(&page["notifications"]),
        identities(&json!([second]))
    );
    let next = page["nextBefore"]
        .as_i64()
        .expect("a cursor to the next page");
    let older: Value = server
        .get_json(&format!("/api/notifications?limit=1&before={next}"))
        .await;
    assert_eq!(
        identities(&older["notifications"]),
        identities(&json!([first]))
    );
    let by_id: Value = server
        .get_json(&format!(
            "/api/notifications?before={}",
            second["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        identities(&by_id["notifications"]),
        identities(&json!([first])),
        "before accepts an id too"
    );

    let filtered: Value = server
        .get_json("/api/notifications?type=error&userId=alice")
        .await;
    assert_eq!(
        identities(&filtered["notifications"]),
        identities(&json!([second]))
    );
    let none: Value = server.get_json("/api/notifications?type=success").await;
    assert_eq!(none["notifications"], json!([]));

    let jobs = client.get(server.url("/api/jobs")).send().await.unwrap();
    assert_eq!(jobs.status(), 200);
    assert!(jobs.json::<Value>().await.unwrap()["runs"].is_array());
    let seen = client
        .put(server.url("/api/users/alice/seen"))
        .send()
        .await
        .unwrap();
    assert_eq!(seen.status(), 204);
    let alice: Value = server.get_json("/api/users/alice").await;
    assert_eq!(alice["userId"], "alice");
    assert!(alice["lastSeenAt"].is_string(), "{alice}");

    let openapi: Value = server.get_json("/api/openapi.json").await;
    for path in [
        "/api/jobs",
        "/api/users/{userId}",
        "/api/users/{userId}/seen",
        "/api/health",
        "/api/ready",
        "/api/notifications",
        "/api/notifications/{id}",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "{path} is documented");
    }
}

/// A request that must be refused: method, path, content type, body, then the expected
/// status, error code and field.
type BadInput<'a> = (
    &'a str,
    String,
    Option<&'a str>,
    String,
    u16,
    &'a str,
    Option<&'a str>,
);

/// Every bad input gets its 4xx and a JSON error naming the problem; none gets a 5xx.
async fn refuses_bad_input(server: &Server) {
    let long = "x".repeat(4097);
    let big_metadata = json!({"blob": "y".repeat(9000)}).to_string();
    let huge_body = format!(r#"{{"message":"{}","type":"info"}}"#, "z".repeat(70 * 1024));
    let json_type = "application/json";
    let cases: Vec<BadInput<'_>> = vec![
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            "{".into(),
            400,
            "malformed_json",
            None,
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            "".into(),
            400,
            "malformed_json",
            None,
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":"a","type":"info",}"#.into(),
            400,
            "malformed_json",
            None,
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            "[1,2]".into(),
            422,
            "invalid_body",
            None,
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            "\"text\"".into(),
            422,
            "invalid_body",
            None,
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"type":"info"}"#.into(),
            422,
            "invalid_field",
            Some("message"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":null,"type":"info"}"#.into(),
            422,
            "invalid_field",
            Some("message"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":"","type":"info"}"#.into(),
            422,
            "invalid_field",
            Some("message"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":"   ","type":"info"}"#.into(),
            422,
            "invalid_field",
            Some("message"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            format!(r#"{{"message":"{long}","type":"info"}}"#),
            422,
            "invalid_field",
            Some("message"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":42,"type":"info"}"#.into(),
            422,
            "invalid_field",
            Some("message"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":"a"}"#.into(),
            422,
            "invalid_field",
            Some("type"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":"a","type":"urgent"}"#.into(),
            422,
            "invalid_field",
            Some("type"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":"a","type":"INFO"}"#.into(),
            422,
            "invalid_field",
            Some("type"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":"a","type":7}"#.into(),
            422,
            "invalid_field",
            Some("type"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":"a","type":"info","userId":5}"#.into(),
            422,
            "invalid_field",
            Some("userId"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":"a","type":"info","userId":""}"#.into(),
            422,
            "invalid_field",
            Some("userId"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":"a","type":"info","metadata":[1]}"#.into(),
            422,
            "invalid_field",
            Some("metadata"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":"a","type":"info","metadata":"x"}"#.into(),
            422,
            "invalid_field",
            Some("metadata"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            format!(r#"{{"message":"a","type":"info","metadata":{big_metadata}}}"#),
            422,
            "invalid_field",
            Some("metadata"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            huge_body,
            413,
            "body_too_large",
            None,
        ),
        (
            "POST",
            "/api/notifications".into(),
            None,
            r#"{"message":"a","type":"info"}"#.into(),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some("text/plain"),
            r#"{"message":"a","type":"info"}"#.into(),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "GET",
            "/api/notifications?limit=0".into(),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("limit"),
        ),
        (
            "GET",
            "/api/notifications?limit=501".into(),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("limit"),
        ),
        (
            "GET",
            "/api/notifications?limit=ten".into(),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("limit"),
        ),
        (
            "GET",
            "/api/notifications?limit=-1".into(),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("limit"),
        ),
        (
            "GET",
            "/api/notifications?type=urgent".into(),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("type"),
        ),
        (
            "GET",
            "/api/notifications?before=yesterday".into(),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("before"),
        ),
        (
            "GET",
            "/api/notifications?before=0190a0a0-0000-7000-8000-000000000000".into(),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("before"),
        ),
        (
            "GET",
            "/api/notifications?userId=".into(),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("userId"),
        ),
        (
            "GET",
            "/api/notifications/not-a-uuid".into(),
            None,
            String::new(),
            400,
            "invalid_path",
            Some("id"),
        ),
        (
            "GET",
            "/api/notifications/0190a0a0-0000-7000-8000-000000000000".into(),
            None,
            String::new(),
            404,
            "not_found",
            None,
        ),
        (
            "GET",
            "/api/nothing-here".into(),
            None,
            String::new(),
            404,
            "not_found",
            None,
        ),
        (
            "GET",
            "/api/jobs?job=backup".into(),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("job"),
        ),
        (
            "GET",
            "/api/jobs?before=7".into(),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("before"),
        ),
        (
            "GET",
            "/api/jobs?limit=0".into(),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("limit"),
        ),
        (
            "GET",
            "/api/users/nobody-known".into(),
            None,
            String::new(),
            404,
            "not_found",
            None,
        ),
        // PostgreSQL's text holds no NUL character: refused before it reaches the database.
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":"a\u0000b","type":"info"}"#.into(),
            422,
            "invalid_field",
            Some("message"),
        ),
        (
            "POST",
            "/api/notifications".into(),
            Some(json_type),
            r#"{"message":"a","type":"info","userId":"bob\u0000"}"#.into(),
            422,
            "invalid_field",
            Some("userId"),
        ),
        (
            "GET",
            "/api/notifications?userId=bob%00".into(),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("userId"),
        ),
        (
            "GET",
            format!("/api/notifications?userId={}", "u".repeat(257)),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("userId"),
        ),
        (
            "GET",
            "/api/sse/notifications?userId=bob%00".into(),
            None,
            String::new(),
            400,
            "invalid_query",
            Some("userId"),
        ),
        (
            "GET",
            "/api/users/bob%00".into(),
            None,
            String::new(),
            400,
            "invalid_path",
            Some("userId"),
        ),
        (
            "DELETE",
            "/api/notifications".into(),
            None,
            String::new(),
            405,
            "method_not_allowed",
            None,
        ),
        (
            "PUT",
            "/api/health".into(),
            None,
            String::new(),
            405,
            "method_not_allowed",
            None,
        ),
    ];
    assert!(cases.len() >= 25);
    for (method, path, content_type, body, status, code, field) in cases {
        let mut request = server
            .client()
            .request(method.parse().unwrap(), server.url(&path))
            .body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        let got = response.status().as_u16();
        let text = response.text().await.unwrap();
        let shown: String = body.chars().take(60).collect();
        assert_eq!(got, status, "{method} {path} {shown:?}: {text}");
        let error: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: the error is not JSON: {text}"));
        assert_eq!(
            error["error"]["code"], code,
            "{method} {path} {shown:?}: {text}"
        );
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{text}"
        );
        assert_eq!(
            error["error"]["field"].as_str(),
            field,
            "{method} {path} {shown:?}: {text}"
        );
    }

    let key_too_long = "k".repeat(256);
    let response = server
        .client()
        .post(server.url("/api/notifications"))
        .header("idempotency-key", key_too_long)
        .json(&json!({"message": "a", "type": "info"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// A retried POST with the same Idempotency-Key returns the first result and creates nothing.
async fn honours_idempotency_keys(server: &Server) {
    let post = |key: &'static str, message: &'static str| {
        server
            .client()
            .post(server.url("/api/notifications"))
            .header("idempotency-key", key)
            .json(&json!({"message": message, "type": "success"}))
            .send()
    };
    let first = post("order-42", "paid").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let retry = post("order-42", "paid").await.unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(identity(&retry), identity(&first));
    let conflict = post("order-42", "refunded").await.unwrap();
    assert_eq!(conflict.status(), 422);
    let error: Value = conflict.json().await.unwrap();
    assert_eq!(error["error"]["code"], "idempotency_key_reused");

    let list: Value = server
        .get_json("/api/notifications?type=success&limit=500")
        .await;
    let paid = list["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["message"] == "paid")
        .count();
    assert_eq!(paid, 1);
}

#[tokio::test]
async fn rest_api_on_postgres_and_redis() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    serves_the_notification_api(&server).await;
    refuses_bad_input(&server).await;
    honours_idempotency_keys(&server).await;
}

#[tokio::test]
async fn rest_api_in_embedded_mode() {
    let server = Server::embedded(&[]).await;
    serves_the_notification_api(&server).await;
    refuses_bad_input(&server).await;
    honours_idempotency_keys(&server).await;
}

/// Without Kafka the processor's step runs in process: a created notification is delivered.
#[tokio::test]
async fn embedded_mode_processes_notifications_in_process() {
    let server = Server::embedded(&[]).await;
    let created = server
        .create(json!({"message": "process me", "type": "info"}))
        .await;
    let url = server.url(&format!(
        "/api/notifications/{}",
        created["id"].as_str().unwrap()
    ));
    let delivered = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let current: Value = server
                .client()
                .get(&url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if current["status"] != "pending" {
                return current;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("processed within 30 s");
    assert_eq!(delivered["status"], "delivered");
}

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

fn consumer(brokers: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", test_support::unique_name("rest-test"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

/// A consumed record: key, event JSON, and the event-id, event-type and traceparent headers.
type Record = (String, Value, String, String, String);

/// Reads records until `count` distinct events have arrived (Kafka may deliver one twice).
async fn read_records(consumer: &StreamConsumer, count: usize) -> Vec<Record> {
    let mut records: Vec<Record> = Vec::new();
    while records.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("a record within 60 s")
            .expect("consume");
        let header = |name: &str| {
            message
                .headers()
                .and_then(|headers| headers.iter().find(|h| h.key == name))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let event_id = header("event-id");
        if records.iter().any(|r| r.2 == event_id) {
            continue;
        }
        records.push((
            String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
            serde_json::from_slice(message.payload().unwrap_or_default()).unwrap(),
            event_id,
            header("event-type"),
            header("traceparent"),
        ));
    }
    records
}

#[tokio::test]
async fn created_notifications_are_published_to_kafka_with_headers() {
    let topic = test_support::kafka_topic(3).await;
    let backing = Backing::real().await;
    let server = Server::start(
        &backing,
        &[
            ("KAFKA_BROKERS", &topic.brokers),
            ("KAFKA_NOTIFICATIONS_TOPIC", &topic.name),
        ],
    )
    .await;
    let ready = server
        .client()
        .get(server.url("/api/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = server
        .client()
        .post(server.url("/api/notifications"))
        .header("traceparent", traceparent)
        .json(&json!({"message": "to kafka", "type": "info", "userId": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();

    let consumer = consumer(&topic.brokers, &topic.name);
    let records = read_records(&consumer, 1).await;
    let (key, event, event_id, event_type, _) = &records[0];
    assert_eq!(
        key,
        created["id"].as_str().unwrap(),
        "keyed by notification id"
    );
    assert_eq!(event["type"], "notification.created");
    assert_eq!(event_type, "notification.created");
    assert_eq!(event["id"].as_str().unwrap(), event_id);
    assert_eq!(event["notification"], created);
    assert_eq!(event["sequence"], created["sequence"]);
    let carried = &records[0].4;
    assert!(
        carried.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "the record continues the caller's trace: {carried:?}"
    );
}

#[tokio::test]
async fn notifications_created_while_kafka_is_down_arrive_when_it_returns() {
    let kafka = test_support::PrivateEnv::start(&["kafka"]).await;
    let brokers = kafka.var("KAFKA_BROKERS").to_owned();
    let topic = "herald.notifications";
    create_topic(&brokers, topic).await;
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[("KAFKA_BROKERS", &brokers)]).await;
    let mut created = vec![
        server
            .create(json!({"message": "before", "type": "info"}))
            .await,
    ];

    kafka.stop("kafka").await;
    for i in 0..20 {
        created.push(
            server
                .create(json!({"message": format!("during {i}"), "type": "info"}))
                .await,
        );
    }
    kafka.restart("kafka").await;

    let consumer = consumer(&brokers, topic);
    let records = read_records(&consumer, 21).await;
    let mut sequences: Vec<i64> = records
        .iter()
        .map(|r| r.1["sequence"].as_i64().unwrap())
        .collect();
    sequences.sort_unstable();
    let expected: Vec<i64> = created
        .iter()
        .map(|n| n["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(
        sequences, expected,
        "every acknowledged notification reached Kafka"
    );
    drop(kafka);
}

async fn create_topic(brokers: &str, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let results = admin
        .create_topics(
            [&NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    for result in results {
        result.unwrap();
    }
}

/// Browsers on another origin (the seed's React frontend on :3000) may call the API, and only
/// the origins configured when a list is given.
#[tokio::test]
async fn cors_lets_configured_origins_call_the_api() {
    let preflight = |server: &Server, origin: &'static str| {
        server
            .client()
            .request(reqwest::Method::OPTIONS, server.url("/api/notifications"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,idempotency-key",
            )
            .send()
    };
    let open = Server::embedded(&[]).await;
    let response = preflight(&open, "http://localhost:3000").await.unwrap();
    assert!(response.status().is_success());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");

    let restricted = Server::embedded(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")]).await;
    let allowed = preflight(&restricted, "https://app.example.com")
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let foreign = preflight(&restricted, "https://evil.example.net")
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// Without Kafka the server runs the batch jobs on their schedules too; runs are listed.
#[tokio::test]
async fn embedded_mode_runs_the_job_schedules_and_lists_their_runs() {
    let server = Server::embedded(&[
        ("SCHEDULE_USER_SYNC", "* * * * * *"),
        ("SCHEDULE_CLEANUP", "off"),
        ("SCHEDULE_REPORT", "off"),
    ])
    .await;
    server
        .create(json!({"message": "for dave", "type": "info", "userId": "dave"}))
        .await;
    let runs = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let page: Value = server.get_json("/api/jobs?job=user-sync").await;
            let finished = page["runs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|run| run["status"] == "succeeded");
            if finished {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("a user-sync run within 30 s");
    assert_eq!(runs["runs"][0]["job"], "user-sync");
}

/// A schedule that is not a cron expression stops the start with a message naming it.
#[tokio::test]
async fn a_bad_schedule_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_api-server"))
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("KAFKA_BROKERS")
        .env("HERALD_DATA_DIR", dir.path())
        .env("PORT", "0")
        .env("SCHEDULE_REPORT", "every hour")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("every hour") && stderr.contains("report"),
        "{stderr}"
    );
}
