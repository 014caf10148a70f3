//! Base64 (RFC 4648 §4) for SASL exchanges (RFC 5034 §4): strict decoding, as every
//! client encodes canonically and anything else is more likely an attack or a bug.

use super::error::Reason;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A byte of base64 text: `ALPHA / DIGIT / "+" / "/"` (the alphabet of RFC 4648 §4)
/// or the pad character `"="`, as used by `base64` in RFC 5034 §6.
pub(crate) fn is_base64_text(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/' || byte == b'='
}

fn value(byte: u8) -> Option<u32> {
    Some(match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decodes canonical padded base64: a multiple of four characters, `=` only as the
/// padding of the last group, unused bits zero.
pub(crate) fn decode(input: &[u8]) -> Result<Vec<u8>, Reason> {
    if !input.len().is_multiple_of(4) {
        return Err(Reason::InvalidBase64);
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let groups = input.len() / 4;
    for (index, group) in input.chunks_exact(4).enumerate() {
        let last = index + 1 == groups;
        let padding = group.iter().rev().take_while(|&&b| b == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return Err(Reason::InvalidBase64);
        }
        let mut bits: u32 = 0;
        for &byte in &group[..4 - padding] {
            bits = (bits << 6) | value(byte).ok_or(Reason::InvalidBase64)?;
        }
        bits <<= 6 * padding as u32;
        let bytes = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        let keep = 3 - padding;
        // RFC 4648 §3.5: the pad bits of a canonical encoding are zero.
        if bytes[keep..].iter().any(|&b| b != 0) {
            return Err(Reason::InvalidBase64);
        }
        out.extend_from_slice(&bytes[..keep]);
    }
    Ok(out)
}

/// Encodes with padding.
pub(crate) fn encode(input: &[u8], out: &mut Vec<u8>) {
    for chunk in input.chunks(3) {
        let mut bits = [0u8; 3];
        bits[..chunk.len()].copy_from_slice(chunk);
        let n = (u32::from(bits[0]) << 16) | (u32::from(bits[1]) << 8) | u32::from(bits[2]);
        let characters = chunk.len() + 1;
        for i in 0..4 {
            if i < characters {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4648_test_vectors() {
        // RFC 4648 §10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = Vec::new();
            encode(plain.as_bytes(), &mut out);
            assert_eq!(out, encoded.as_bytes());
            assert_eq!(decode(encoded.as_bytes()).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn rejects_non_canonical_forms() {
        for bad in [
            "Zg", "Zg=", "Zh==", "Z===", "Zg==Zg==", "Zm9v!A==", "====", "Zm8=Zm8=",
        ] {
            assert_eq!(decode(bad.as_bytes()), Err(Reason::InvalidBase64), "{bad}");
        }
    }
}
