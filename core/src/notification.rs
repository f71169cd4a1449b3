//! The notification: what clients create, list and receive.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::string_enum::string_enum;

pub const MAX_MESSAGE_CHARS: usize = 4096;
pub const MAX_METADATA_BYTES: usize = 8 * 1024;
pub const MAX_USER_ID_CHARS: usize = 256;

/// What is wrong with `user` as a user id, to follow the name of the field it came in.
pub fn check_user_id(user: &str) -> Result<(), String> {
    if user.is_empty() || user.chars().count() > MAX_USER_ID_CHARS {
        return Err(format!("must have 1 to {MAX_USER_ID_CHARS} characters"));
    }
    check_text(user)
}

/// PostgreSQL's text cannot hold the NUL character; refused up front, it is a client's
/// mistake rather than a failed transaction.
fn check_text(text: &str) -> Result<(), String> {
    if text.contains('\0') {
        return Err("must not contain the NUL character (U+0000)".into());
    }
    Ok(())
}

string_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, utoipa::ToSchema)]
    pub enum NotificationType {
        Info = "info",
        Warning = "warning",
        Error = "error",
        Success = "success",
    }
}

string_enum! {
    /// Where a notification is in its life: created by the api-server, then marked by the processor.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, utoipa::ToSchema)]
    pub enum Status {
        Pending = "pending",
        Delivered = "delivered",
        Failed = "failed",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: Uuid,
    /// Position in the platform-wide event log when the notification was created; increases
    /// with every notification, so clients page and resume by it.
    pub sequence: i64,
    pub message: String,
    #[serde(rename = "type")]
    pub kind: NotificationType,
    /// The user it is for; absent means a broadcast to everyone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated request to create a notification.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub message: String,
    pub kind: NotificationType,
    pub user_id: Option<String>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Why a notification cannot be created; `field` names the offending JSON field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidField {
    pub field: &'static str,
    pub message: String,
}

impl NewNotification {
    pub fn new(
        message: String,
        kind: NotificationType,
        user_id: Option<String>,
        metadata: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Self, InvalidField> {
        let invalid = |field, message: String| Err(InvalidField { field, message });
        let chars = message.chars().count();
        if message.trim().is_empty() {
            return invalid("message", "message must not be empty".into());
        }
        if chars > MAX_MESSAGE_CHARS {
            return invalid(
                "message",
                format!("message has {chars} characters; at most {MAX_MESSAGE_CHARS} are allowed"),
            );
        }
        if let Err(problem) = check_text(&message) {
            return invalid("message", format!("message {problem}"));
        }
        if let Some(Err(problem)) = user_id.as_deref().map(check_user_id) {
            return invalid("userId", format!("userId {problem}"));
        }
        if let Some(metadata) = &metadata {
            let bytes = serde_json::to_vec(metadata).map_or(usize::MAX, |v| v.len());
            if bytes > MAX_METADATA_BYTES {
                return invalid(
                    "metadata",
                    format!(
                        "metadata is {bytes} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed"
                    ),
                );
            }
        }
        Ok(Self {
            message,
            kind,
            user_id,
            metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(message: &str) -> Result<NewNotification, InvalidField> {
        NewNotification::new(message.into(), NotificationType::Info, None, None)
    }

    #[test]
    fn message_bounds_count_characters_not_bytes() {
        assert!(new("").is_err());
        assert!(new("   ").is_err());
        assert!(new(&"é".repeat(MAX_MESSAGE_CHARS)).is_ok());
        let too_long = new(&"a".repeat(MAX_MESSAGE_CHARS + 1)).unwrap_err();
        assert_eq!(too_long.field, "message");
    }

    #[test]
    fn text_with_a_nul_character_is_refused() {
        assert_eq!(new("a\0b").unwrap_err().field, "message");
        let user =
            NewNotification::new("a".into(), NotificationType::Info, Some("\0".into()), None);
        assert_eq!(user.unwrap_err().field, "userId");
        assert!(check_user_id("bob").is_ok());
        assert!(check_user_id("").is_err());
        assert!(check_user_id(&"u".repeat(MAX_USER_ID_CHARS + 1)).is_err());
    }

    #[test]
    fn metadata_is_bounded_by_its_json_size() {
        let mut metadata = serde_json::Map::new();
        metadata.insert("k".into(), "x".repeat(MAX_METADATA_BYTES).into());
        let error = NewNotification::new("hi".into(), NotificationType::Info, None, Some(metadata))
            .unwrap_err();
        assert_eq!(error.field, "metadata");
    }

    #[test]
    fn serializes_as_the_seed_clients_expect() {
        let notification = Notification {
            id: Uuid::nil(),
            sequence: 7,
            message: "hello".into(),
            kind: NotificationType::Warning,
            user_id: None,
            metadata: None,
            status: Status::Pending,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        };
        let json = serde_json::to_value(&notification).unwrap();
        assert_eq!(json["type"], "warning");
        assert_eq!(json["status"], "pending");
        assert_eq!(json["sequence"], 7);
        assert!(json.get("userId").is_none());
        assert_eq!(json["createdAt"], "1970-01-01T00:00:00Z");
    }
}
