//! Where the credentials come from: key files (mounted Secrets), the database's API keys and
//! a JWKS URL; read at start-up and again every reload interval, so a rotated Secret or a
//! revoked key applies without a restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use herald_core::db::Db;
use tokio_util::sync::CancellationToken;

use super::api_keys::{KeyRing, unhex};
use super::authenticator::Authenticator;
use super::jwks::Jwks;
use super::jwt::Verifier;
use super::scopes::Scopes;
use super::static_key::StaticKey;

pub struct Sources {
    pub jwt_secret_file: Option<PathBuf>,
    pub jwt_public_key_file: Option<PathBuf>,
    pub api_keys_file: Option<PathBuf>,
    pub db: Db,
}

impl Sources {
    /// The user token verifier the key files give, if any.
    pub fn static_verifier(&self) -> Result<Option<Verifier>, String> {
        self.jwt_key()?
            .map(|key| self.verifier_of(&key))
            .transpose()
    }

    /// The contents of the JWT key file (the HMAC secret or the PEM), if one is configured.
    fn jwt_key(&self) -> Result<Option<Vec<u8>>, String> {
        let Some(path) = self
            .jwt_secret_file
            .as_ref()
            .or(self.jwt_public_key_file.as_ref())
        else {
            return Ok(None);
        };
        std::fs::read(path)
            .map(Some)
            .map_err(|e| format!("reading the JWT key file {}: {e}", path.display()))
    }

    fn verifier_of(&self, key: &[u8]) -> Result<Verifier, String> {
        let key = match (&self.jwt_secret_file, &self.jwt_public_key_file) {
            (Some(path), _) => StaticKey::hmac(key.trim_ascii())
                .map_err(|e| format!("the JWT secret in {}: {e}", path.display()))?,
            (None, Some(path)) => StaticKey::pem(key)
                .map_err(|e| format!("the JWT public key in {}: {e}", path.display()))?,
            (None, None) => return Err("no JWT key file is configured".into()),
        };
        Ok(Verifier::Static(key))
    }

    /// The valid API keys: the keys file's and the database's unrevoked ones.
    pub async fn keys(&self) -> Result<KeyRing, String> {
        let mut ring = KeyRing::default();
        if let Some(path) = &self.api_keys_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reading the API keys file {}: {e}", path.display()))?;
            ring.add_file(&text)
                .map_err(|e| format!("the API keys file {}: {e}", path.display()))?;
        }
        let stored = self
            .db
            .api_keys()
            .await
            .map_err(|e| format!("reading the API keys: {e}"))?;
        for key in stored.into_iter().filter(|k| k.revoked_at.is_none()) {
            let (Ok(scopes), Some(digest)) =
                (Scopes::parse(&key.scopes), unhex(&key.secret_sha256))
            else {
                tracing::warn!(key = %key.id, "skipping an API key whose stored row is corrupt");
                continue;
            };
            ring.insert(key.id, key.name, scopes, digest);
        }
        Ok(ring)
    }

    /// Loads everything into `auth` once; fails on a bad file, so a typo stops the start.
    pub async fn load(&self, auth: &Authenticator, jwks_url: Option<&str>) -> anyhow::Result<()> {
        match jwks_url {
            Some(url) => {
                let jwks = Jwks::new(url.to_owned()).map_err(anyhow::Error::msg)?;
                match jwks.refresh().await {
                    Ok(count) => tracing::info!(keys = count, "JWKS loaded"),
                    // The provider may come up later; tokens are checked against it then.
                    Err(error) => tracing::warn!(%error, "could not fetch the JWKS yet"),
                }
                auth.set_verifier(Some(Verifier::Jwks(jwks)));
            }
            None => auth.set_verifier(self.static_verifier().map_err(anyhow::Error::msg)?),
        }
        auth.set_keys(self.keys().await.map_err(anyhow::Error::msg)?);
        Ok(())
    }
}

/// How often a JWKS is fetched again besides when a token names an unknown key.
const JWKS_REFRESH: Duration = Duration::from_secs(300);

/// Until shutdown: reloads the files and the database's keys every `every`, and a JWKS every
/// [`JWKS_REFRESH`]. The JWT key is swapped only when its file changed, since a new verifier
/// forgets the tokens it had verified. A source that fails to load keeps what was loaded
/// before (a half-written Secret update must not lock everyone out), and says so in the log.
pub async fn keep_loaded(
    auth: Arc<Authenticator>,
    sources: Sources,
    jwks: bool,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut jwks_fetched = tokio::time::Instant::now();
    // Unknown at first: the first reload swaps the key in once, whatever `load` read.
    let mut jwt_key = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if jwks && jwks_fetched.elapsed() >= JWKS_REFRESH {
            jwks_fetched = tokio::time::Instant::now();
            auth.refresh_keys().await;
        }
        if !jwks {
            let changed = match sources.jwt_key() {
                Ok(key) if jwt_key.as_ref() == Some(&key) => Ok(None),
                Ok(key) => key
                    .as_deref()
                    .map(|bytes| sources.verifier_of(bytes))
                    .transpose()
                    .map(|verifier| Some((key, verifier))),
                Err(error) => Err(error),
            };
            match changed {
                Ok(Some((key, verifier))) => {
                    auth.set_verifier(verifier);
                    jwt_key = Some(key);
                }
                Ok(None) => {}
                Err(error) => tracing::error!(%error, "keeping the previous JWT key"),
            }
        }
        match sources.keys().await {
            Ok(keys) => auth.set_keys(keys),
            Err(error) => tracing::error!(%error, "keeping the previous API keys"),
        }
    }
}
