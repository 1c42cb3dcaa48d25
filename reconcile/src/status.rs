//! Writing an object's status: a merge patch of the status subresource.

use crate::{Error, Wrap};
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde::Serialize;

/// Merge `status` into the status of object `name`. `status` is a typed status struct
/// (its unset optional fields are left as they are) or a `json!` of the fields to change.
pub async fn patch_status<K>(api: &Api<K>, name: &str, status: &impl Serialize) -> Result<(), Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let status = serde_json::to_value(status).map_err(Error::Encoding)?;
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .map(drop)
    .map_err(<Error as Wrap>::api(format!(
        "cannot update {} {name}",
        K::kind(&())
    )))
}
