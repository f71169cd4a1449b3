//! HTTP/1.1 keep-alive connections over hyper, one per load worker, and the kinds of errors
//! a request can end in.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::target::Target;

pub type Body = Full<Bytes>;
pub type Sender = SendRequest<Body>;

/// How a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server answered with an unexpected status.
    Status(StatusCode),
    /// No connection could be made (refused, reset during the handshake).
    Connect,
    /// No complete answer within the request timeout.
    Timeout,
    /// The connection broke during the exchange.
    Io,
}

impl ErrorKind {
    pub fn label(self) -> String {
        match self {
            Self::Status(status) => format!("status_{}", status.as_u16()),
            Self::Connect => "connect".into(),
            Self::Timeout => "timeout".into(),
            Self::Io => "io".into(),
        }
    }

    /// Whether the connection is unusable afterwards and must be replaced.
    pub fn breaks_connection(self) -> bool {
        !matches!(self, Self::Status(_))
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(status) => write!(f, "HTTP {status}"),
            Self::Connect => f.write_str("connection failed"),
            Self::Timeout => f.write_str("timed out"),
            Self::Io => f.write_str("connection broken"),
        }
    }
}

/// Errors counted by kind (`status_503`, `connect`, `timeout`, `io`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct ErrorCounts(BTreeMap<String, u64>);

impl ErrorCounts {
    pub fn add(&mut self, kind: ErrorKind) {
        *self.0.entry(kind.label()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Self) {
        for (label, count) in &other.0 {
            *self.0.entry(label.clone()).or_default() += count;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// `none`, or `connect 2, status_503 7`.
    pub fn line(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        self.0
            .iter()
            .map(|(label, count)| format!("{label} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Opens a keep-alive HTTP/1.1 connection to the target.
pub async fn connect(target: &Target, timeout: Duration) -> Result<Sender, ErrorKind> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(target.addr))
        .await
        .map_err(|_| ErrorKind::Timeout)?
        .map_err(|_| ErrorKind::Connect)?;
    // Requests are small and latency is what is measured.
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ErrorKind::Connect)?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes; errors surface on requests.
        let _ = connection.await;
    });
    Ok(sender)
}

/// A request to `path` under the target, with a JSON body if given.
pub fn request(target: &Target, method: Method, path: &str, json: Option<Bytes>) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(target.path(path))
        .header(header::HOST, &target.authority);
    let builder = if json.is_some() {
        builder.header(header::CONTENT_TYPE, "application/json")
    } else {
        builder
    };
    let builder = match &target.token {
        Some(token) => builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
        None => builder,
    };
    builder
        .body(Full::new(json.unwrap_or_default()))
        // Method, path and headers come from validated values.
        .expect("a valid request")
}

/// Sends a request and reads the whole answer (as keep-alive needs) within `timeout`.
pub async fn send(
    sender: &mut Sender,
    request: Request<Body>,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), ErrorKind> {
    let exchange = async {
        sender.ready().await.map_err(|_| ErrorKind::Io)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| ErrorKind::Io)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|_| ErrorKind::Io)?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ErrorKind::Timeout)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_errors_by_kind() {
        let mut counts = ErrorCounts::default();
        assert_eq!(counts.line(), "none");
        counts.add(ErrorKind::Status(StatusCode::SERVICE_UNAVAILABLE));
        counts.add(ErrorKind::Connect);
        let mut other = ErrorCounts::default();
        other.add(ErrorKind::Connect);
        counts.merge(&other);
        assert_eq!(counts.total(), 3);
        assert_eq!(counts.line(), "connect 2, status_503 1");
        assert!(ErrorKind::Timeout.breaks_connection());
        assert!(!ErrorKind::Status(StatusCode::NOT_FOUND).breaks_connection());
    }
}
