//! The API keys Secret the operator generates when the spec names none: the secure default,
//! so that a platform never starts with an open API by accident.

use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client};

use super::error::Error;
use crate::builders::{API_KEY_RANDOM_BYTES, api_keys_secret, api_keys_secret_name};
use crate::crd::NotificationPlatform;

/// Creates the API keys Secret with one admin key when the spec names none, and says whether
/// it did. Create-only: an existing Secret is never overwritten, so keys are never rotated
/// behind the user's back, and a user may edit it to add or rotate keys.
pub(super) async fn ensure_api_keys_secret(
    client: &Client,
    namespace: &str,
    platform: &NotificationPlatform,
) -> Result<bool, Error> {
    let auth = &platform.spec.auth;
    if auth.insecure_no_auth || auth.api_keys_secret_ref.is_some() {
        return Ok(false);
    }
    let name = api_keys_secret_name(platform);
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    // Asked first rather than a create answered by AlreadyExists on every reconcile.
    let existing =
        secrets
            .get_metadata_opt(&name)
            .await
            .map_err(|source| Error::ReadApiKeysSecret {
                name: name.clone(),
                source,
            })?;
    if existing.is_some() {
        return Ok(false);
    }
    let mut random = [0; API_KEY_RANDOM_BYTES];
    getrandom::fill(&mut random).map_err(|source| Error::GenerateApiKey { source })?;
    match secrets
        .create(&PostParams::default(), &api_keys_secret(platform, &random))
        .await
    {
        Ok(_) => Ok(true),
        // Another operator replica was faster; its key stands.
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
        Err(source) => Err(Error::CreateApiKeysSecret { name, source }),
    }
}
