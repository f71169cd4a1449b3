//! HTTP/1.1's chunked transfer coding, for a response body that goes on for as long as a
//! stream lasts and is written straight to the socket.

use bytes::Bytes;

/// The end of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends `data` to `out` as one chunk; nothing for no data, as an empty chunk would end
/// the body.
pub fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

pub fn chunk(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 12);
    push_chunk(&mut out, data);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_its_length_in_hex_then_the_data() {
        assert_eq!(&chunk(b"hello")[..], b"5\r\nhello\r\n");
        assert_eq!(&chunk(&[b'x'; 300])[..5], b"12c\r\n");
        assert!(chunk(b"").is_empty(), "an empty chunk would end the body");
        let mut body = Vec::new();
        push_chunk(&mut body, b":\n\n");
        body.extend_from_slice(LAST_CHUNK);
        assert_eq!(body, b"3\r\n:\n\n\r\n0\r\n\r\n");
    }
}
