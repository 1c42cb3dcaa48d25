//! BackupStorageLocation: check periodically that the store answers with the given
//! credentials, and say why when it does not.

use crate::context::Context;
use arca_api::common::{now, secret_strings};
use arca_api::location::LocationPhase;
use arca_api::BackupStorageLocation;
use arca_storage::FileType;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::time::Duration;

/// Checks happen this often unless the location says otherwise.
pub const DEFAULT_VALIDATION: Duration = Duration::from_secs(60);

/// The storage options and credentials of a location, for opening repositories in it.
pub async fn storage_options(
    ctx: &Context,
    bsl: &BackupStorageLocation,
) -> Result<arca_storage::options::Options, String> {
    let mut options =
        arca_storage::options::Options::parse(bsl.spec.options().iter().map(String::as_str))
            .map_err(|e| e.to_string())?;
    if let Some(cred) = &bsl.spec.credential {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        let secret = secrets
            .get_opt(&cred.name)
            .await
            .map_err(|e| format!("cannot read Secret {}: {e}", cred.name))?
            .ok_or_else(|| format!("credential Secret {} not found", cred.name))?;
        options.env = secret_strings(&secret);
    }
    Ok(options)
}

/// Whether the location answers: list the keys of a repository path under its prefix (none
/// need exist). Errors are the storage layer's one-line reasons (access denied, no such
/// bucket, cannot reach).
pub async fn probe(ctx: &Context, bsl: &BackupStorageLocation) -> Result<(), String> {
    let options = storage_options(ctx, bsl).await?;
    let url = bsl.spec.repository_url("");
    let backend = arca_storage::open_with(&url, &options).map_err(|e| e.to_string())?;
    match backend.list(FileType::Key).await {
        Ok(_) => Ok(()),
        Err(arca_storage::StorageError::NotFound { .. })
        | Err(arca_storage::StorageError::NoRepository(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// What one check found, as recorded in the location's status.
#[derive(Debug, PartialEq, Eq)]
pub struct Checked {
    pub phase: LocationPhase,
    /// Why it is unavailable.
    pub problem: Option<String>,
    /// When to check again.
    pub again: Duration,
}

/// Check one location and record the result.
pub async fn reconcile(bsl: &BackupStorageLocation, ctx: &Context) -> Result<Checked, String> {
    let name = bsl.name_any();
    let (phase, problem) = match probe(ctx, bsl).await {
        Ok(()) => (LocationPhase::Available, None),
        Err(e) => (LocationPhase::Unavailable, Some(e)),
    };
    let api: Api<BackupStorageLocation> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "phase": phase,
            "message": problem,
            "lastValidationTime": now(),
        }})),
    )
    .await
    .map_err(|e| format!("cannot update BackupStorageLocation {name}: {e}"))?;
    let again = bsl
        .spec
        .validation_frequency
        .as_deref()
        .and_then(|f| humantime::parse_duration(f).ok())
        .unwrap_or(DEFAULT_VALIDATION);
    Ok(Checked {
        phase,
        problem,
        again,
    })
}
