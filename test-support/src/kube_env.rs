use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::{reach, settings, unique_name, unreachable_component};

/// A namespace created for one test on the test environment's API server.
pub struct KubeNamespace {
    pub client: Client,
    pub name: String,
}

/// A client of the test environment's API server, checked to answer.
pub async fn kube_client() -> Client {
    let path = &settings().kubeconfig;
    let target = path.display().to_string();
    let kubeconfig =
        Kubeconfig::read_from(path).unwrap_or_else(|e| unreachable_component("kube", &target, e));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| unreachable_component("kube", &target, e));
    let server = config.cluster_url.to_string();
    let client =
        Client::try_from(config).unwrap_or_else(|e| unreachable_component("kube", &server, e));
    reach("kube", &server, client.apiserver_version()).await;
    client
}

/// Creates a namespace with a unique name.
pub async fn kube_namespace() -> KubeNamespace {
    let client = kube_client().await;
    let name = unique_name("t");
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    KubeNamespace { client, name }
}
