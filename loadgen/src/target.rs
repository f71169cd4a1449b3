//! The server under test: where it is, and the refusal to load anything but this machine
//! unless asked explicitly.

use std::net::{IpAddr, SocketAddr};

use clap::Args;
use hyper::Uri;

use crate::failure::Failure;

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Base URL of the api-server (http only).
    #[arg(long, env = "LOADGEN_URL", default_value = "http://127.0.0.1:3001")]
    pub url: String,

    /// Allow a target that is not loopback. Load tests saturate what they hit: only point them
    /// at machines you own.
    #[arg(long)]
    pub allow_remote: bool,

    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Credential sent with REST requests (`Authorization: Bearer`): an API key with the
    /// scopes the scenario needs (publish, read:all), or a user token for reads.
    #[arg(long, env = "LOADGEN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Credential of the stream clients, if not --token: a user token, say. SSE sends it as
    /// `Authorization`, WebSocket as `?access_token=`, Socket.IO as the handshake's
    /// `auth.token`.
    #[arg(long, env = "LOADGEN_STREAM_TOKEN", hide_env_values = true)]
    pub stream_token: Option<String>,
}

/// A resolved HTTP target.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host:port`, for the Host header and WebSocket URLs.
    pub authority: String,
    /// The URL's path without a trailing slash (usually empty), prefixed to every request path.
    pub base_path: String,
    /// For REST requests.
    pub token: Option<String>,
    /// For stream clients.
    pub stream_token: Option<String>,
}

impl Target {
    pub async fn resolve(args: &TargetArgs) -> Result<Self, Failure> {
        let uri: Uri = args
            .url
            .parse()
            .map_err(|error| Failure::Usage(format!("--url {:?}: {error}", args.url)))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(Failure::Usage(format!(
                    "--url {:?}: scheme {other:?} is not supported, use http://",
                    args.url
                )));
            }
            None => {
                return Err(Failure::Usage(format!(
                    "--url {:?}: give a full URL such as http://127.0.0.1:3001",
                    args.url
                )));
            }
        }
        let host = uri
            .host()
            .ok_or_else(|| Failure::Usage(format!("--url {:?} has no host", args.url)))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|error| Failure::Usage(format!("--url: cannot resolve {host:?}: {error}")))?
            .collect();
        let Some(addr) = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
        else {
            return Err(Failure::Usage(format!(
                "--url: {host:?} resolves to no address"
            )));
        };
        // A name counts as loopback only if every address it resolves to is.
        if !args.allow_remote && !addrs.iter().all(|a| is_loopback(a.ip())) {
            return Err(Failure::Usage(format!(
                "refusing to load {host} ({}): it is not a loopback address (127.0.0.0/8, ::1, \
                 localhost); pass --allow-remote to load a machine you own",
                addr.ip()
            )));
        }
        let authority = match uri.port_u16() {
            Some(port) => format!("{}:{port}", uri.host().unwrap_or(host)),
            None => uri.host().unwrap_or(host).to_owned(),
        };
        Ok(Self {
            addr,
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
            token: args.token.clone(),
            stream_token: args.stream_token.clone().or_else(|| args.token.clone()),
        })
    }

    /// The request target for `path` (which starts with `/`).
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.base_path)
    }

    /// `ws://authority` + base path + `path`, with the stream credential as `access_token`.
    pub fn ws_url(&self, path: &str) -> String {
        let url = format!("ws://{}{}", self.authority, self.path(path));
        match &self.stream_token {
            Some(token) => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}access_token={token}")
            }
            None => url,
        }
    }

    /// The `Authorization` header line (with its CRLF) of a stream client's request.
    pub fn stream_authorization(&self) -> String {
        self.stream_token
            .as_ref()
            .map_or_else(String::new, |token| {
                format!("Authorization: Bearer {token}\r\n")
            })
    }
}

pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str, allow_remote: bool) -> TargetArgs {
        TargetArgs {
            url: url.into(),
            allow_remote,
            json: false,
            token: None,
            stream_token: None,
        }
    }

    async fn resolve(url: &str, allow_remote: bool) -> Result<Target, String> {
        Target::resolve(&args(url, allow_remote))
            .await
            .map_err(|failure| match failure {
                Failure::Usage(message) => message,
                Failure::Runtime(error) => panic!("not a usage error: {error}"),
            })
    }

    #[tokio::test]
    async fn loopback_targets_are_accepted() {
        for url in [
            "http://127.0.0.1:3001",
            "http://127.5.6.7:80/",
            "http://[::1]:3001",
            "http://localhost:3001",
        ] {
            let target = resolve(url, false).await.expect(url);
            assert!(is_loopback(target.addr.ip()), "{url}");
        }
        let target = resolve("http://127.0.0.1:3001/prefix/", false)
            .await
            .unwrap();
        assert_eq!(target.authority, "127.0.0.1:3001");
        assert_eq!(target.path("/api/health"), "/prefix/api/health");
        assert_eq!(
            target.ws_url("/api/ws"),
            "ws://127.0.0.1:3001/prefix/api/ws"
        );
    }

    #[tokio::test]
    async fn stream_credentials_go_in_the_websocket_url_and_the_sse_head() {
        let mut args = args("http://127.0.0.1:3001", false);
        args.token = Some("hk_key".into());
        let target = Target::resolve(&args).await.unwrap();
        assert_eq!(
            target.ws_url("/api/ws"),
            "ws://127.0.0.1:3001/api/ws?access_token=hk_key"
        );
        assert_eq!(
            target.ws_url("/socket.io/?EIO=4"),
            "ws://127.0.0.1:3001/socket.io/?EIO=4&access_token=hk_key"
        );
        args.stream_token = Some("jwt".into());
        let target = Target::resolve(&args).await.unwrap();
        assert_eq!(
            target.stream_authorization(),
            "Authorization: Bearer jwt\r\n"
        );
    }

    #[tokio::test]
    async fn other_targets_are_refused_unless_allowed() {
        let refused = resolve("http://10.1.2.3:3001", false).await.unwrap_err();
        assert!(refused.contains("not a loopback address"), "{refused}");
        assert!(refused.contains("--allow-remote"), "{refused}");
        assert!(resolve("http://10.1.2.3:3001", true).await.is_ok());
    }

    #[tokio::test]
    async fn malformed_urls_are_usage_errors() {
        for url in ["127.0.0.1:3001", "https://127.0.0.1", "not a url"] {
            assert!(resolve(url, false).await.is_err(), "{url}");
        }
    }
}
