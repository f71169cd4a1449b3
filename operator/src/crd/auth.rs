//! Who may call the api-server: user tokens (JWT), API keys, and the browser origins allowed by
//! CORS. Secrets are mounted as volumes, which the kubelet keeps up to date and the api-server
//! re-reads every 10 seconds, so a new Secret value takes effect without a restart.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::secret_ref::SecretKeyRef;

/// Authentication of the api-server; the platform's `auth` field says what the default is.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!self.insecureNoAuth || (!has(self.jwt) && !has(self.apiKeysSecretRef))")
        .message("insecureNoAuth cannot be combined with jwt or apiKeysSecretRef")
)]
pub struct AuthSpec {
    /// Accept user tokens (JWTs) checked against one key source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtSpec>,
    /// Secret key holding the API keys file: one key per line, `<name> <scopes> <key>`, scopes
    /// comma-separated from `publish`, `read:all`, `admin`; `#` comments and blank lines are
    /// ignored, and several keys may be valid at once for rotation. A new value of the Secret
    /// reaches running pods within about a minute, without a restart; naming another Secret or
    /// key rolls the pods out. When unset, the operator generates `<name>-api-keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_keys_secret_ref: Option<SecretKeyRef>,
    /// Origins browsers may call the API and open streams from, e.g.
    /// `https://app.example.com`, or `*` for any; none when empty.
    #[serde(default)]
    #[schemars(length(max = 50), inner(regex(pattern = r"^(\*|https?://[^\s,/]+)$")))]
    pub allowed_origins: Vec<String>,
    /// Serve the API without any authentication: anyone who reaches the Service can publish
    /// and read every notification. Only for local experiments.
    #[serde(default)]
    pub insecure_no_auth: bool,
}

/// Where the keys that sign user tokens come from: exactly one of `secretRef`,
/// `publicKeySecretRef` and `jwksUrl`. A new Secret value reaches running pods without a
/// restart; naming another Secret or key rolls the pods out.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("[has(self.secretRef), has(self.publicKeySecretRef), has(self.jwksUrl)].filter(s, s).size() == 1")
        .message("jwt needs exactly one of secretRef, publicKeySecretRef and jwksUrl")
)]
pub struct JwtSpec {
    /// Secret key holding the HMAC secret (at least 32 bytes) of HS256/HS384/HS512 tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// Secret key holding a PEM public key (RSA, EC P-256/P-384 or Ed25519) of
    /// RS*/PS*/ES*/EdDSA tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_secret_ref: Option<SecretKeyRef>,
    /// URL of a JWKS document: `https://`, or `http://` to a `.svc` host or localhost only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(JWKS_URL_RULE)
        .message("jwksUrl must be an https:// URL (http:// only to a .svc host or localhost)"))]
    pub jwks_url: Option<String>,
    /// Required `iss` claim, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub audience: Option<String>,
}

/// Plain HTTP would let anyone on the path swap the signing keys; inside the cluster (a
/// Service's `.svc` name) or the pod itself that path is not a network an attacker shares.
const JWKS_URL_RULE: &str = "isURL(self) && url(self).getHostname() != '' && \
    (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && \
    (url(self).getHostname() == 'localhost' || url(self).getHostname().endsWith('.svc') || \
    url(self).getHostname().endsWith('.svc.cluster.local'))))";
