//! What every deployment of the API must do, whatever stores it uses.

use serde_json::{Value, json};

use crate::common::Server;

/// The fields a notification keeps for life; `status` and `updatedAt` change once the
/// processor (here, or the in-process step of a server without Kafka) has handled it.
pub fn identity(notification: &Value) -> Value {
    let mut fixed = notification.clone();
    if let Some(object) = fixed.as_object_mut() {
        object.remove("status");
        object.remove("updatedAt");
    }
    fixed
}

pub fn identities(list: &Value) -> Value {
    Value::Array(
        list.as_array()
            .expect("an array")
            .iter()
            .map(identity)
            .collect(),
    )
}

/// What every deployment of the API must do, whatever stores it uses.
pub async fn serves_the_notification_api(server: &Server) {
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

/// A retried POST with the same Idempotency-Key returns the first result and creates nothing.
pub async fn honours_idempotency_keys(server: &Server) {
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
