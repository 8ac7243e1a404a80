//! The two secrets, both kept outside the database: the HMAC key that turns a subject's
//! identifier into its pseudonym, and the ed25519 key that signs device heads.

use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Config;
use crate::wire::unhex;

/// The loaded keys.
pub struct Keys {
    subject: Vec<u8>,
    signing: SigningKey,
}

impl Keys {
    /// Loads the keys named by the config (or the environment variables that override it).
    pub fn load(config: &Config) -> Result<Keys, String> {
        let subject = secret("CONSENTKIT_SUBJECT_KEY", config.subject_key_file.as_deref(), "subject key")?;
        if subject.len() < 32 {
            return Err(format!("the subject key is {} bytes; it must be at least 32", subject.len()));
        }
        let seed = secret("CONSENTKIT_SIGNING_KEY", config.signing_key_file.as_deref(), "signing key")?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| "the signing key must be 32 bytes (64 hex characters)".to_string())?;
        Ok(Keys { subject, signing: SigningKey::from_bytes(&seed) })
    }

    /// Keys from raw material (tests and benches).
    pub fn from_parts(subject: Vec<u8>, signing_seed: [u8; 32]) -> Keys {
        Keys { subject, signing: SigningKey::from_bytes(&signing_seed) }
    }

    /// The pseudonym a subject is stored under: hex HMAC-SHA256 of its identifier.
    pub fn subject_key(&self, subject: &str) -> String {
        self.mac(b"subject", subject)
    }

    /// The pseudonym a device's own rows (its chain, head, OS states) are stored under,
    /// in the same key space as subjects (so every table has one distribution column).
    pub fn device_key(&self, device: &str) -> String {
        self.mac(b"device", device)
    }

    /// The pseudonym under which a console user's own actions (sign-in, log pages) are logged.
    pub fn actor_key(&self, actor: &str) -> String {
        self.mac(b"actor", actor)
    }

    fn mac(&self, domain: &[u8], value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.subject).expect("HMAC takes keys of any length");
        mac.update(b"consentkit-pseudonym-v1\0");
        mac.update(domain);
        mac.update(b"\0");
        mac.update(value.as_bytes());
        consentkit_core::chain::hex(&mac.finalize().into_bytes())
    }

    /// The signing key.
    pub fn signing(&self) -> &SigningKey {
        &self.signing
    }

    /// The public key anyone verifies heads with.
    pub fn public(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }
}

fn secret(env: &str, file: Option<&Path>, what: &str) -> Result<Vec<u8>, String> {
    let text = match (std::env::var(env), file) {
        (Ok(v), _) if !v.trim().is_empty() => v,
        (_, Some(path)) => std::fs::read_to_string(path).map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))?,
        _ => return Err(format!("no {what}: set {env} or the config's key file")),
    };
    unhex(text.trim()).ok_or_else(|| format!("the {what} is not hex"))
}

/// Fresh random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the OS: {e}"))?;
    Ok(bytes)
}
