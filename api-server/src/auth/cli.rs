//! `api-server keys create|list|revoke` and `api-server token`.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use herald_core::db::{Db, StoredApiKey};
use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

use super::api_keys::{self, hex};
use super::jwt::Expectations;
use super::scopes::Scopes;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key and print it; it is shown this once (only its hash is kept).
    Create {
        /// Who or what holds it, e.g. `billing-service`.
        #[arg(long)]
        name: String,
        /// Comma-separated: publish, read:all, admin.
        #[arg(long, default_value = "publish")]
        scopes: String,
    },
    /// List the keys: id, name, scopes, created, revoked.
    List,
    /// Revoke a key by id or name; servers stop accepting it within AUTH_RELOAD_SECONDS.
    Revoke { id_or_name: String },
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user the token is for (its `sub`).
    #[arg(long)]
    pub user: String,
    /// Seconds until it expires.
    #[arg(long, default_value_t = 3600)]
    pub ttl_seconds: u64,
}

pub async fn keys(command: KeysCommand, db: &Db) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { name, scopes } => {
            let scopes = Scopes::parse(&scopes).map_err(anyhow::Error::msg)?;
            anyhow::ensure!(
                !name.is_empty() && !name.contains(char::is_whitespace),
                "--name must be non-empty, without spaces"
            );
            let key = api_keys::generate().context("generating a key")?;
            db.insert_api_key(&StoredApiKey {
                id: key.id.clone(),
                name: name.clone(),
                scopes: scopes.to_string(),
                secret_sha256: hex(&key.secret_sha256),
                created_at: chrono::Utc::now(),
                revoked_at: None,
            })
            .await
            .context("storing the key")?;
            eprintln!(
                "created API key {} ({name}, {scopes}); it is not shown again:",
                key.id
            );
            println!("{}", key.token);
        }
        KeysCommand::List => {
            println!(
                "{:<10} {:<24} {:<24} {:<20} revoked",
                "id", "name", "scopes", "created"
            );
            for key in db.api_keys().await.context("reading the keys")? {
                let at =
                    |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
                println!(
                    "{:<10} {:<24} {:<24} {:<20} {}",
                    key.id,
                    key.name,
                    key.scopes,
                    at(key.created_at),
                    key.revoked_at.map_or_else(|| "-".to_owned(), at)
                );
            }
        }
        KeysCommand::Revoke { id_or_name } => {
            let revoked = db
                .revoke_api_key(&id_or_name, chrono::Utc::now())
                .await
                .context("revoking the key")?;
            anyhow::ensure!(
                revoked > 0,
                "no unrevoked key has the id or name {id_or_name:?}"
            );
            eprintln!("revoked {revoked} key(s)");
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// A user token signed (HS256) with `secret`, with the issuer and audience the server expects.
pub fn token(args: &TokenArgs, secret: &[u8], expect: &Expectations) -> anyhow::Result<String> {
    herald_core::notification::check_user_id(&args.user)
        .map_err(|problem| anyhow::anyhow!("--user {problem}"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = Claims {
        sub: &args.user,
        iat: now,
        exp: now + args.ttl_seconds,
        iss: expect.issuer.as_deref(),
        aud: expect.audience.as_deref(),
    };
    Ok(jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret),
    )?)
}
