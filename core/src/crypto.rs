//! Secrets at rest: AES-256-GCM with the configured key (or the one generated into the data
//! dir), and the mask the API shows instead of a secret.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, anyhow};
use base64::Engine;
use rand::RngCore;

use crate::config::{Config, Secret};

const NONCE_LEN: usize = 12;
/// Version tag of the stored format, so the scheme can change later.
const PREFIX: &str = "v1:";

/// Encrypts and decrypts secret values. Cheap to clone.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(••••)")
    }
}

impl SecretBox {
    /// A box for `key`: base64 of exactly 32 bytes.
    pub fn new(key: &Secret) -> anyhow::Result<SecretBox> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key.expose().trim())
            .context("auth.secret_key: expected base64")?;
        anyhow::ensure!(
            bytes.len() == 32,
            "auth.secret_key: expected 32 bytes, got {}",
            bytes.len()
        );
        let cipher = Aes256Gcm::new_from_slice(&bytes)
            .map_err(|_| anyhow!("auth.secret_key: bad key length"))?;
        Ok(SecretBox { cipher })
    }

    /// Encrypts `plaintext` with a fresh random nonce.
    pub fn encrypt(&self, plaintext: &str) -> anyhow::Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), plaintext.as_bytes())
            .map_err(|_| anyhow!("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// Decrypts what [`SecretBox::encrypt`] produced; fails on tampering or a wrong key.
    pub fn decrypt(&self, stored: &str) -> anyhow::Result<Secret> {
        let body = stored
            .strip_prefix(PREFIX)
            .context("unknown secret format")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .context("corrupt secret")?;
        anyhow::ensure!(bytes.len() > NONCE_LEN, "corrupt secret");
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().context("corrupt secret")?;
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), sealed)
            .map_err(|_| anyhow!("secret does not decrypt with the configured key"))?;
        Ok(Secret::new(
            String::from_utf8(plain).context("secret is not text")?,
        ))
    }
}

/// `value` as JSON, sealed with the configured secret key (or the one in the data dir),
/// for storage in a `secrets` column.
pub fn seal_json<T: serde::Serialize>(config: &Config, value: &T) -> anyhow::Result<String> {
    let key = crate::keys::secret_key(config)?;
    let json = serde_json::to_string(value)?;
    SecretBox::new(&key)?.encrypt(&json)
}

/// The JSON value [`seal_json`] sealed.
pub fn open_json<T: serde::de::DeserializeOwned>(
    config: &Config,
    stored: &str,
) -> anyhow::Result<T> {
    let key = crate::keys::secret_key(config)?;
    let plain = SecretBox::new(&key)?.decrypt(stored)?;
    Ok(serde_json::from_str(plain.expose())?)
}

/// What the API shows instead of a secret: `••••` plus at most the last 4 characters, and only
/// when the secret is long enough that they give nothing away.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() >= 16 {
        format!(
            "••••{}",
            chars[chars.len() - 4..].iter().collect::<String>()
        )
    } else {
        "••••".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Secret {
        Secret::new(base64::engine::general_purpose::STANDARD.encode([7u8; 32]))
    }

    #[test]
    fn round_trips_and_detects_tampering() {
        let b = SecretBox::new(&key()).unwrap();
        let sealed = b.encrypt("sk-live-123456789").unwrap();
        assert!(!sealed.contains("sk-live"));
        assert_eq!(b.decrypt(&sealed).unwrap().expose(), "sk-live-123456789");
        assert_ne!(
            sealed,
            b.encrypt("sk-live-123456789").unwrap(),
            "fresh nonce each time"
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(b.decrypt(&tampered).is_err());
        let other = SecretBox::new(&Secret::new(
            base64::engine::general_purpose::STANDARD.encode([8u8; 32]),
        ))
        .unwrap();
        assert!(other.decrypt(&sealed).is_err());
    }

    #[test]
    fn masks_show_little() {
        assert_eq!(mask("short"), "••••");
        assert_eq!(mask("sk-abcdefghijklmnop1234"), "••••1234");
    }
}
