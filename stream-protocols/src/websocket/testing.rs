//! Client frames for the tests, built by hand as a client would send them.

/// A masked, unfragmented client frame.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    masked(0x80 | opcode, payload)
}

/// A masked client frame whose first byte (FIN, RSV and opcode) is `first`.
pub fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    super::client_frame(first, payload, [0x12, 0x34, 0x56, 0x78])
}
