//! The part of a Kubernetes API error a person needs.

/// The API server's own message for a request it refused; kube's Display of it appends a debug
/// dump of the whole Status, which crowds out the message in Events and logs.
pub(super) fn kube_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        error => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    #[test]
    fn a_refused_request_gives_the_api_servers_message_alone() {
        let message = r#"Deployment.apps "demo-api" is invalid: spec.replicas: Invalid value"#;
        let refused = kube::Error::Api(Status::failure(message, "Invalid").with_code(422).boxed());
        assert_eq!(kube_message(&refused), message);
        let without_message = kube::Error::Api(Status::failure("", "NotFound").boxed());
        assert_eq!(kube_message(&without_message), without_message.to_string());
    }
}
