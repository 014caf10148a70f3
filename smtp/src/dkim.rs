//! DKIM (RFC 6376, RFC 8463) for mail Lifeboat originates (SPEC §12): a domain's keys,
//! the DNS records that publish them, and the signatures on what portal users send
//! through submission and webmail. Mail relayed for the customer's own server is never
//! signed or otherwise altered.
//!
//! A domain gets two keys under one new selector name each time keys are made: an
//! Ed25519 key (`SELECTOR-ed25519`, RFC 8463) and an RSA-2048 key (`SELECTOR-rsa`),
//! and mail is signed with both (RFC 8463 §6 recommends the pair while verifiers
//! without Ed25519 remain). Signatures use relaxed/relaxed canonicalisation and cover
//! [`SIGNED_HEADERS`]; one that is absent is still listed, so it cannot be added later
//! without breaking the signature (RFC 6376 §8.15).

use base64::Engine;
use lifeboat_store::{DkimAlgorithm, DkimKey, DomainDkim, UnixTime};
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::EncodePublicKey;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer};

/// The header fields a signature covers (RFC 6376 §5.4.1's list, less those that
/// change in transit).
pub const SIGNED_HEADERS: [&str; 12] = [
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// Bits of the RSA keys made.
pub const RSA_BITS: usize = 2048;

/// Why a key could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    /// Making a key failed.
    #[error("cannot make a DKIM key: {0}")]
    Generate(String),
    /// A stored key does not load (it was damaged, or written by other software).
    #[error("DKIM key {selector} does not load: {why}")]
    BadKey {
        /// Its selector.
        selector: String,
        /// What the crypto library said.
        why: String,
    },
    /// Signing failed (e.g. the message has none of the signed header fields).
    #[error("cannot sign with DKIM key {selector}: {why}")]
    Sign {
        /// The key's selector.
        selector: String,
        /// What the library said.
        why: String,
    },
}

/// Makes a domain's new keys: Ed25519 and RSA-2048, under a selector named after
/// `now` (`lbYYYYMMDDHHMMSS`) that none of `taken` uses. RSA key generation takes
/// a good part of a second: call it off any event loop.
pub fn generate(now: UnixTime, taken: &DomainDkim) -> Result<Vec<DkimKey>, DkimError> {
    let in_use = |base: &str| {
        taken
            .keys
            .iter()
            .chain(&taken.retired)
            .any(|k| k.selector.starts_with(base))
    };
    let mut at = now;
    let mut base = selector_base(at);
    while in_use(&base) {
        at += 1;
        base = selector_base(at);
    }
    let random = ring::rand::SystemRandom::new();
    let ed = ring::signature::Ed25519KeyPair::generate_pkcs8(&random)
        .map_err(|e| DkimError::Generate(format!("Ed25519: {e}")))?;
    let ed_public = Ed25519Key::from_pkcs8_der(ed.as_ref())
        .map_err(|e| DkimError::Generate(format!("Ed25519: {e}")))?
        .public_key();
    let rsa = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS)
        .map_err(|e| DkimError::Generate(format!("RSA: {e}")))?;
    let rsa_private = rsa
        .to_pkcs1_der()
        .map_err(|e| DkimError::Generate(format!("RSA: {e}")))?;
    let rsa_public = rsa
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| DkimError::Generate(format!("RSA: {e}")))?;
    Ok(vec![
        DkimKey {
            selector: format!("{base}-ed25519"),
            algorithm: DkimAlgorithm::Ed25519Sha256,
            private_der: ed.as_ref().to_vec(),
            public: ed_public,
            created: now,
        },
        DkimKey {
            selector: format!("{base}-rsa"),
            algorithm: DkimAlgorithm::RsaSha256,
            private_der: rsa_private.as_bytes().to_vec(),
            public: rsa_public.as_bytes().to_vec(),
            created: now,
        },
    ])
}

/// `lbYYYYMMDDHHMMSS` in UTC.
fn selector_base(at: UnixTime) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(at).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "lb{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// One DNS TXT record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// Owner name: `SELECTOR._domainkey.DOMAIN`.
    pub name: String,
    /// The record's text, as one string.
    pub value: String,
}

impl DnsRecord {
    /// The record in zone-file syntax, its text cut into quoted strings of at most
    /// 255 octets (RFC 1035 §3.3.14; an RSA-2048 key is longer than one).
    pub fn zone_line(&self) -> String {
        let chunks: Vec<String> = self
            .value
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect();
        format!("{}. IN TXT ( {} )", self.name, chunks.join(" "))
    }
}

/// The TXT record that publishes `key` for `domain` (RFC 6376 §3.6.1, RFC 8463 §4.2).
pub fn dns_record(domain: &str, key: &DkimKey) -> DnsRecord {
    DnsRecord {
        name: format!("{}._domainkey.{domain}", key.selector),
        value: format!(
            "v=DKIM1; k={}; p={}",
            key.algorithm.key_type(),
            base64::engine::general_purpose::STANDARD.encode(&key.public)
        ),
    }
}

/// The `DKIM-Signature` header fields for `message` sent from `domain`, one per key,
/// to put in front of it; empty when the domain does not sign.
pub fn sign(domain: &str, dkim: &DomainDkim, message: &[u8]) -> Result<Vec<u8>, DkimError> {
    let mut fields = Vec::new();
    if !dkim.enabled {
        return Ok(fields);
    }
    for key in &dkim.keys {
        let bad = |why: mail_auth::Error| DkimError::BadKey {
            selector: key.selector.clone(),
            why: why.to_string(),
        };
        let signed = match key.algorithm {
            DkimAlgorithm::Ed25519Sha256 => signer(
                Ed25519Key::from_pkcs8_der(&key.private_der).map_err(bad)?,
                domain,
                key,
            )
            .sign(message),
            DkimAlgorithm::RsaSha256 => {
                let der =
                    PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(key.private_der.as_slice()));
                signer(
                    RsaKey::<Sha256>::from_key_der(der).map_err(bad)?,
                    domain,
                    key,
                )
                .sign(message)
            }
        };
        let signature = signed.map_err(|why| DkimError::Sign {
            selector: key.selector.clone(),
            why: why.to_string(),
        })?;
        fields.extend_from_slice(signature.to_header().as_bytes());
    }
    Ok(fields)
}

fn signer<T: mail_auth::common::crypto::SigningKey>(
    key: T,
    domain: &str,
    dkim: &DkimKey,
) -> DkimSigner<T, mail_auth::dkim::Done> {
    DkimSigner::from_key(key)
        .domain(domain)
        .selector(dkim.selector.clone())
        .headers(SIGNED_HEADERS)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"From: Ann <ann@example.test>\r\nTo: bob@other.test\r\n\
        Subject: hello\r\nDate: Fri, 4 Dec 2026 22:00:00 +0000\r\n\r\nHi Bob.\r\n";

    #[test]
    fn selectors_are_named_after_the_time_and_never_reused() {
        assert_eq!(selector_base(1_796_421_600), "lb20261204220000");
        let first = generate(1_796_421_600, &DomainDkim::default()).unwrap();
        let names: Vec<&str> = first.iter().map(|k| k.selector.as_str()).collect();
        assert_eq!(names, ["lb20261204220000-ed25519", "lb20261204220000-rsa"]);
        let held = DomainDkim {
            enabled: true,
            keys: first,
            retired: Vec::new(),
        };
        // A rotation within the same second takes the next free name.
        let second = generate(1_796_421_600, &held).unwrap();
        assert_eq!(second[0].selector, "lb20261204220001-ed25519");
    }

    #[test]
    fn records_carry_the_public_keys_and_split_for_zone_files() {
        let keys = generate(1_796_421_600, &DomainDkim::default()).unwrap();
        let ed = dns_record("example.test", &keys[0]);
        assert_eq!(ed.name, "lb20261204220000-ed25519._domainkey.example.test");
        assert!(
            ed.value.starts_with("v=DKIM1; k=ed25519; p="),
            "{}",
            ed.value
        );
        // RFC 8463 §4.2: the bare 32-octet key, 44 characters of base64.
        assert_eq!(ed.value.len(), "v=DKIM1; k=ed25519; p=".len() + 44);
        let rsa = dns_record("example.test", &keys[1]);
        assert!(
            rsa.value.starts_with("v=DKIM1; k=rsa; p=MIIBIjAN"),
            "{}",
            rsa.value
        );
        let line = rsa.zone_line();
        assert!(line.starts_with("lb20261204220000-rsa._domainkey.example.test. IN TXT ( \""));
        let strings: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        assert!(strings.len() > 1 && strings.iter().all(|s| s.len() <= 255));
        assert_eq!(strings.concat(), rsa.value);
    }

    #[test]
    fn a_disabled_domain_signs_nothing_and_an_enabled_one_signs_with_each_key() {
        let mut dkim = DomainDkim {
            enabled: false,
            keys: generate(1_796_421_600, &DomainDkim::default()).unwrap(),
            retired: Vec::new(),
        };
        assert!(sign("example.test", &dkim, MESSAGE).unwrap().is_empty());
        dkim.enabled = true;
        let fields = String::from_utf8(sign("example.test", &dkim, MESSAGE).unwrap()).unwrap();
        assert_eq!(fields.matches("DKIM-Signature:").count(), 2, "{fields}");
        assert!(fields.contains("a=ed25519-sha256;"), "{fields}");
        assert!(fields.contains("a=rsa-sha256;"), "{fields}");
        assert!(fields.contains("d=example.test;"), "{fields}");
        assert!(fields.contains("c=relaxed/relaxed;"), "{fields}");
    }

    #[test]
    fn signatures_verify_with_the_published_records_and_fail_when_the_message_changes() {
        let dkim = DomainDkim {
            enabled: true,
            keys: generate(1_796_421_600, &DomainDkim::default()).unwrap(),
            retired: Vec::new(),
        };
        let records: Vec<(String, String)> = dkim
            .keys
            .iter()
            .map(|k| dns_record("example.test", k))
            .map(|r| (r.name, r.value))
            .collect();
        let mut signed = sign("example.test", &dkim, MESSAGE).unwrap();
        signed.extend_from_slice(MESSAGE);
        assert_eq!(
            lifeboat_testkit::dkim::verify(&signed, &records),
            ["pass", "pass"]
        );
        // A header field added in transit that is not signed changes nothing; an
        // edited body or a second Reply-To does.
        let mut relayed = b"Received: from a by b; Fri, 4 Dec 2026 22:00:01 +0000\r\n".to_vec();
        relayed.extend_from_slice(&signed);
        assert_eq!(
            lifeboat_testkit::dkim::verify(&relayed, &records),
            ["pass", "pass"]
        );
        let edited = String::from_utf8(signed.clone())
            .unwrap()
            .replace("Hi Bob.", "Hi Eve.");
        let results = lifeboat_testkit::dkim::verify(edited.as_bytes(), &records);
        assert!(results.iter().all(|r| r != "pass"), "{results:?}");
        let added = String::from_utf8(signed).unwrap().replace(
            "Subject: hello",
            "Reply-To: eve@evil.test\r\nSubject: hello",
        );
        let results = lifeboat_testkit::dkim::verify(added.as_bytes(), &records);
        assert!(results.iter().all(|r| r != "pass"), "{results:?}");
    }

    #[test]
    fn a_damaged_key_is_named() {
        let dkim = DomainDkim {
            enabled: true,
            keys: vec![DkimKey {
                selector: "broken".into(),
                algorithm: DkimAlgorithm::RsaSha256,
                private_der: vec![1, 2, 3],
                public: Vec::new(),
                created: 0,
            }],
            retired: Vec::new(),
        };
        let error = sign("example.test", &dkim, MESSAGE).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("DKIM key broken does not load"),
            "{error}"
        );
    }
}
