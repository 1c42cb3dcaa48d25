//! Arca's Kubernetes API (group `arca.dev`, version `v1alpha1`): the custom resources shared
//! by the operator, the node agent and `arca cluster`, and the CRD YAML generated from them.
//! Types only: no controllers and no I/O here.

pub mod backup;
pub mod common;
pub mod hooks;
pub mod location;
pub mod podvolume;
pub mod repository;
pub mod restore;
pub mod restore_hooks;
mod schema_fixups;

pub use backup::{Backup, BackupSpec, BackupStatus, Schedule, ScheduleSpec, ScheduleStatus};
pub use common::{
    OperationPhase, PodReference, SecretKeyRef, SecretRef, VolumePhase, VolumeProgress,
};
pub use location::{BackupStorageLocation, BackupStorageLocationSpec, BackupStorageLocationStatus};
pub use podvolume::{
    PodVolumeBackup, PodVolumeBackupSpec, PodVolumeBackupStatus, PodVolumeRestore,
    PodVolumeRestoreSpec, PodVolumeRestoreStatus,
};
pub use repository::{BackupRepository, BackupRepositorySpec, BackupRepositoryStatus};
pub use restore::{Restore, RestoreSpec, RestoreStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD, in the order `deploy/crds.yaml` lists them.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        BackupStorageLocation::crd(),
        BackupRepository::crd(),
        Backup::crd(),
        Restore::crd(),
        PodVolumeBackup::crd(),
        PodVolumeRestore::crd(),
        Schedule::crd(),
    ];
    for crd in &mut crds {
        for version in &mut crd.spec.versions {
            if let Some(props) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                let mut json = serde_json::to_value(&*props).expect("schemas serialise");
                schema_fixups::fix(&mut json);
                *props = serde_json::from_value(json).expect("a fixed schema is still a schema");
            }
        }
    }
    crds
}

/// The CRDs as one multi-document YAML file (what `deploy/crds.yaml` holds).
pub fn crds_yaml() -> String {
    let docs = serde_saphyr::to_string_multiple(&crds()).expect("CRDs serialise to YAML");
    format!(
        "# Generated from the Rust types in api/ (arca-api); do not edit.\n\
         # Regenerate with: ARCA_BLESS=1 cargo test -p arca-api\n{docs}"
    )
}
