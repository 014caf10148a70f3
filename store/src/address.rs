//! Domain names and account addresses, validated once where they enter (the API, the
//! CLI, a login) and normalised the same way everywhere they are compared.
//!
//! Invariants kept by every value, however it was built:
//! - a [`DomainName`] is 1–253 bytes of lowercase LDH labels of 1–63 bytes, none
//!   starting or ending with `-` (RFC 1035 §2.3.1, RFC 1123 §2.1);
//! - an [`Address`] is `local@domain`: a local part of 1–64 bytes without spaces,
//!   controls or `@` (RFC 5321 §4.5.3.1.1), kept as given because local parts are
//!   case-sensitive (RFC 5321 §2.4), and a [`DomainName`].
//!
//! `TryFrom<&str>` takes the text exactly as it is, apart from the domain's case: what
//! lookups use. `parse` is for what a person typed: it also drops surrounding white
//! space and a final dot.

use std::fmt;

/// RFC 1035 §2.3.4: 255 octets on the wire, 253 characters written out.
const DOMAIN_BYTES_MAX: usize = 253;
/// RFC 1035 §2.3.4.
const LABEL_BYTES_MAX: usize = 63;
/// RFC 5321 §4.5.3.1.1.
const LOCAL_PART_BYTES_MAX: usize = 64;

/// Why a domain name or an address is not valid. The text is what was checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Not a domain name of LDH labels.
    #[error("`{0}` is not a valid domain name")]
    Domain(String),
    /// No `@`.
    #[error("`{0}` is not an address (local@domain)")]
    NotAnAddress(String),
    /// An empty or too long local part, or one with spaces, controls or `@`.
    #[error("`{0}` has an invalid local part")]
    LocalPart(String),
}

/// A domain name: lowercase LDH labels, 1–253 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainName(String);

impl DomainName {
    /// A domain name as a person types it: white space around it and final dots are
    /// dropped, letters lowercased.
    pub fn parse(text: &str) -> Result<DomainName, AddressError> {
        DomainName::try_from(text.trim().trim_end_matches('.'))
    }

    /// The name, lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for DomainName {
    type Error = AddressError;

    /// The name as given, lowercased.
    fn try_from(text: &str) -> Result<DomainName, AddressError> {
        let name = text.to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= DOMAIN_BYTES_MAX
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= LABEL_BYTES_MAX
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if valid {
            Ok(DomainName(name))
        } else {
            Err(AddressError::Domain(name))
        }
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<DomainName> for String {
    fn from(name: DomainName) -> String {
        name.0
    }
}

/// An account's address: `local@domain`, the domain lowercase.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    text: String,
    /// Byte index of the `@` in `text`.
    at: usize,
}

impl Address {
    /// An address as a person types it: white space around it and around its domain,
    /// and final dots of the domain, are dropped.
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        Address::build(text.trim(), DomainName::parse)
    }

    fn build(
        text: &str,
        domain: fn(&str) -> Result<DomainName, AddressError>,
    ) -> Result<Address, AddressError> {
        let (local, rest) = text
            .rsplit_once('@')
            .ok_or_else(|| AddressError::NotAnAddress(text.to_string()))?;
        if local.is_empty()
            || local.len() > LOCAL_PART_BYTES_MAX
            || local.bytes().any(|b| b <= b' ' || b == b'@' || b == 0x7f)
        {
            return Err(AddressError::LocalPart(text.to_string()));
        }
        let domain = domain(rest)?;
        Ok(Address {
            text: format!("{local}@{domain}"),
            at: local.len(),
        })
    }

    /// The whole address.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The part before the `@`, as given.
    pub fn local_part(&self) -> &str {
        &self.text[..self.at]
    }

    /// The domain, lowercase.
    pub fn domain(&self) -> &str {
        &self.text[self.at + 1..]
    }

    /// The domain part of any address text, an envelope address as SMTP carried it
    /// included (what follows the last `@`: no domain or address literal holds one);
    /// empty without an `@`. Case is kept.
    pub fn domain_of(address: &str) -> &str {
        address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl TryFrom<&str> for Address {
    type Error = AddressError;

    /// The address as given, its domain lowercased.
    fn try_from(text: &str) -> Result<Address, AddressError> {
        Address::build(text, |domain| DomainName::try_from(domain))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<Address> for String {
    fn from(address: Address) -> String {
        address.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("example.com", Ok("example.com")),
            ("Mail-1.EXAMPLE.com", Ok("mail-1.example.com")),
            ("localhost", Ok("localhost")),
            ("", Err("")),
            ("-a.com", Err("-a.com")),
            ("a-.com", Err("a-.com")),
            ("a..com", Err("a..com")),
            ("a_b.com", Err("a_b.com")),
            ("bücher.de", Err("bücher.de")),
            ("example.com.", Err("example.com.")),
            (" example.com", Err(" example.com")),
        ];
        for (input, expected) in cases {
            let got = DomainName::try_from(*input);
            match expected {
                Ok(name) => assert_eq!(got.map(String::from), Ok(name.to_string()), "{input}"),
                Err(text) => assert_eq!(got, Err(AddressError::Domain(text.to_string()))),
            }
        }
        let label = "a".repeat(63);
        assert!(DomainName::try_from(format!("{label}.com").as_str()).is_ok());
        assert!(DomainName::try_from(format!("a{label}.com").as_str()).is_err());
        let long = vec!["abc"; 63].join(".");
        assert_eq!(long.len(), 251);
        assert!(DomainName::try_from(long.as_str()).is_ok());
        assert!(DomainName::try_from(format!("{long}.ab").as_str()).is_err());
        // What a person types: spaces and final dots go.
        assert_eq!(
            DomainName::parse(" Example.COM. ").unwrap().as_str(),
            "example.com"
        );
        assert_eq!(
            DomainName::parse("exa mple.com").unwrap_err().to_string(),
            "`exa mple.com` is not a valid domain name"
        );
    }

    #[test]
    fn addresses() {
        let a = Address::try_from("Alice.B+x@Example.COM").unwrap();
        assert_eq!(a.as_str(), "Alice.B+x@example.com");
        assert_eq!(a.local_part(), "Alice.B+x");
        assert_eq!(a.domain(), "example.com");
        assert_eq!(a, Address::try_from("Alice.B+x@example.com").unwrap());
        assert_ne!(a, Address::try_from("alice.b+x@example.com").unwrap());
        let errors = [
            ("alice", "`alice` is not an address (local@domain)"),
            ("@example.com", "`@example.com` has an invalid local part"),
            (
                "a b@example.com",
                "`a b@example.com` has an invalid local part",
            ),
            (
                "a@b@example.com",
                "`a@b@example.com` has an invalid local part",
            ),
            (
                "a\u{7f}@example.com",
                "`a\u{7f}@example.com` has an invalid local part",
            ),
            (
                "a@exa_mple.com",
                "`exa_mple.com` is not a valid domain name",
            ),
            ("a@", "`` is not a valid domain name"),
            (
                " a@example.com",
                "` a@example.com` has an invalid local part",
            ),
            (
                "a@example.com.",
                "`example.com.` is not a valid domain name",
            ),
        ];
        for (input, message) in errors {
            assert_eq!(Address::try_from(input).unwrap_err().to_string(), message);
        }
        let local = "l".repeat(64);
        assert!(Address::try_from(format!("{local}@example.com").as_str()).is_ok());
        assert!(Address::try_from(format!("l{local}@example.com").as_str()).is_err());
        // What a person types.
        let typed = Address::parse("  bob@ Example.com. ").unwrap();
        assert_eq!(typed.as_str(), "bob@example.com");
        assert_eq!(
            Address::parse("bob").unwrap_err().to_string(),
            "`bob` is not an address (local@domain)"
        );
    }

    #[test]
    fn domain_of_any_address() {
        assert_eq!(Address::domain_of("a@Example.com"), "Example.com");
        assert_eq!(Address::domain_of("\"a@b\"@example.com"), "example.com");
        assert_eq!(Address::domain_of("a@[192.0.2.1]"), "[192.0.2.1]");
        assert_eq!(Address::domain_of("postmaster"), "");
    }
}
