//! `loadgen ceiling-server`: the least an HTTP server can do (hyper, HTTP/1.1 keep-alive, a
//! fixed 12-byte answer). Loaded with `loadgen rest` under the same CPU pinning as the
//! api-server, it shows what this machine can do at all, so every HTTP figure can be read as
//! a fraction of it.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::failure::Failure;
use crate::{duration, target};

#[derive(Debug, Args)]
pub struct CeilingArgs {
    /// Port to listen on.
    #[arg(long, default_value_t = 3999)]
    pub port: u16,

    /// Address to listen on (loopback unless --allow-remote).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Allow listening on an address that is not loopback.
    #[arg(long)]
    pub allow_remote: bool,

    /// Exit after this long (or on SIGTERM / Ctrl-C).
    #[arg(long, default_value = "1h", value_parser = duration::parse_positive)]
    pub duration: Duration,
}

const HELLO: &[u8] = b"hello world\n";

pub async fn run(args: CeilingArgs) -> Result<(), Failure> {
    if !args.allow_remote && !target::is_loopback(args.bind) {
        return Err(Failure::Usage(format!(
            "refusing to listen on {}: not a loopback address; pass --allow-remote",
            args.bind
        )));
    }
    let address = SocketAddr::new(args.bind, args.port);
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    eprintln!("loadgen ceiling-server listening on http://{address}");
    let serving = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_request: Request<hyper::body::Incoming>| async {
                    let mut response = Response::new(Full::new(Bytes::from_static(HELLO)));
                    response
                        .headers_mut()
                        .insert(header::CONTENT_TYPE, "text/plain".parse().expect("valid"));
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    };
    tokio::select! {
        () = serving => {}
        () = tokio::time::sleep(args.duration) => {}
        () = herald_runtime::shutdown::signal() => {}
    }
    Ok(())
}
