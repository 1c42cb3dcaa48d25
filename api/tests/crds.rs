//! The committed CRD YAML matches the Rust types, and the generated schemas validate what
//! they should.

use serde_json::Value;
use std::path::PathBuf;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

#[test]
fn committed_crds_match_the_types() {
    let path = deploy_dir().join("crds.yaml");
    let generated = arca_api::crds_yaml();
    if std::env::var_os("ARCA_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (generate it with ARCA_BLESS=1)", path.display()));
    assert!(
        committed == generated,
        "deploy/crds.yaml is out of date with api/: regenerate it with ARCA_BLESS=1 cargo test -p arca-api"
    );
}

/// The openAPIV3Schema of a kind's CRD.
fn schema(kind: &str) -> Value {
    let crd = arca_api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"));
    assert_eq!(crd.spec.group, "arca.dev");
    assert_eq!(crd.spec.versions.len(), 1);
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(v.served && v.storage);
    assert!(
        v.subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some(),
        "{kind} has no status subresource"
    );
    assert!(
        v.additional_printer_columns
            .as_ref()
            .is_some_and(|c| c.len() >= 3),
        "{kind} has too few printer columns"
    );
    serde_json::to_value(
        v.schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

/// The schema at a dotted path of properties (`spec.pod.uid`), `[]` stepping into arrays.
fn at<'a>(s: &'a Value, path: &str) -> &'a Value {
    let mut cur = s;
    for part in path.split('.') {
        cur = if part == "[]" {
            &cur["items"]
        } else {
            let next = &cur["properties"][part];
            assert!(!next.is_null(), "no field {part} in {path}");
            next
        };
    }
    cur
}

fn required(s: &Value, path: &str) -> Vec<String> {
    let obj = if path.is_empty() { s } else { at(s, path) };
    obj["required"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn enum_of(s: &Value, path: &str) -> Vec<String> {
    at(s, path)["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{path} is not an enum: {}", at(s, path)))
        .iter()
        // Optional enums list null among their values.
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn has_pattern(s: &Value, path: &str) {
    assert!(
        at(s, path)["pattern"].is_string(),
        "{path} has no pattern: {}",
        at(s, path)
    );
}

fn min_length(s: &Value, path: &str) -> u64 {
    at(s, path)["minLength"]
        .as_u64()
        .unwrap_or_else(|| panic!("{path} has no minLength"))
}

#[test]
fn backup_storage_location_schema() {
    let s = schema("BackupStorageLocation");
    assert_eq!(
        enum_of(&s, "spec.provider"),
        ["s3", "azure", "gcs", "rest", "local"]
    );
    assert_eq!(min_length(&s, "spec.bucket"), 1);
    for f in [
        "prefix",
        "config.endpoint",
        "config.region",
        "config.pathStyle",
        "credential.name",
        "default",
        "accessMode",
    ] {
        at(&s, &format!("spec.{f}"));
    }
    has_pattern(&s, "spec.validationFrequency");
    assert_eq!(required(&s, "spec"), ["bucket", "provider"]);
    assert_eq!(enum_of(&s, "status.phase"), ["Available", "Unavailable"]);
    for f in ["message", "lastValidationTime", "conditions"] {
        at(&s, &format!("status.{f}"));
    }
}

#[test]
fn backup_repository_schema() {
    let s = schema("BackupRepository");
    assert_eq!(
        required(&s, "spec"),
        ["backupStorageLocation", "repositoryUrl", "volumeNamespace"]
    );
    at(&s, "spec.keySecret.key");
    has_pattern(&s, "spec.maintenanceFrequency");
    assert_eq!(enum_of(&s, "status.phase"), ["New", "Ready", "NotReady"]);
    at(&s, "status.lastMaintenanceTime");
    assert_eq!(
        enum_of(&s, "status.recentMaintenance.[].result"),
        ["Succeeded", "Failed"]
    );
}

#[test]
fn backup_and_schedule_schemas() {
    let s = schema("Backup");
    for f in [
        "includedNamespaces",
        "excludedNamespaces",
        "includedResources",
        "excludedResources",
    ] {
        has_pattern(&s, &format!("spec.{f}.[]"));
    }
    at(&s, "spec.labelSelector.matchLabels");
    has_pattern(&s, "spec.ttl");
    at(&s, "spec.storageLocation");
    at(&s, "spec.defaultVolumesToFsBackup");
    assert_eq!(
        enum_of(&s, "status.phase"),
        [
            "New",
            "InProgress",
            "Completed",
            "PartiallyFailed",
            "Failed"
        ]
    );
    for f in [
        "totalItems",
        "itemsBackedUp",
        "totalVolumes",
        "volumesCompleted",
        "totalBytes",
        "bytesDone",
    ] {
        assert_eq!(
            at(&s, &format!("status.progress.{f}"))["minimum"],
            0.0,
            "{f}"
        );
    }
    for f in [
        "startTimestamp",
        "completionTimestamp",
        "expiration",
        "errors",
        "warnings",
        "failureReason",
    ] {
        at(&s, &format!("status.{f}"));
    }

    let s = schema("Schedule");
    has_pattern(&s, "spec.schedule");
    has_pattern(&s, "spec.template.ttl");
    assert_eq!(required(&s, "spec"), ["schedule", "template"]);
    assert_eq!(
        enum_of(&s, "status.phase"),
        ["New", "Enabled", "FailedValidation"]
    );
    at(&s, "status.lastBackup");
}

#[test]
fn restore_schema() {
    let s = schema("Restore");
    assert_eq!(required(&s, "spec"), ["backupName"]);
    assert_eq!(min_length(&s, "spec.backupName"), 1);
    assert_eq!(
        at(&s, "spec.namespaceMapping")["additionalProperties"]["type"],
        "string"
    );
    has_pattern(&s, "spec.includedNamespaces.[]");
    assert_eq!(
        enum_of(&s, "status.phase"),
        [
            "New",
            "InProgress",
            "Completed",
            "PartiallyFailed",
            "Failed"
        ]
    );
    at(&s, "status.progress.itemsRestored");
}

#[test]
fn pod_volume_schemas() {
    let s = schema("PodVolumeBackup");
    assert_eq!(required(&s, "spec.pod"), ["name", "namespace", "uid"]);
    for f in [
        "node",
        "volume",
        "backupStorageLocation",
        "repository",
        "repoIdentifier",
    ] {
        assert_eq!(min_length(&s, &format!("spec.{f}")), 1, "{f}");
    }
    at(&s, "spec.tags");
    at(&s, "spec.pvcUid");
    at(&s, "spec.cancel");
    assert_eq!(
        enum_of(&s, "status.phase"),
        ["New", "InProgress", "Completed", "Failed", "Canceled"]
    );
    for f in ["totalBytes", "bytesDone", "totalFiles", "filesDone"] {
        at(&s, &format!("status.progress.{f}"));
    }
    for f in [
        "snapshotId",
        "parentSnapshotId",
        "path",
        "message",
        "incrementalBytes",
        "startTimestamp",
        "completionTimestamp",
    ] {
        at(&s, &format!("status.{f}"));
    }

    let s = schema("PodVolumeRestore");
    has_pattern(&s, "spec.snapshotId");
    for f in ["sourceNamespace", "restoreUid", "repoIdentifier"] {
        assert_eq!(min_length(&s, &format!("spec.{f}")), 1, "{f}");
    }
    assert_eq!(required(&s, "spec.pod"), ["name", "namespace", "uid"]);
    at(&s, "status.progress.bytesDone");
    at(&s, "status.node");
}
