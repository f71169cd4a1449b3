//! The authentication settings of the command line and environment.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Turn authentication off: anyone who reaches the server may publish and read every
    /// user's notifications. For a trusted network only; logged as a warning at every start.
    #[arg(long, env = "HERALD_INSECURE_NO_AUTH", global = true)]
    pub insecure_no_auth: bool,

    /// File holding the HMAC secret (at least 32 bytes) that user JWTs are signed with
    /// (HS256, HS384, HS512).
    #[arg(long, env = "JWT_SECRET_FILE", global = true)]
    pub jwt_secret_file: Option<PathBuf>,

    /// File holding the PEM public key (RSA, EC P-256/P-384 or Ed25519) that user JWTs are
    /// signed with (RS*, PS*, ES256, ES384, EdDSA).
    #[arg(
        long,
        env = "JWT_PUBLIC_KEY_FILE",
        global = true,
        conflicts_with = "jwt_secret_file"
    )]
    pub jwt_public_key_file: Option<PathBuf>,

    /// URL of the JWKS that user JWTs are verified against (an identity provider's
    /// `jwks_uri`); fetched again when a token names an unknown `kid`.
    #[arg(long, env = "JWKS_URL", global = true, conflicts_with_all = ["jwt_secret_file", "jwt_public_key_file"])]
    pub jwks_url: Option<String>,

    /// The `iss` user tokens must have.
    #[arg(long, env = "JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// The `aud` user tokens must have.
    #[arg(long, env = "JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

    /// Seconds of clock difference allowed on a token's `exp` and `nbf`.
    #[arg(long, env = "JWT_LEEWAY_SECONDS", default_value_t = 5, global = true)]
    pub jwt_leeway_seconds: u64,

    /// File of API keys, one per line: `<name> <scopes> <key>` (e.g. a mounted Secret).
    /// Keys made with `api-server keys create` are valid too.
    #[arg(long, env = "API_KEYS_FILE", global = true)]
    pub api_keys_file: Option<PathBuf>,

    /// Seconds between re-reads of the key files and the database's API keys: how long a
    /// rotated Secret or a revoked key takes to apply.
    #[arg(long, env = "AUTH_RELOAD_SECONDS", default_value_t = 10, global = true)]
    pub auth_reload_seconds: u64,

    /// Notifications one API key may create per second (0: no limit).
    #[arg(
        long,
        env = "RATE_LIMIT_PUBLISH",
        default_value_t = 2000,
        global = true
    )]
    pub rate_limit_publish: u32,

    /// Streams one user, API key or address (anonymous) may open per second (0: no limit).
    #[arg(long, env = "RATE_LIMIT_CONNECT", default_value_t = 20, global = true)]
    pub rate_limit_connect: u32,

    /// Failed authentications one address may make per second (0: no limit).
    #[arg(
        long,
        env = "RATE_LIMIT_AUTH_FAILURES",
        default_value_t = 10,
        global = true
    )]
    pub rate_limit_auth_failures: u32,
}

impl AuthArgs {
    /// Whether the settings name any way to verify a user token or an API key.
    pub fn names_a_credential(&self) -> bool {
        self.jwt_secret_file.is_some()
            || self.jwt_public_key_file.is_some()
            || self.jwks_url.is_some()
            || self.api_keys_file.is_some()
    }
}
