//! Password hashing with argon2id.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// A password was refused or could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short or too long.
    #[error("passwords must be 12 to 256 characters")]
    Policy,
    /// Hashing failed.
    #[error("password hashing failed")]
    Hash,
}

/// Checks the password policy (length only: long passphrases beat composition rules).
pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    let n = password.chars().count();
    if (12..=256).contains(&n) {
        Ok(())
    } else {
        Err(PasswordError::Policy)
    }
}

/// argon2id hash in PHC string format.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check_policy(password)?;
    let salt =
        SaltString::encode_b64(&crate::crypto::random_bytes::<16>()).map_err(|_| PasswordError::Hash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

/// Whether `password` matches `phc`. A malformed stored hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the same time as a real verification, so that an unknown account cannot be told
/// from a wrong password by timing.
pub fn dummy_verify(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash("dummy-password-for-timing").unwrap_or_default());
    let _ = verify(password, phc);
}

/// Verifications running at once in this process: each takes ~19 MiB and a core for tens
/// of milliseconds, so an unbounded flood of logins would take the memory and the CPU of
/// the whole API (500 at once measured at over 10 GiB). Twice the cores keeps them busy;
/// the rest wait (holding no database connection).
fn slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        tokio::sync::Semaphore::new(cores * 2)
    })
}

/// [`verify`] (or, with no stored hash, [`dummy_verify`] and `false`) off the async
/// runtime, with at most twice the cores' worth running at once.
pub async fn verify_bounded(password: String, phc: Option<String>) -> bool {
    let Ok(_slot) = slots().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || match phc {
        Some(h) => verify(&password, &h),
        None => {
            dummy_verify(&password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash("correct horse battery").expect("hash");
        let b = hash("correct horse battery").expect("hash");
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &a));
        assert!(!verify("wrong horse battery", &a));
        assert!(!verify("anything", "not-a-hash"));
        assert!(matches!(hash("short"), Err(PasswordError::Policy)));
    }
}
