//! How the api-server authenticates callers: the Secret with a generated admin API key, and the
//! environment variables and Secret volumes of its container. The processor and the jobs get
//! none of this; they serve no API.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::api::core::v1::{
    EnvVar, KeyToPath, Secret, SecretVolumeSource, Volume, VolumeMount,
};
use kube::ResourceExt;

use super::child_meta;
use super::pod::value_env;
use crate::crd::{NotificationPlatform, SecretKeyRef};

/// Key of the generated API keys Secret.
pub const API_KEYS_KEY: &str = "keys";
/// Random bytes of one generated API key: 4 for its id, 32 for its secret part.
pub const API_KEY_RANDOM_BYTES: usize = 36;
/// Where the Secret volumes are mounted, one directory per purpose.
const AUTH_DIR: &str = "/etc/herald/auth";

pub fn api_keys_secret_name(platform: &NotificationPlatform) -> String {
    format!("{}-api-keys", platform.name_any())
}

/// The Secret key the api-server reads its API keys from: the spec's, else the generated
/// Secret's; none when authentication is off.
pub fn api_keys_ref(platform: &NotificationPlatform) -> Option<SecretKeyRef> {
    let auth = &platform.spec.auth;
    if auth.insecure_no_auth {
        return None;
    }
    Some(
        auth.api_keys_secret_ref
            .clone()
            .unwrap_or_else(|| SecretKeyRef {
                name: api_keys_secret_name(platform),
                key: API_KEYS_KEY.into(),
            }),
    )
}

/// The generated API keys Secret, with one admin key made from `random` (CSPRNG bytes, handed
/// in so that this stays a pure function). Owned by the platform, so it goes with it.
pub fn api_keys_secret(
    platform: &NotificationPlatform,
    random: &[u8; API_KEY_RANDOM_BYTES],
) -> Secret {
    let line = format!("admin admin,publish,read:all {}\n", api_key(random));
    Secret {
        metadata: child_meta(platform, api_keys_secret_name(platform), "auth"),
        string_data: Some(BTreeMap::from([(API_KEYS_KEY.to_owned(), line)])),
        ..Secret::default()
    }
}

/// `hk_<key id: 8 hex>_<secret: 43 base64url>`, the format the api-server parses.
fn api_key(random: &[u8; API_KEY_RANDOM_BYTES]) -> String {
    let (id, secret) = random.split_at(4);
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!("hk_{id}_{}", URL_SAFE_NO_PAD.encode(secret))
}

/// What the api-server container gets for authentication.
#[derive(Debug, Default)]
pub(super) struct AuthWiring {
    pub(super) env: Vec<EnvVar>,
    pub(super) volumes: Vec<Volume>,
    pub(super) mounts: Vec<VolumeMount>,
}

impl AuthWiring {
    /// Mounts one Secret key as the file `file` in its own directory and points `env` at it.
    /// A whole-volume mount, not `subPath`: the kubelet never updates a `subPath` file, and
    /// the api-server re-reads the file to pick up a new Secret value without a restart.
    fn secret_file(&mut self, env: &str, purpose: &str, file: &str, secret: &SecretKeyRef) {
        let volume = format!("auth-{purpose}");
        let dir = format!("{AUTH_DIR}/{purpose}");
        self.env.push(value_env(env, &format!("{dir}/{file}")));
        self.volumes.push(Volume {
            name: volume.clone(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.name.clone()),
                items: Some(vec![KeyToPath {
                    key: secret.key.clone(),
                    path: file.to_owned(),
                    mode: None,
                }]),
                optional: Some(false),
                default_mode: None,
            }),
            ..Volume::default()
        });
        self.mounts.push(VolumeMount {
            name: volume,
            mount_path: dir,
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
}

pub(super) fn auth_wiring(platform: &NotificationPlatform) -> AuthWiring {
    let auth = &platform.spec.auth;
    let mut wiring = AuthWiring::default();
    // Always set: the api-server's own default has changed before.
    wiring.env.push(value_env(
        "CORS_ALLOWED_ORIGINS",
        &auth.allowed_origins.join(","),
    ));
    if auth.insecure_no_auth {
        wiring
            .env
            .push(value_env("HERALD_INSECURE_NO_AUTH", "true"));
    }
    if let Some(jwt) = &auth.jwt {
        if let Some(secret) = &jwt.secret_ref {
            wiring.secret_file("JWT_SECRET_FILE", "jwt-secret", "secret", secret);
        }
        if let Some(secret) = &jwt.public_key_secret_ref {
            wiring.secret_file(
                "JWT_PUBLIC_KEY_FILE",
                "jwt-public-key",
                "public-key.pem",
                secret,
            );
        }
        for (name, value) in [
            ("JWKS_URL", &jwt.jwks_url),
            ("JWT_ISSUER", &jwt.issuer),
            ("JWT_AUDIENCE", &jwt.audience),
        ] {
            if let Some(value) = value {
                wiring.env.push(value_env(name, value));
            }
        }
    }
    if let Some(secret) = api_keys_ref(platform) {
        wiring.secret_file("API_KEYS_FILE", "api-keys", API_KEYS_KEY, &secret);
    }
    wiring
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_fixtures::platform;
    use crate::crd::AuthSpec;

    fn with_auth(auth: serde_json::Value) -> NotificationPlatform {
        let mut p = platform();
        p.spec.auth = serde_json::from_value::<AuthSpec>(auth).unwrap();
        p
    }

    fn env(wiring: &AuthWiring) -> BTreeMap<&str, &str> {
        wiring
            .env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_deref().unwrap()))
            .collect()
    }

    #[test]
    fn generated_key_has_the_api_server_format() {
        let mut random = [0u8; API_KEY_RANDOM_BYTES];
        random[..4].copy_from_slice(&[0xde, 0xad, 0x00, 0x0f]);
        random[4] = 0xff;
        let key = api_key(&random);
        assert!(key.starts_with("hk_dead000f_"), "{key}");
        let secret = &key["hk_dead000f_".len()..];
        assert_eq!(secret.len(), 43);
        assert!(secret.starts_with('_'), "base64url, not base64: {secret}");
        assert!(
            secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn generated_secret_holds_one_admin_line_and_is_owned() {
        let secret = api_keys_secret(&platform(), &[7; API_KEY_RANDOM_BYTES]);
        assert_eq!(secret.metadata.name.as_deref(), Some("demo-api-keys"));
        assert_eq!(secret.metadata.namespace.as_deref(), Some("herald"));
        let owner = &secret.metadata.owner_references.unwrap()[0];
        assert_eq!(owner.kind, "NotificationPlatform");
        let line = &secret.string_data.unwrap()[API_KEYS_KEY];
        let fields: Vec<_> = line.trim_end().split(' ').collect();
        assert_eq!(fields[..2], ["admin", "admin,publish,read:all"]);
        assert!(fields[2].starts_with("hk_07070707_"));
        assert_eq!(fields.len(), 3);
        assert!(line.ends_with('\n') && line.lines().count() == 1);
    }

    #[test]
    fn default_mounts_the_generated_api_keys_and_allows_no_origin() {
        let wiring = auth_wiring(&platform());
        let env = env(&wiring);
        assert_eq!(env["API_KEYS_FILE"], "/etc/herald/auth/api-keys/keys");
        assert_eq!(env["CORS_ALLOWED_ORIGINS"], "");
        assert!(!env.contains_key("HERALD_INSECURE_NO_AUTH"));
        let secret = wiring.volumes[0].secret.as_ref().unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("demo-api-keys"));
        let items = secret.items.as_ref().unwrap();
        assert_eq!(
            (items[0].key.as_str(), items[0].path.as_str()),
            ("keys", "keys")
        );
        let mount = &wiring.mounts[0];
        assert_eq!(mount.name, wiring.volumes[0].name);
        assert_eq!(mount.mount_path, "/etc/herald/auth/api-keys");
        assert_eq!(mount.read_only, Some(true));
        assert_eq!(mount.sub_path, None, "the kubelet never updates a subPath");
    }

    #[test]
    fn referenced_secrets_are_mounted_and_settings_become_env() {
        let p = with_auth(serde_json::json!({
            "jwt": {"publicKeySecretRef": {"name": "idp", "key": "tls.pub"}, "issuer": "https://idp", "audience": "herald"},
            "apiKeysSecretRef": {"name": "keys", "key": "api-keys"},
            "allowedOrigins": ["https://a.example", "http://localhost:5173"],
        }));
        let wiring = auth_wiring(&p);
        let env = env(&wiring);
        assert_eq!(
            env["JWT_PUBLIC_KEY_FILE"],
            "/etc/herald/auth/jwt-public-key/public-key.pem"
        );
        assert_eq!(env["JWT_ISSUER"], "https://idp");
        assert_eq!(env["JWT_AUDIENCE"], "herald");
        assert_eq!(
            env["CORS_ALLOWED_ORIGINS"],
            "https://a.example,http://localhost:5173"
        );
        assert!(!env.contains_key("JWT_SECRET_FILE") && !env.contains_key("JWKS_URL"));
        let sources: Vec<_> = wiring
            .volumes
            .iter()
            .map(|v| {
                let s = v.secret.as_ref().unwrap();
                let item = &s.items.as_ref().unwrap()[0];
                (
                    s.secret_name.clone().unwrap(),
                    item.key.clone(),
                    item.path.clone(),
                )
            })
            .collect();
        assert_eq!(
            sources,
            [
                ("idp".into(), "tls.pub".into(), "public-key.pem".into()),
                ("keys".into(), "api-keys".into(), "keys".into()),
            ]
        );
        assert!(wiring.mounts.iter().all(|m| m.sub_path.is_none()));
    }

    #[test]
    fn hmac_secret_and_jwks_url() {
        let hmac = auth_wiring(&with_auth(serde_json::json!({
            "jwt": {"secretRef": {"name": "jwt", "key": "secret"}},
        })));
        assert_eq!(
            env(&hmac)["JWT_SECRET_FILE"],
            "/etc/herald/auth/jwt-secret/secret"
        );
        let jwks = auth_wiring(&with_auth(serde_json::json!({
            "jwt": {"jwksUrl": "https://idp.example/.well-known/jwks.json"},
        })));
        assert_eq!(
            env(&jwks)["JWKS_URL"],
            "https://idp.example/.well-known/jwks.json"
        );
        // Only the API keys file is mounted: a JWKS is fetched, not mounted.
        assert_eq!(jwks.volumes.len(), 1);
    }

    #[test]
    fn insecure_no_auth_mounts_nothing() {
        let p = with_auth(serde_json::json!({"insecureNoAuth": true}));
        let wiring = auth_wiring(&p);
        assert_eq!(env(&wiring)["HERALD_INSECURE_NO_AUTH"], "true");
        assert!(wiring.volumes.is_empty() && wiring.mounts.is_empty());
        assert_eq!(api_keys_ref(&p), None);
    }
}
