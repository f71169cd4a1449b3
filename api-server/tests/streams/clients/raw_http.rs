//! HTTP/1.1 by hand.

use tokio::net::TcpStream;

use super::patience::within;

/// HTTP/1.1 by hand, to control which requests share a connection.
pub struct RawHttp {
    socket: TcpStream,
    /// Everything read so far.
    pub received: Vec<u8>,
}

impl RawHttp {
    pub async fn connect(port: u16) -> Self {
        let socket = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        Self {
            socket,
            received: Vec::new(),
        }
    }

    pub async fn get(&mut self, path: &str) {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
            .await;
    }

    /// A WebSocket handshake (the RFC's example key).
    pub async fn upgrade(&mut self, path: &str) {
        self.send(&format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ))
        .await;
    }

    pub async fn send(&mut self, bytes: &str) {
        use tokio::io::AsyncWriteExt;
        self.socket
            .write_all(bytes.as_bytes())
            .await
            .expect("sending a request");
    }

    pub fn into_socket(self) -> TcpStream {
        self.socket
    }

    /// Reads until what was received contains `needle`, and returns it all as text.
    pub async fn read_until(&mut self, needle: &str) -> String {
        use tokio::io::AsyncReadExt;
        within(&format!("reading up to {needle:?}"), async {
            while !String::from_utf8_lossy(&self.received).contains(needle) {
                let read = self
                    .socket
                    .read_buf(&mut self.received)
                    .await
                    .expect("reading");
                assert!(
                    read > 0,
                    "the connection closed before {needle:?}: {}",
                    String::from_utf8_lossy(&self.received)
                );
            }
        })
        .await;
        String::from_utf8_lossy(&self.received).into_owned()
    }
}
