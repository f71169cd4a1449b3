//! Opening a stream: reading HTTP/1.1 response heads, and the WebSocket handshake.

use anyhow::Context;
use tokio::net::TcpStream;

use crate::target::Target;

/// Reads an HTTP/1.1 response head: the head, and what came after it.
pub(super) async fn read_head(
    socket: &mut TcpStream,
    what: &str,
) -> anyhow::Result<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt as _;
    const MAX_HEAD_BYTES: usize = 16 * 1024;
    let mut bytes = Vec::new();
    loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..at + 4]).into_owned();
            return Ok((head, bytes.split_off(at + 4)));
        }
        if bytes.len() > MAX_HEAD_BYTES {
            anyhow::bail!("the response head to {what} is over {MAX_HEAD_BYTES} bytes");
        }
        let read = socket
            .read_buf(&mut bytes)
            .await
            .with_context(|| format!("reading the response to {what}"))?;
        if read == 0 {
            anyhow::bail!("the server closed before answering {what}");
        }
    }
}

/// A response head's status code, if its status line has one.
pub(super) fn status_of(head: &str) -> Option<u16> {
    head.lines().next()?.split(' ').nth(1)?.parse().ok()
}

/// A response head's header value (the first, by case-insensitive name).
pub(super) fn header_of<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field
            .trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim())
    })
}

/// The WebSocket handshake at `path`, with a read buffer sized for notification frames:
/// tungstenite's default (128 KiB) is zeroed on every read, which took half of loadgen's CPU
/// with 10,000 clients.
pub(super) async fn websocket(
    stream: TcpStream,
    target: &Target,
    path: &str,
) -> anyhow::Result<tokio_tungstenite::WebSocketStream<TcpStream>> {
    let config =
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
    let (socket, _) =
        tokio_tungstenite::client_async_with_config(target.ws_url(path), stream, Some(config))
            .await
            .with_context(|| format!("WebSocket handshake at {path}"))?;
    Ok(socket)
}
