//! Finding the pods that operations refer to. By name through a list: the operator may list
//! pods everywhere but not get them (one grant fewer). By reference, only the same pod: one
//! deleted and made again under its name is another pod.

use arca_api::common::PodReference;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::ResourceExt;

/// Pod `namespace/name`, if there is one.
pub async fn by_name(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> kube::Result<Option<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let by_name = ListParams::default().fields(&format!("metadata.name={name}"));
    Ok(pods.list(&by_name).await?.items.into_iter().next())
}

/// The pod `reference` names, if it still exists (the same UID).
pub async fn by_reference(
    client: &kube::Client,
    reference: &PodReference,
) -> kube::Result<Option<Pod>> {
    Ok(by_name(client, &reference.namespace, &reference.name)
        .await?
        .filter(|p| p.uid().as_deref() == Some(reference.uid.as_str())))
}
