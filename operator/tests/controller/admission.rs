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
        (
            json!({"auth": {"jwt": {
                "secretRef": {"name": "jwt", "key": "hmac"},
                "jwksUrl": "https://idp.example/jwks.json",
            }}}),
            "jwt needs exactly one of secretRef, publicKeySecretRef and jwksUrl",
        ),
        (
            json!({"auth": {"jwt": {"issuer": "https://idp.example"}}}),
            "jwt needs exactly one of secretRef, publicKeySecretRef and jwksUrl",
        ),
        (
            json!({"auth": {"insecureNoAuth": true, "apiKeysSecretRef": {"name": "k", "key": "keys"}}}),
            "insecureNoAuth cannot be combined with jwt or apiKeysSecretRef",
        ),
        (
            json!({"auth": {"insecureNoAuth": true, "jwt": {"jwksUrl": "https://idp.example/jwks.json"}}}),
            "insecureNoAuth cannot be combined with jwt or apiKeysSecretRef",
        ),
        (
            json!({"auth": {"jwt": {"jwksUrl": "http://idp.example/jwks.json"}}}),
            "jwksUrl must be an https:// URL",
        ),
        (
            json!({"auth": {"jwt": {"jwksUrl": "idp.example/jwks.json"}}}),
            "jwksUrl must be an https:// URL",
        ),
        (
            json!({"auth": {"allowedOrigins": ["https://app.example/path"]}}),
            "spec.auth.allowedOrigins[0]",
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
async fn valid_auth_settings_are_accepted() {
    let env = start(&settings().kafka_brokers).await;
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    for (i, auth) in [
        json!({"jwt": {"jwksUrl": "https://idp.example/.well-known/jwks.json", "issuer": "https://idp.example", "audience": "herald"}}),
        json!({"jwt": {"jwksUrl": "http://keycloak.auth.svc:8080/realms/herald/protocol/openid-connect/certs"}}),
        json!({"jwt": {"jwksUrl": "http://keycloak.auth.svc.cluster.local/certs"}}),
        json!({"jwt": {"jwksUrl": "http://localhost:8080/jwks.json"}}),
        json!({"jwt": {"publicKeySecretRef": {"name": "idp", "key": "public.pem"}}, "apiKeysSecretRef": {"name": "k", "key": "keys"}}),
        json!({"insecureNoAuth": true, "allowedOrigins": ["https://app.example", "http://localhost:5173"]}),
        json!({"allowedOrigins": ["*"]}),
    ]
    .into_iter()
    .enumerate()
    {
        let platform =
            NotificationPlatform::new(&format!("valid-{i}"), env.spec(json!({"auth": auth})));
        if let Err(error) = env.platforms.create(&dry_run, &platform).await {
            panic!("{auth} was refused: {error}");
        }
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
