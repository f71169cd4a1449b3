//! The handshake `auth` of a Socket.IO client: who it is (`token`), where it resumes and what
//! it wants.

use std::net::IpAddr;

use herald_core::notification::check_user_id;
use serde_json::Value;
use stream_protocols::socketio;

use crate::stream::audience::Audience;
use crate::stream::hub::Hub;
use crate::stream::params::parse_sequence;
use crate::stream::replay::Start;

/// Who a client is, where it resumes and what it wants, from the handshake `auth`.
#[derive(PartialEq, Eq)]
pub struct Resume {
    pub start: Start,
    pub user_id: Option<String>,
    /// A user token or an API key.
    pub token: Option<String>,
}

// By hand, so a token never reaches a log through `{:?}`.
impl std::fmt::Debug for Resume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resume")
            .field("start", &self.start)
            .field("user_id", &self.user_id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What the client's token lets it stream, or the `44` packet that refuses the connect (with
/// `data.code` as the REST API's error code: `missing_credentials`, `token_expired`, ...).
pub async fn admit(
    hub: &Hub,
    resume: &Resume,
    address: Option<IpAddr>,
) -> Result<Audience, String> {
    let refuse = |error: crate::error::ApiError| {
        socketio::connect_error_with_code(socketio::ROOT, &error.message, error.code)
    };
    let caller = hub
        .guard
        .identify(resume.token.as_deref(), address)
        .await
        .map_err(refuse)?;
    hub.guard.connect(&caller, address).map_err(refuse)?;
    Audience::of(&caller, resume.user_id.clone()).map_err(|denied| refuse(denied.into()))
}

impl Resume {
    /// The sequence to tell the client to resume after, before its stream started.
    pub fn last_sequence(&self) -> i64 {
        match self.start {
            Start::After(after) => after,
            Start::Live => 0,
        }
    }
}

pub fn parse_auth(auth: &Value) -> Result<Resume, String> {
    let fields = match auth {
        Value::Null => {
            return Ok(Resume {
                start: Start::Live,
                user_id: None,
                token: None,
            });
        }
        Value::Object(fields) => fields,
        _ => {
            return Err(
                "auth must be an object like {\"token\": \"...\", \"lastSequence\": 42}".into(),
            );
        }
    };
    let mut start = Start::Live;
    for name in ["lastSequence", "since", "offset"] {
        let after = match fields.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::Number(number)) => number.as_i64().filter(|n| *n >= 0),
            Some(Value::String(text)) => parse_sequence(text),
            Some(_) => None,
        };
        let after = after.ok_or_else(|| {
            format!("auth.{name} must be a sequence number (a whole number, 0 or more)")
        })?;
        start = Start::After(after);
        break;
    }
    let user_id = match fields.get("userId") {
        None | Some(Value::Null) => None,
        Some(Value::String(user)) => {
            check_user_id(user).map_err(|problem| format!("auth.userId {problem}"))?;
            Some(user.clone())
        }
        Some(_) => return Err("auth.userId must be a string".into()),
    };
    let token = match fields.get("token") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) => Some(token.clone()),
        Some(_) => return Err("auth.token must be a string".into()),
    };
    Ok(Resume {
        start,
        user_id,
        token,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn auth_names_the_resume_point_and_user() {
        let resume = parse_auth(&json!({"lastSequence": 42, "userId": "u1"})).unwrap();
        assert_eq!(
            resume,
            Resume {
                start: Start::After(42),
                user_id: Some("u1".into()),
                token: None,
            }
        );
        assert_eq!(
            parse_auth(&json!({"offset": "7"})).unwrap().start,
            Start::After(7)
        );
        assert_eq!(
            parse_auth(&json!({"since": 0})).unwrap().start,
            Start::After(0)
        );
        assert_eq!(parse_auth(&Value::Null).unwrap().start, Start::Live);
        assert_eq!(parse_auth(&json!({})).unwrap().start, Start::Live);
    }

    #[test]
    fn bad_auth_is_refused_with_a_reason() {
        for auth in [
            json!({"lastSequence": -1}),
            json!({"lastSequence": "soon"}),
            json!({"lastSequence": 1.5}),
            json!({"userId": ""}),
            json!({"userId": 7}),
            json!({"userId": "bob\u{0}"}),
            json!({"token": 42}),
            json!("token"),
        ] {
            assert!(parse_auth(&auth).is_err(), "{auth} was accepted");
        }
    }
}
