//! Which Kubernetes Events a reconcile publishes: status transitions a user should see in
//! `kubectl describe`, not one event per reconcile.

use kube::runtime::events::{Event, EventType};

use crate::crd::NotificationPlatformStatus;
use crate::kafka_topics::TopicsReport;
use crate::status::{DEGRADED, READY, condition};

pub fn transitions(
    previous: Option<&NotificationPlatformStatus>,
    next: &NotificationPlatformStatus,
) -> Vec<Event> {
    let before = |type_| previous.and_then(|p| condition(p, type_));
    let mut events = vec![];
    if let Some(degraded) = condition(next, DEGRADED) {
        let was = before(DEGRADED);
        let was_degraded = was.is_some_and(|c| c.status == "True");
        if degraded.status == "True"
            && (!was_degraded || was.is_some_and(|c| c.reason != degraded.reason))
        {
            events.push(event(
                EventType::Warning,
                &degraded.reason,
                degraded.message.clone(),
            ));
        } else if degraded.status == "False" && was_degraded {
            events.push(event(
                EventType::Normal,
                "Recovered",
                degraded.message.clone(),
            ));
        }
    }
    if let Some(ready) = condition(next, READY)
        && ready.status == "True"
        && before(READY).is_none_or(|c| c.status != "True")
    {
        events.push(event(EventType::Normal, "Ready", ready.message.clone()));
    }
    events
}

pub fn topic_changes(report: &TopicsReport) -> Vec<Event> {
    let created = report.created.iter().map(|t| {
        event(
            EventType::Normal,
            "TopicCreated",
            format!("created Kafka topic {t}"),
        )
    });
    let grown = report.grown.iter().map(|(t, from, to)| {
        event(
            EventType::Normal,
            "PartitionsIncreased",
            format!("Kafka topic {t}: partitions {from} -> {to}"),
        )
    });
    let configured = report.reconfigured.iter().map(|t| {
        event(
            EventType::Normal,
            "TopicConfigChanged",
            format!("Kafka topic {t}: configs updated"),
        )
    });
    created.chain(grown).chain(configured).collect()
}

pub fn event(type_: EventType, reason: &str, note: String) -> Event {
    Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn status(conditions: &[(&str, &str, &str)]) -> NotificationPlatformStatus {
        NotificationPlatformStatus {
            conditions: conditions
                .iter()
                .map(|(type_, status, reason)| Condition {
                    type_: (*type_).into(),
                    status: (*status).into(),
                    reason: (*reason).into(),
                    message: format!("{reason} message"),
                    observed_generation: None,
                    last_transition_time: Time(Timestamp::UNIX_EPOCH),
                })
                .collect(),
            ..NotificationPlatformStatus::default()
        }
    }

    fn reasons(events: &[Event]) -> Vec<(EventType, &str)> {
        events
            .iter()
            .map(|e| (e.type_, e.reason.as_str()))
            .collect()
    }

    #[test]
    fn warns_when_degraded_starts_or_changes_reason() {
        let ok = status(&[(DEGRADED, "False", "AsExpected"), (READY, "True", "Ready")]);
        let down = status(&[
            (DEGRADED, "True", "KafkaUnreachable"),
            (READY, "False", "KafkaUnreachable"),
        ]);
        let other = status(&[
            (DEGRADED, "True", "ScheduleRejected"),
            (READY, "False", "ScheduleRejected"),
        ]);
        assert_eq!(
            reasons(&transitions(Some(&ok), &down)),
            [(EventType::Warning, "KafkaUnreachable")]
        );
        assert!(
            transitions(Some(&down), &down).is_empty(),
            "no event while nothing changes"
        );
        assert_eq!(
            reasons(&transitions(Some(&down), &other)),
            [(EventType::Warning, "ScheduleRejected")]
        );
        assert_eq!(
            reasons(&transitions(Some(&down), &ok)),
            [
                (EventType::Normal, "Recovered"),
                (EventType::Normal, "Ready")
            ]
        );
        assert_eq!(
            reasons(&transitions(None, &ok)),
            [(EventType::Normal, "Ready")]
        );
    }

    #[test]
    fn one_event_per_topic_change() {
        let report = TopicsReport {
            created: vec!["a".into()],
            grown: vec![("b".into(), 1, 4)],
            ..TopicsReport::default()
        };
        let events = topic_changes(&report);
        assert_eq!(
            reasons(&events),
            [
                (EventType::Normal, "TopicCreated"),
                (EventType::Normal, "PartitionsIncreased")
            ]
        );
        assert_eq!(
            events[1].note.as_deref(),
            Some("Kafka topic b: partitions 1 -> 4")
        );
    }
}
