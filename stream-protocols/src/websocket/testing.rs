//! Client frames for the tests, built by hand as a client would send them.

/// A masked, unfragmented client frame.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    masked(0x80 | opcode, payload)
}

/// A masked client frame whose first byte (FIN, RSV and opcode) is `first`.
pub fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut out = vec![first];
    match payload.len() {
        short @ 0..126 => out.push(0x80 | short as u8),
        medium @ 126..65_536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(medium as u16).to_be_bytes());
        }
        long => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(long as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}
