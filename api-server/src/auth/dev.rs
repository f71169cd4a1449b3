//! Development credentials: in embedded mode with no credential configured, the server makes
//! an admin API key and a JWT secret in its data directory on the first start (and reuses
//! them after), so the quick start is secure and still one command.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_core::db::{Db, StoredApiKey};

use super::api_keys::{self, hex};

pub const API_KEY_FILE: &str = "dev-api-key";
pub const JWT_SECRET_FILE: &str = "dev-jwt-secret";
const KEY_NAME: &str = "development";

pub struct DevCredentials {
    pub api_key_file: PathBuf,
    pub jwt_secret_file: PathBuf,
}

/// The development key and secret in `data_dir`, made if missing (or if the key is no longer
/// valid in `db`).
pub async fn ensure(data_dir: &Path, db: &Db) -> anyhow::Result<DevCredentials> {
    let api_key_file = data_dir.join(API_KEY_FILE);
    let jwt_secret_file = data_dir.join(JWT_SECRET_FILE);
    let stored = db.api_keys().await.context("reading the API keys")?;
    let current = std::fs::read_to_string(&api_key_file).ok();
    let valid = current
        .as_deref()
        .and_then(|token| api_keys::split(token.trim()))
        .is_some_and(|(id, _)| stored.iter().any(|k| k.id == id && k.revoked_at.is_none()));
    if !valid {
        let key = api_keys::generate().context("generating the development API key")?;
        db.insert_api_key(&StoredApiKey {
            id: key.id.clone(),
            name: KEY_NAME.to_owned(),
            scopes: "admin".to_owned(),
            secret_sha256: hex(&key.secret_sha256),
            created_at: chrono::Utc::now(),
            revoked_at: None,
        })
        .await
        .context("storing the development API key")?;
        write_private(&api_key_file, &key.token)?;
    }
    if !jwt_secret_file.exists() {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("generating a secret: {e}"))?;
        write_private(&jwt_secret_file, &URL_SAFE_NO_PAD.encode(secret))?;
    }
    Ok(DevCredentials {
        api_key_file,
        jwt_secret_file,
    })
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{text}").with_context(|| format!("writing {}", path.display()))
}
