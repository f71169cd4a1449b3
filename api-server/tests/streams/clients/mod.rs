//! Stream clients for the tests: SSE over reqwest, WebSocket over tokio-tungstenite and the
//! real npm `socket.io-client` 4 driven through `tests/socketio/client.cjs`.

mod patience;
mod raw_http;
mod seen;
mod socketio;
mod sse;
mod websocket;

pub use patience::within;
pub use raw_http::RawHttp;
pub use socketio::{SocketIoClient, Transports, stalled_socket_io, stalled_socket_io_polling};
pub use sse::SseClient;
pub use websocket::{WsClient, WsItem};
