//! Status computed from what a reconcile observed: conditions with `observedGeneration` and a
//! `lastTransitionTime` that moves only when a condition's status does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{
    ChildState, ComponentStatus, NotificationPlatformStatus, ScheduleStatus, SecretKeyRef,
    TopicStatus,
};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const KAFKA_TOPICS_READY: &str = "KafkaTopicsReady";
pub const SCHEDULES_READY: &str = "SchedulesReady";

/// What happened with Kafka during a reconcile.
#[derive(Debug, Clone, PartialEq)]
pub enum KafkaOutcome {
    /// The broker answered; per-topic results.
    Checked(Vec<TopicStatus>),
    /// The topics could not be checked; `reason` is a condition reason (PascalCase).
    Unavailable {
        reason: &'static str,
        message: String,
    },
}

/// Everything the status is derived from.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub generation: Option<i64>,
    pub api: ComponentStatus,
    pub processor: ComponentStatus,
    /// Problems with the database and Redis Secrets the pods read.
    pub missing_secrets: Vec<String>,
    pub kafka: KafkaOutcome,
    pub schedules: Vec<ScheduleStatus>,
    /// Where the api-server reads its API keys; none with authentication off.
    pub api_keys: Option<SecretKeyRef>,
}

/// One condition as computed now, before merging with the previous ones.
struct Fresh {
    type_: &'static str,
    status: bool,
    reason: &'static str,
    message: String,
}

pub fn compute(
    previous: Option<&NotificationPlatformStatus>,
    observed: Observed,
    now: &Time,
) -> NotificationPlatformStatus {
    let rollout = replicas_message(&observed);
    let (topics, kafka_condition) = match observed.kafka {
        KafkaOutcome::Checked(topics) => {
            let failed: Vec<String> = topics
                .iter()
                .filter(|t| t.state != ChildState::Ready)
                .map(|t| {
                    format!(
                        "{}: {}",
                        t.name,
                        t.message.as_deref().unwrap_or("not ready")
                    )
                })
                .collect();
            let condition = if failed.is_empty() {
                fresh(
                    KAFKA_TOPICS_READY,
                    true,
                    "TopicsReady",
                    format!("{} topics ready", topics.len()),
                )
            } else {
                fresh(KAFKA_TOPICS_READY, false, "TopicFailed", failed.join("; "))
            };
            (topics, condition)
        }
        KafkaOutcome::Unavailable { reason, message } => {
            // Keep the last known topics, marked unknown, rather than forgetting them.
            let topics = previous
                .map(|p| p.topics.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|t| TopicStatus {
                    state: ChildState::Unknown,
                    message: None,
                    ..t
                })
                .collect();
            (topics, fresh(KAFKA_TOPICS_READY, false, reason, message))
        }
    };

    let failed_schedules: Vec<String> = observed
        .schedules
        .iter()
        .filter(|s| s.state != ChildState::Ready)
        .map(|s| {
            format!(
                "{}: {}",
                s.name,
                s.message.as_deref().unwrap_or("not ready")
            )
        })
        .collect();
    let schedules_condition = if failed_schedules.is_empty() {
        fresh(
            SCHEDULES_READY,
            true,
            "SchedulesApplied",
            format!("{} CronJobs applied", observed.schedules.len()),
        )
    } else {
        fresh(
            SCHEDULES_READY,
            false,
            "ScheduleRejected",
            failed_schedules.join("; "),
        )
    };

    let rolled_out = |c: &ComponentStatus| c.ready_replicas >= c.replicas;
    let progressing = if rolled_out(&observed.api) && rolled_out(&observed.processor) {
        fresh(PROGRESSING, false, "RolloutComplete", rollout)
    } else {
        fresh(PROGRESSING, true, "RollingOut", rollout)
    };

    let secrets_condition = (!observed.missing_secrets.is_empty()).then(|| {
        fresh(
            DEGRADED,
            false,
            "SecretMissing",
            observed.missing_secrets.join("; "),
        )
    });
    let degraded = secrets_condition
        .iter()
        .chain([&kafka_condition, &schedules_condition])
        .find(|c| !c.status)
        .map(|c| fresh(DEGRADED, true, c.reason, c.message.clone()))
        .unwrap_or_else(|| fresh(DEGRADED, false, "AsExpected", "all children applied".into()));

    let ready = if degraded.status {
        fresh(READY, false, degraded.reason, degraded.message.clone())
    } else if progressing.status {
        fresh(
            READY,
            false,
            progressing.reason,
            progressing.message.clone(),
        )
    } else {
        fresh(READY, true, "Ready", "platform is ready".into())
    };

    let fresh_conditions = [
        ready,
        progressing,
        degraded,
        kafka_condition,
        schedules_condition,
    ];
    NotificationPlatformStatus {
        observed_generation: observed.generation,
        conditions: merge(previous, fresh_conditions, observed.generation, now),
        api: observed.api,
        processor: observed.processor,
        topics,
        schedules: observed.schedules,
        api_keys: observed.api_keys,
    }
}

/// The status of a paused platform: everything as before, Progressing says why nothing moves.
pub fn paused(
    previous: Option<&NotificationPlatformStatus>,
    generation: Option<i64>,
    now: &Time,
) -> NotificationPlatformStatus {
    let mut status = previous.cloned().unwrap_or_default();
    let progressing = fresh(
        PROGRESSING,
        false,
        "Paused",
        "spec.paused is true: nothing is reconciled".into(),
    );
    let mut conditions = merge(previous, [progressing], generation, now);
    for condition in status.conditions.drain(..) {
        if !conditions.iter().any(|c| c.type_ == condition.type_) {
            conditions.push(condition);
        }
    }
    status.conditions = conditions;
    status.observed_generation = generation;
    status
}

fn replicas_message(observed: &Observed) -> String {
    format!(
        "api-server {}/{} ready, processor {}/{} ready",
        observed.api.ready_replicas,
        observed.api.replicas,
        observed.processor.ready_replicas,
        observed.processor.replicas
    )
}

fn fresh(type_: &'static str, status: bool, reason: &'static str, message: String) -> Fresh {
    Fresh {
        type_,
        status,
        reason,
        message,
    }
}

fn merge(
    previous: Option<&NotificationPlatformStatus>,
    fresh: impl IntoIterator<Item = Fresh>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    fresh
        .into_iter()
        .map(|f| {
            let status = if f.status { "True" } else { "False" }.to_owned();
            let last_transition_time = previous
                .and_then(|p| p.conditions.iter().find(|c| c.type_ == f.type_))
                .filter(|c| c.status == status)
                .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
            Condition {
                type_: f.type_.to_owned(),
                status,
                reason: f.reason.to_owned(),
                // The API server limits condition messages to 32 KiB.
                message: truncate(f.message, 4096),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

fn truncate(mut message: String, max: usize) -> String {
    if message.len() > max {
        let mut end = max;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// The condition of a type, if present.
pub fn condition<'a>(status: &'a NotificationPlatformStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn time(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn observed(api_ready: i32) -> Observed {
        Observed {
            generation: Some(2),
            api: ComponentStatus {
                replicas: 2,
                ready_replicas: api_ready,
            },
            processor: ComponentStatus {
                replicas: 1,
                ready_replicas: 1,
            },
            missing_secrets: vec![],
            kafka: KafkaOutcome::Checked(vec![TopicStatus {
                name: "notifications".into(),
                partitions: Some(3),
                state: ChildState::Ready,
                message: None,
            }]),
            schedules: vec![],
            api_keys: None,
        }
    }

    fn get<'a>(status: &'a NotificationPlatformStatus, type_: &str) -> &'a Condition {
        condition(status, type_).unwrap()
    }

    #[test]
    fn ready_when_rolled_out_and_kafka_fine() {
        let status = compute(None, observed(2), &time(10));
        assert_eq!(get(&status, READY).status, "True");
        assert_eq!(get(&status, PROGRESSING).status, "False");
        assert_eq!(get(&status, DEGRADED).status, "False");
        assert_eq!(get(&status, KAFKA_TOPICS_READY).status, "True");
        assert_eq!(status.observed_generation, Some(2));
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(2))
        );
    }

    #[test]
    fn progressing_while_replicas_are_missing() {
        let status = compute(None, observed(1), &time(10));
        assert_eq!(get(&status, READY).status, "False");
        assert_eq!(get(&status, READY).reason, "RollingOut");
        assert_eq!(
            get(&status, PROGRESSING).message,
            "api-server 1/2 ready, processor 1/1 ready"
        );
    }

    #[test]
    fn kafka_unavailable_degrades_and_keeps_topics_as_unknown() {
        let before = compute(None, observed(2), &time(10));
        let mut o = observed(2);
        o.kafka = KafkaOutcome::Unavailable {
            reason: "KafkaUnreachable",
            message: "timed out".into(),
        };
        let status = compute(Some(&before), o, &time(20));
        assert_eq!(get(&status, DEGRADED).status, "True");
        assert_eq!(get(&status, DEGRADED).reason, "KafkaUnreachable");
        assert_eq!(get(&status, READY).reason, "KafkaUnreachable");
        assert_eq!(status.topics[0].state, ChildState::Unknown);
        assert_eq!(status.topics[0].name, "notifications");
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let first = compute(None, observed(1), &time(10));
        // Same statuses, different message: the transition time stays.
        let mut o = observed(1);
        o.processor.ready_replicas = 0;
        let second = compute(Some(&first), o, &time(20));
        assert_eq!(get(&second, READY).last_transition_time, time(10));
        assert_ne!(
            get(&second, PROGRESSING).message,
            get(&first, PROGRESSING).message
        );
        // Ready flips: its time moves, Degraded's does not.
        let third = compute(Some(&second), observed(2), &time(30));
        assert_eq!(get(&third, READY).last_transition_time, time(30));
        assert_eq!(get(&third, DEGRADED).last_transition_time, time(10));
    }

    #[test]
    fn rejected_schedule_degrades_with_its_message() {
        let mut o = observed(2);
        o.schedules = vec![ScheduleStatus {
            name: "bad".into(),
            cron_job: "demo-bad".into(),
            state: ChildState::Failed,
            message: Some("invalid schedule".into()),
        }];
        let status = compute(None, o, &time(10));
        assert_eq!(get(&status, SCHEDULES_READY).status, "False");
        assert_eq!(get(&status, DEGRADED).reason, "ScheduleRejected");
        assert!(
            get(&status, DEGRADED)
                .message
                .contains("bad: invalid schedule")
        );
    }

    #[test]
    fn missing_secrets_degrade_first() {
        let mut o = observed(2);
        o.missing_secrets = vec!["database: Secret herald/db does not exist".into()];
        let status = compute(None, o, &time(10));
        assert_eq!(get(&status, DEGRADED).reason, "SecretMissing");
        assert_eq!(get(&status, READY).status, "False");
        assert!(get(&status, DEGRADED).message.contains("herald/db"));
    }

    #[test]
    fn paused_keeps_previous_conditions_and_says_so() {
        let before = compute(None, observed(2), &time(10));
        let status = paused(Some(&before), Some(3), &time(20));
        assert_eq!(get(&status, PROGRESSING).reason, "Paused");
        assert_eq!(get(&status, READY).status, "True");
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.conditions.len(), before.conditions.len());
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary() {
        let cut = truncate("é".repeat(3000), 4095);
        assert!(cut.len() <= 4095 + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
