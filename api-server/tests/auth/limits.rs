//! Rate limits per caller: publishing, stream connects and failed authentications.

use reqwest::Method;
use serde_json::json;

use crate::{Secured, call, tokens};

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let secured = Secured::embedded(&[
        ("RATE_LIMIT_PUBLISH", "2"),
        ("RATE_LIMIT_CONNECT", "2"),
        ("RATE_LIMIT_AUTH_FAILURES", "3"),
    ])
    .await;
    let server = &secured.server;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, headers, body) = call(
            server,
            Method::POST,
            "/api/notifications",
            Some(&secured.keys.publisher),
            Some(json!({"message": "m", "type": "info"})),
        )
        .await;
        statuses.push(status);
        if status == 429 {
            assert_eq!(body["error"]["code"], "rate_limited");
            let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(wait >= 1, "Retry-After {wait}");
        }
    }
    assert_eq!(statuses, [201, 201, 429]);
    // Another key is counted on its own.
    let (status, _, _) = call(
        server,
        Method::GET,
        "/api/notifications",
        Some(&secured.keys.reader),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let failures: Vec<u16> = futures::future::join_all((0..4).map(|_| async {
        call(
            server,
            Method::GET,
            "/api/notifications",
            Some("garbage"),
            None,
        )
        .await
        .0
    }))
    .await;
    assert_eq!(
        failures.iter().filter(|s| **s == 429).count(),
        1,
        "{failures:?}"
    );
    let alice = tokens::user("alice");
    let mut connects = Vec::new();
    let mut open = Vec::new();
    for _ in 0..3 {
        let response = server
            .client()
            .get(server.url("/api/sse/notifications"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        connects.push(response.status().as_u16());
        open.push(response);
    }
    assert_eq!(connects, [200, 200, 429]);
    let metrics = secured.metrics().await;
    for limit in ["publish", "connect", "auth_failures"] {
        assert!(
            metrics.contains(&format!("herald_rate_limited_total{{limit=\"{limit}\"}} 1")),
            "{limit}: {metrics}"
        );
    }
}
