//! Standard base64 (RFC 4648 §4) for SASL exchanges — RFC 3501 §9 `base64`.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn is_base64_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=')
}

pub(crate) fn encode(input: &[u8], out: &mut Vec<u8>) {
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let bits = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for index in 0..4 {
            if index <= chunk.len() {
                out.push(ALPHABET[((bits >> (18 - 6 * index)) & 0x3f) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

fn value(byte: u8) -> Option<u32> {
    match byte {
        b'A'..=b'Z' => Some(u32::from(byte - b'A')),
        b'a'..=b'z' => Some(u32::from(byte - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(byte - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// `base64 = *(4base64-char) [base64-terminal]` — RFC 3501 §9: whole quads only,
/// padding only at the end, unused bits zero (so every text decodes one way).
pub(crate) fn decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let quads = input.len() / 4;
    for (index, quad) in input.chunks(4).enumerate() {
        let padding = quad.iter().rev().take_while(|&&byte| byte == b'=').count();
        if padding > 2 || (padding > 0 && index + 1 != quads) {
            return None;
        }
        let mut bits: u32 = 0;
        for &byte in &quad[..4 - padding] {
            bits = (bits << 6) | value(byte)?;
        }
        bits <<= 6 * padding as u32;
        let decoded = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        let used = 3 - padding;
        if decoded[used..].iter().any(|&byte| byte != 0) {
            return None;
        }
        out.extend_from_slice(&decoded[..used]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for input in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\0user\0pass"] {
            let mut text = Vec::new();
            encode(input, &mut text);
            assert_eq!(decode(&text).as_deref(), Some(input));
        }
        let mut text = Vec::new();
        encode(b"\0user\0pass", &mut text);
        assert_eq!(text, b"AHVzZXIAcGFzcw==");
        assert_eq!(decode(b"Zm9=").as_deref(), None);
        assert_eq!(decode(b"Zg==Zg==").as_deref(), None);
        assert_eq!(decode(b"Zm9").as_deref(), None);
    }
}
