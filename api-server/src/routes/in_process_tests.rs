//! The REST handlers called in process through their routers (`oneshot`), on an embedded
//! database in a temporary directory: what a handler answers, with no server or network.
//! The same API on real PostgreSQL, Redis and Kafka is tested in `tests/rest/`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use herald_core::db::Db;
use herald_core::fanout::Fanout;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{jobs, notifications, users};
use crate::auth::{Authenticator, Guard, Origins, RateLimits};
use crate::cache::ListCache;
use crate::metrics::Metrics;
use crate::relay::Handoff;
use crate::writer::{self, Announce, Writer};

struct Api {
    router: Router,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn api() -> Api {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    let db = Db::connect(&url, 4).await.expect("an embedded database");
    db.migrate().await.expect("migrations");
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let cache = Arc::new(ListCache::local(Duration::from_secs(60)));
    let fanout = Fanout::in_process(64);
    let (relay, _handed_over) = Handoff::new();
    let announce = Announce {
        cache: cache.clone(),
        fanout,
        metrics: metrics.clone(),
        relay,
    };
    let (writer, lanes) = Writer::new(1, db.clone(), announce);
    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    writer::spawn(lanes, &stop, &mut tasks);
    tasks.detach_all();
    let (router, _) = notifications::routes(notifications::Handles {
        db: db.clone(),
        cache,
        writer: Arc::new(writer),
        metrics: metrics.clone(),
    })
    .merge(jobs::routes(db.clone()))
    .merge(users::routes(db))
    .split_for_parts();
    // Authentication off: what these tests check is the handlers; tests/auth checks the guard.
    let guard = Guard {
        auth: Arc::new(Authenticator::off()),
        limits: Arc::new(RateLimits::new(0, 0, 0, metrics.clone())),
        origins: Origins::parse(&[]).expect("no origins"),
        metrics: metrics.clone(),
    };
    let router = router.layer(axum::Extension(Arc::new(guard)));
    Api {
        router,
        metrics,
        stop,
        _dir: dir,
    }
}

impl Api {
    async fn call(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("an answer");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON body")
        };
        (status, body)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn post(&self, content_type: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        let request = Request::post("/api/notifications")
            .header(header::CONTENT_TYPE, content_type)
            .body(body.into())
            .unwrap();
        self.call(request).await
    }
}

fn error_code(body: &Value) -> (&str, Option<&str>) {
    (
        body["error"]["code"].as_str().expect("an error code"),
        body["error"]["field"].as_str(),
    )
}

#[tokio::test]
async fn a_created_notification_is_listed_and_the_second_read_is_a_cache_hit() {
    let api = api().await;
    let body = json!({"message": "hello", "type": "info", "userId": "u1"}).to_string();
    let (status, created) = api.post("application/json", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["message"], "hello");
    assert_eq!(created["status"], "pending");

    let (status, page) = api.get("/api/notifications").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["notifications"][0]["id"], created["id"]);
    assert_eq!(api.metrics.cache_hits.get(), 0);
    let (_, again) = api.get("/api/notifications").await;
    assert_eq!(again, page);
    assert_eq!(api.metrics.cache_hits.get(), 1);
    // Shapes a client could vary without end are read from the database, never cached.
    let misses = api.metrics.cache_misses.get();
    for query in ["userId=u1", "before=999", "before=998", "userId=u2&limit=5"] {
        for _ in 0..2 {
            let (status, _) = api.get(&format!("/api/notifications?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}");
        }
    }
    assert_eq!(api.metrics.cache_hits.get(), 1);
    assert_eq!(api.metrics.cache_misses.get(), misses);
    let (_, filtered) = api.get("/api/notifications?userId=u1").await;
    assert_eq!(filtered["notifications"][0]["id"], created["id"]);

    let id = created["id"].as_str().unwrap();
    let (status, one) = api.get(&format!("/api/notifications/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["id"], created["id"]);
}

#[tokio::test]
async fn bad_input_is_a_4xx_naming_the_problem() {
    let api = api().await;
    let cases = [
        (
            api.post("text/plain", r#"{"message":"m","type":"info"}"#)
                .await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ("unsupported_media_type", None),
        ),
        (
            api.post("application/json", "{not json").await,
            StatusCode::BAD_REQUEST,
            ("malformed_json", None),
        ),
        (
            api.post("application/json", r#"{"message":"m","type":"loud"}"#)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            ("invalid_field", Some("type")),
        ),
        (
            api.post("application/json", r#"{"type":"info"}"#).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            ("invalid_field", Some("message")),
        ),
        (
            api.get("/api/notifications?limit=0").await,
            StatusCode::BAD_REQUEST,
            ("invalid_query", Some("limit")),
        ),
        (
            api.get("/api/notifications/not-an-id").await,
            StatusCode::BAD_REQUEST,
            ("invalid_path", Some("id")),
        ),
        (
            api.get("/api/jobs?job=backup").await,
            StatusCode::BAD_REQUEST,
            ("invalid_query", Some("job")),
        ),
        (
            api.get("/api/users/nobody").await,
            StatusCode::NOT_FOUND,
            ("not_found", None),
        ),
    ];
    for ((status, body), expected_status, expected) in cases {
        assert_eq!(status, expected_status, "{body}");
        assert_eq!(error_code(&body), expected, "{body}");
    }
}

#[tokio::test]
async fn marking_a_user_seen_answers_no_content() {
    let api = api().await;
    let request = Request::put("/api/users/u1/seen")
        .body(Body::empty())
        .unwrap();
    let (status, body) = api.call(request).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
}
