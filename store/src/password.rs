//! Password hashing with Argon2id (RFC 9106), stored as PHC strings.
//!
//! Hashing is deliberately slow; call it on a thread that may block, never on a
//! protocol core's event loop.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password accepted.
pub const PASSWORD_BYTES_MIN: usize = 8;
/// Longest password accepted (bounds hashing work a client can cause).
pub const PASSWORD_BYTES_MAX: usize = 1024;

fn hasher() -> Argon2<'static> {
    // OWASP's Argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password; the error says what is wrong with it.
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.len() < PASSWORD_BYTES_MIN {
        return Err(format!(
            "password must be at least {PASSWORD_BYTES_MIN} bytes"
        ));
    }
    if password.len() > PASSWORD_BYTES_MAX {
        return Err(format!(
            "password must be at most {PASSWORD_BYTES_MAX} bytes"
        ));
    }
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.len() > PASSWORD_BYTES_MAX {
        return false;
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_and_is_argon2id() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("x", "not a hash"));
        assert!(hash_password("short").is_err());
    }
}
