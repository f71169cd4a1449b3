//! Whose notifications a stream carries, decided from its caller.

use crate::auth::{Denied, Principal};

/// Whose notifications a stream carries, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    /// Broadcasts and this user's notifications; `None`: everything.
    pub user: Option<String>,
    /// Unix seconds when the caller's credential expires.
    pub expires: Option<u64>,
}

impl Audience {
    /// What `caller` gets when asking for `requested` user's stream: a user their own, a
    /// service with `read:all` whatever it asks for.
    pub fn of(caller: &Principal, requested: Option<String>) -> Result<Self, Denied> {
        let view = caller.view(requested)?;
        Ok(Self {
            user: view.visible_to.or(view.user),
            expires: caller.expires(),
        })
    }
}
