//! The notifications loadgen creates: each carries its run, its index and its send time in
//! `metadata`, so a receiving client can tell its own deliveries apart and time them.

use std::time::Duration;

use hyper::Method;
use hyper::body::Bytes;
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::http::{self, ErrorKind, Sender};
use crate::target::Target;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub loadgen_run: String,
    pub loadgen_index: u64,
    /// [`clock::now_micros`] when the POST was due.
    pub sent_at_micros: u64,
}

/// A name for this run, distinct from any other run's on the same server.
pub fn run_id() -> String {
    format!("{}-{}", std::process::id(), clock::now_micros())
}

/// The body of a POST that creates probe `index` of `run`, sent at `sent_at_micros`.
pub fn body(run: &str, index: u64, sent_at_micros: u64) -> Bytes {
    let probe = Probe {
        loadgen_run: run.to_owned(),
        loadgen_index: index,
        sent_at_micros,
    };
    let body = serde_json::json!({
        "message": format!("loadgen probe {index}"),
        "type": "info",
        "metadata": probe,
    });
    Bytes::from(body.to_string())
}

/// The fields of a received notification that loadgen looks at; others are skipped unparsed.
#[derive(Debug, Default, Deserialize)]
pub struct NotificationView {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub metadata: Option<MetadataView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataView {
    #[serde(default)]
    pub loadgen_run: Option<String>,
    #[serde(default)]
    pub loadgen_index: Option<u64>,
    #[serde(default)]
    pub sent_at_micros: Option<u64>,
}

impl NotificationView {
    /// Index and send time, if this is a probe of `run`.
    pub fn probe_of(&self, run: &str) -> Option<(u64, u64)> {
        let metadata = self.metadata.as_ref()?;
        if metadata.loadgen_run.as_deref() != Some(run) {
            return None;
        }
        Some((metadata.loadgen_index?, metadata.sent_at_micros?))
    }
}

/// Creates probes through `POST /api/notifications` on one keep-alive connection, reconnecting
/// after a broken exchange.
pub struct Publisher {
    target: Target,
    run: String,
    timeout: Duration,
    sender: Option<Sender>,
}

impl Publisher {
    pub fn new(target: Target, run: String, timeout: Duration) -> Self {
        Self {
            target,
            run,
            timeout,
            sender: None,
        }
    }

    /// Creates probe `index`, stamped as sent at `sent_at_micros` (the time it was due, so
    /// that waiting for a connection counts); Ok once the server answered 201.
    pub async fn publish(&mut self, index: u64, sent_at_micros: u64) -> Result<(), ErrorKind> {
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => self
                .sender
                .insert(http::connect(&self.target, self.timeout).await?),
        };
        let request = http::request(
            &self.target,
            Method::POST,
            "/api/notifications",
            Some(body(&self.run, index, sent_at_micros)),
        );
        match http::send(sender, request, self.timeout).await {
            Ok((status, _)) if status == hyper::StatusCode::CREATED => Ok(()),
            Ok((status, _)) => Err(ErrorKind::Status(status)),
            Err(kind) => {
                self.sender = None;
                Err(kind)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_round_trips_through_a_notification() {
        let sent: serde_json::Value = serde_json::from_slice(&body("run-1", 7, 99)).unwrap();
        assert_eq!(sent["type"], "info");
        // As the server returns it: the notification with more fields around the metadata.
        let received = serde_json::json!({
            "id": "0190-...", "sequence": 3, "message": sent["message"], "type": "info",
            "status": "delivered", "metadata": sent["metadata"], "createdAt": "2026-01-01T00:00:00Z",
        });
        let view: NotificationView = serde_json::from_value(received).unwrap();
        assert_eq!(view.probe_of("run-1"), Some((7, 99)));
        assert_eq!(view.status.as_deref(), Some("delivered"));
        assert_eq!(view.probe_of("run-2"), None);
    }

    #[test]
    fn other_notifications_are_not_probes() {
        for other in [
            serde_json::json!({"status": "pending"}),
            serde_json::json!({"metadata": {"source": "billing"}}),
            serde_json::json!({"metadata": null}),
        ] {
            let view: NotificationView = serde_json::from_value(other).unwrap();
            assert_eq!(view.probe_of("run-1"), None);
        }
    }
}
