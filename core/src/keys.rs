//! Keys the product generates for itself when none is configured: the token-signing secret
//! and the encryption key for secrets at rest, kept in the data dir with mode 0600.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use rand::RngCore;

use crate::config::{Config, Secret};

/// File name of the generated token secret inside the data dir.
pub const JWT_SECRET_FILE: &str = "jwt.secret";
/// File name of the generated encryption key inside the data dir.
pub const SECRET_KEY_FILE: &str = "secret.key";

/// The configured token secret, or the one kept in the data dir (generated on first use).
pub fn jwt_secret(config: &Config) -> anyhow::Result<Secret> {
    match &config.auth.jwt_secret {
        Some(secret) => Ok(secret.clone()),
        None => load_or_generate(&config.data_dir.join(JWT_SECRET_FILE)),
    }
}

/// The configured encryption key, or the one kept in the data dir (generated on first use).
pub fn secret_key(config: &Config) -> anyhow::Result<Secret> {
    match &config.auth.secret_key {
        Some(secret) => Ok(secret.clone()),
        None => load_or_generate(&config.data_dir.join(SECRET_KEY_FILE)),
    }
}

/// Reads an existing key file without creating one (for `orchestrator token`).
pub fn read_existing(path: &Path) -> anyhow::Result<Option<Secret>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(Secret::new(text.trim().to_string()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn load_or_generate(path: &Path) -> anyhow::Result<Secret> {
    if let Some(secret) = read_existing(path)? {
        return Ok(secret);
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    write_private(path, &text)?;
    // Another process may have created the file first: its key is the one that counts.
    read_existing(path)?.with_context(|| format!("{} vanished after creation", path.display()))
}

/// Writes `text` to a new file readable only by its owner. Fails if the file exists, so two
/// processes starting at once cannot overwrite each other's key.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            file.sync_all().ok();
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}
