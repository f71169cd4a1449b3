//! What the API server refuses: invalid platforms at admission, invalid children when applied.

use kube::Api;
use kube::api::{ApiResource, DynamicObject, PostParams};
use operator::crd::{ChildState, NotificationPlatform};
use serde_json::json;
use test_support::settings;

use crate::common::start;

#[tokio::test]
async fn invalid_resources_are_rejected_by_the_api_server() {
    let env = start(&settings().kafka_brokers).await;
    let platforms: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        &env.namespace,
        &ApiResource::erase::<NotificationPlatform>(&()),
    );
    let cases = [
        (json!({"api": {"replicas": 100}}), "spec.api.replicas"),
        (
            json!({"schedules": [{"name": "x", "schedule": "every minute", "job": "report"}]}),
            "schedule must be a cron expression",
        ),
        (
            json!({"schedules": [
                {"name": "x", "schedule": "@daily", "job": "report"},
                {"name": "x", "schedule": "@hourly", "job": "cleanup"},
            ]}),
            "Duplicate value",
        ),
        (
            json!({"kafka": {"notificationsTopic": "missing"}}),
            "notificationsTopic must name one of kafka.topics",
        ),
        (
            json!({"schedules": [{"name": "x", "schedule": "@daily", "job": "backup"}]}),
            "supported values",
        ),
    ];
    for (i, (extra, expected)) in cases.into_iter().enumerate() {
        let name = format!("invalid-{i}");
        // Raw JSON: some of these cases do not even deserialize into the Rust types.
        let mut object =
            DynamicObject::new(&name, &ApiResource::erase::<NotificationPlatform>(&()));
        object.data = json!({"spec": env.spec_json(extra.clone())});
        let error = platforms
            .create(&PostParams::default(), &object)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        let message = error.expect_err(&format!("{extra} was accepted"));
        assert!(
            message.contains(expected),
            "{extra}: expected {expected:?} in {message}"
        );
    }
}

#[tokio::test]
async fn schedule_the_api_server_rejects_is_reported_in_status_and_events() {
    let env = start(&settings().kafka_brokers).await;
    // Five fields pass the admission shape check; minute 61 does not exist.
    let spec = env.spec(
        json!({"schedules": [{"name": "broken", "schedule": "61 * * * *", "job": "report"}]}),
    );
    env.create("sched", spec).await;

    let platform = env
        .condition("sched", "Degraded", "True", Some("ScheduleRejected"))
        .await;
    let status = platform.status.unwrap();
    let broken = &status.schedules[0];
    assert_eq!(broken.state, ChildState::Failed);
    assert!(
        broken
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("schedule"),
        "{broken:?}"
    );
    env.condition("sched", "SchedulesReady", "False", Some("ScheduleRejected"))
        .await;
    env.event("Warning", "ScheduleRejected").await;
    // The rest of the platform is applied regardless.
    assert!(
        env.deployments
            .get_opt("sched-api")
            .await
            .unwrap()
            .is_some()
    );
}
