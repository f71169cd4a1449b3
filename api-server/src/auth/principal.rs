//! Who a request comes from, and what that caller may see and do. Pure decisions, so every
//! rule is tested here without a server.

use super::scopes::{Scope, Scopes};

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Authentication is off (`--insecure-no-auth`): everyone may do everything.
    Anyone,
    /// A user, from a JWT: sees broadcasts and their own notifications.
    User {
        id: String,
        /// Unix seconds, leeway included: a stream ends then.
        expires: u64,
    },
    /// A service, from an API key: may do what its scopes say.
    Service {
        key_id: String,
        /// The key's name, for the logs.
        name: String,
        scopes: Scopes,
    },
}

/// Why an authenticated caller may not do something (403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub code: &'static str,
    pub message: String,
}

/// What a read shows: `visible_to` limits it to one user's view (broadcasts and theirs),
/// `user` to the notifications addressed to one user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct View {
    pub visible_to: Option<String>,
    pub user: Option<String>,
}

impl Principal {
    /// Who this is in the logs: `user:<id>` or `key:<name>`.
    pub fn describe(&self) -> String {
        match self {
            Self::Anyone => "anyone".to_owned(),
            Self::User { id, .. } => format!("user:{id}"),
            Self::Service { name, .. } => format!("key:{name}"),
        }
    }

    /// What rate limits count this caller as.
    pub fn limit_key(&self) -> Option<String> {
        match self {
            Self::Anyone => None,
            Self::User { id, .. } => Some(format!("user:{id}")),
            Self::Service { key_id, .. } => Some(format!("key:{key_id}")),
        }
    }

    pub fn expires(&self) -> Option<u64> {
        match self {
            Self::User { expires, .. } => Some(*expires),
            _ => None,
        }
    }

    pub fn require(&self, scope: Scope) -> Result<(), Denied> {
        let allowed = match self {
            Self::Anyone => true,
            Self::User { .. } => false,
            Self::Service { scopes, .. } => scopes.allows(scope),
        };
        if allowed {
            return Ok(());
        }
        Err(Denied {
            code: "insufficient_scope",
            message: match self {
                Self::User { .. } => format!(
                    "this needs an API key with the {} scope; a user token cannot do it",
                    scope.as_str()
                ),
                _ => format!("this API key lacks the {} scope", scope.as_str()),
            },
        })
    }

    /// The view of notifications this caller gets when asking for `requested` user's (the
    /// `userId` parameter): a user only their own, a service with `read:all` anyone's.
    pub fn view(&self, requested: Option<String>) -> Result<View, Denied> {
        match self {
            Self::User { id, .. } => {
                if let Some(other) = requested.as_ref().filter(|r| *r != id) {
                    return Err(other_user(other));
                }
                Ok(View {
                    visible_to: Some(id.clone()),
                    user: requested,
                })
            }
            _ => {
                self.require(Scope::ReadAll)?;
                Ok(View {
                    visible_to: None,
                    user: requested,
                })
            }
        }
    }

    /// Whether this caller may see a notification addressed to `target` (`None`: everyone).
    pub fn may_see(&self, target: Option<&str>) -> bool {
        match (self, target) {
            (Self::User { id, .. }, Some(target)) => id == target,
            (Self::User { .. }, None) => true,
            _ => self.require(Scope::ReadAll).is_ok(),
        }
    }

    /// `/api/users/{user}`: a user reads and marks only their own; a service reads with
    /// `read:all` and marks with `admin`.
    pub fn user_access(&self, user: &str, write: bool) -> Result<(), Denied> {
        match self {
            Self::User { id, .. } if id == user => Ok(()),
            Self::User { .. } => Err(other_user(user)),
            _ => self.require(if write { Scope::Admin } else { Scope::ReadAll }),
        }
    }
}

fn other_user(user: &str) -> Denied {
    Denied {
        code: "forbidden_user",
        message: format!("a user token may only access its own user, not {user:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> Principal {
        Principal::User {
            id: id.into(),
            expires: u64::MAX,
        }
    }

    fn service(scopes: &str) -> Principal {
        Principal::Service {
            key_id: "0123abcd".into(),
            name: "test".into(),
            scopes: Scopes::parse(scopes).unwrap(),
        }
    }

    #[test]
    fn users_see_their_own_view_only() {
        let alice = user("alice");
        let own = alice.view(None).unwrap();
        assert_eq!(own.visible_to.as_deref(), Some("alice"));
        assert_eq!(
            alice.view(Some("alice".into())).unwrap().user.as_deref(),
            Some("alice")
        );
        assert_eq!(
            alice.view(Some("bob".into())).unwrap_err().code,
            "forbidden_user"
        );
        assert!(alice.may_see(None) && alice.may_see(Some("alice")) && !alice.may_see(Some("bob")));
        assert_eq!(
            alice.require(Scope::Publish).unwrap_err().code,
            "insufficient_scope"
        );
        assert!(alice.user_access("alice", true).is_ok());
        assert_eq!(
            alice.user_access("bob", false).unwrap_err().code,
            "forbidden_user"
        );
    }

    #[test]
    fn services_do_what_their_scopes_say() {
        let publisher = service("publish");
        assert!(publisher.require(Scope::Publish).is_ok());
        assert_eq!(publisher.view(None).unwrap_err().code, "insufficient_scope");
        assert!(!publisher.may_see(None));
        let reader = service("read:all");
        assert_eq!(reader.view(Some("bob".into())).unwrap().visible_to, None);
        assert!(reader.may_see(Some("bob")) && reader.user_access("bob", false).is_ok());
        assert!(reader.user_access("bob", true).is_err());
        assert!(service("admin").user_access("bob", true).is_ok());
        assert!(Principal::Anyone.view(None).is_ok() && Principal::Anyone.may_see(Some("x")));
    }
}
