//! What the stream clients read: which event a notification arrived in.

use crate::probe::NotificationView;

/// Which event a notification arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `notification`: it was created.
    Created,
    /// `notification.updated` (Socket.IO: `notification:updated`): its status changed.
    Updated,
}

impl Kind {
    pub(super) fn of_event(name: &str) -> Option<Self> {
        match name {
            "notification" => Some(Self::Created),
            "notification.updated" | "notification:updated" => Some(Self::Updated),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct Received {
    pub kind: Kind,
    pub notification: NotificationView,
}

/// What every transport's server sends once the stream is live.
pub(super) const LIVE_EVENT: &str = "recovered";
