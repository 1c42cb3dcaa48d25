//! Writing an object's status: a merge patch of the status subresource.

use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::{json, Value};

/// Merge `status` into the status of object `name`.
pub async fn patch_status<K>(api: &Api<K>, name: &str, status: Value) -> Result<(), String>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .map(drop)
    .map_err(|e| format!("cannot update {} {name}: {e}", K::kind(&())))
}
