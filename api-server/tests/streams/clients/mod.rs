//! Stream clients for the tests: SSE over reqwest, WebSocket over tokio-tungstenite and the
//! real npm `socket.io-client` 4 driven through `tests/socketio/client.cjs`.

mod npm;
mod patience;
mod raw_http;
mod seen;
mod socketio;
mod sse;
mod websocket;

// For the browser test in tests/auth, which includes these clients too.
#[allow(unused_imports)]
pub use npm::modules as npm_modules;
pub use patience::within;
pub use raw_http::RawHttp;
pub use socketio::{SocketIoClient, Transports, stalled_socket_io, stalled_socket_io_polling};
pub use sse::SseClient;
pub use websocket::{WsClient, WsItem};
