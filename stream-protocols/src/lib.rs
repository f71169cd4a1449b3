//! The wire protocols of Herald's live streams, as pure encoding, decoding and state: no
//! sockets, no tasks, no application types. The api-server drives them from its own I/O.

pub mod websocket;
