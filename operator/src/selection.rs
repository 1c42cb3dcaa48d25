//! What a Backup covers: which namespaces and resources are in scope, and which volumes of
//! a pod to back up (by annotation, or all of them with `defaultVolumesToFsBackup`).

use arca_api::backup::{
    BACKUP_VOLUMES_ANNOTATION, BACKUP_VOLUMES_EXCLUDES_ANNOTATION,
    LEGACY_BACKUP_VOLUMES_ANNOTATIONS,
};
use arca_api::common::ResourceScope;
use k8s_openapi::api::core::v1::{Pod, Volume};
use kube::ResourceExt;

/// Whether `name` passes an include list (empty or `*`: everything) and an exclude list.
pub fn passes(name: &str, include: &[String], exclude: &[String]) -> bool {
    let listed = |l: &[String]| l.iter().any(|x| x == "*" || x == name);
    (include.is_empty() || listed(include)) && !listed(exclude)
}

/// Whether objects of namespace `ns` are in scope (cluster-scoped objects have none).
pub fn namespace_in_scope(scope: &ResourceScope, ns: &str) -> bool {
    passes(ns, &scope.included_namespaces, &scope.excluded_namespaces)
}

/// Whether a resource is in scope. `plural` is the resource (`deployments`), `group` its
/// API group (empty for the core group); lists may name either `deployments` or
/// `deployments.apps`.
pub fn resource_in_scope(scope: &ResourceScope, plural: &str, group: &str) -> bool {
    let full = if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    };
    let listed = |l: &[String]| l.iter().any(|x| x == "*" || *x == full || x == plural);
    (scope.included_resources.is_empty() || listed(&scope.included_resources))
        && !listed(&scope.excluded_resources)
}

fn names_in(pod: &Pod, annotation: &str) -> Vec<String> {
    pod.annotations()
        .get(annotation)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Volumes that hold no data of the pod's own: they come back from the API objects.
fn is_api_projection(v: &Volume) -> bool {
    v.secret.is_some()
        || v.config_map.is_some()
        || v.projected.is_some()
        || v.downward_api.is_some()
}

/// The volumes of `pod` to back up, and a warning for each one asked for but skipped.
pub fn pod_volumes(pod: &Pod, default_volumes_to_fs_backup: bool) -> (Vec<String>, Vec<String>) {
    let who = format!(
        "pod {}/{}",
        pod.namespace().unwrap_or_default(),
        pod.name_any()
    );
    let volumes: &[Volume] = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or(&[]);
    let mut asked: Vec<String> = names_in(pod, BACKUP_VOLUMES_ANNOTATION);
    for a in LEGACY_BACKUP_VOLUMES_ANNOTATIONS {
        for n in names_in(pod, a) {
            if !asked.contains(&n) {
                asked.push(n);
            }
        }
    }
    let mut warnings = Vec::new();
    if default_volumes_to_fs_backup {
        let excluded = names_in(pod, BACKUP_VOLUMES_EXCLUDES_ANNOTATION);
        for v in volumes {
            if !asked.contains(&v.name) && !excluded.contains(&v.name) && !is_api_projection(v) {
                if v.host_path.is_some() {
                    continue; // not asked for by name: skipped without a warning
                }
                asked.push(v.name.clone());
            }
        }
    }
    let mut out = Vec::new();
    for name in asked {
        match volumes.iter().find(|v| v.name == name) {
            None => warnings.push(format!(
                "{who}: volume {name} named in its annotation does not exist in the pod"
            )),
            Some(v) if v.host_path.is_some() => warnings.push(format!(
                "{who}: volume {name} is a hostPath volume, not backed up"
            )),
            Some(_) => out.push(name),
        }
    }
    (out, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource,
        PersistentVolumeClaimVolumeSource, PodSpec,
    };
    use kube::api::ObjectMeta;

    fn pod(annotations: &[(&str, &str)]) -> Pod {
        let vol = |name: &str| Volume {
            name: name.into(),
            ..Default::default()
        };
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("shop".into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(PodSpec {
                volumes: Some(vec![
                    Volume {
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name: "data".into(),
                            ..Default::default()
                        }),
                        ..vol("data")
                    },
                    Volume {
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..vol("cache")
                    },
                    Volume {
                        host_path: Some(HostPathVolumeSource {
                            path: "/var/log".into(),
                            ..Default::default()
                        }),
                        ..vol("logs")
                    },
                    Volume {
                        config_map: Some(ConfigMapVolumeSource::default()),
                        ..vol("config")
                    },
                ]),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn annotations_choose_volumes_and_bad_names_warn() {
        let (v, w) = pod_volumes(&pod(&[(BACKUP_VOLUMES_ANNOTATION, "data, cache")]), false);
        assert_eq!(
            (v, w),
            (vec!["data".to_string(), "cache".to_string()], vec![])
        );
        // Ark's and Velero's spellings work too.
        let (v, _) = pod_volumes(&pod(&[("backup.velero.io/backup-volumes", "cache")]), false);
        assert_eq!(v, ["cache"]);
        let (v, _) = pod_volumes(
            &pod(&[("backup.ark.heptio.com/backup-volumes", "data")]),
            false,
        );
        assert_eq!(v, ["data"]);
        let (v, w) = pod_volumes(
            &pod(&[(BACKUP_VOLUMES_ANNOTATION, "data,nope,logs")]),
            false,
        );
        assert_eq!(v, ["data"]);
        assert_eq!(
            w,
            [
                "pod shop/web-0: volume nope named in its annotation does not exist in the pod",
                "pod shop/web-0: volume logs is a hostPath volume, not backed up"
            ]
        );
        assert_eq!(pod_volumes(&pod(&[]), false), (vec![], vec![]));
    }

    #[test]
    fn default_volumes_to_fs_backup_takes_data_volumes_less_the_excluded() {
        let (v, w) = pod_volumes(&pod(&[]), true);
        assert_eq!(v, ["data", "cache"]);
        assert!(w.is_empty());
        let (v, _) = pod_volumes(&pod(&[(BACKUP_VOLUMES_EXCLUDES_ANNOTATION, "cache")]), true);
        assert_eq!(v, ["data"]);
    }

    #[test]
    fn scope_filters() {
        let scope = ResourceScope {
            included_namespaces: vec!["shop".into(), "blog".into()],
            excluded_resources: vec!["secrets".into(), "replicasets.apps".into()],
            ..Default::default()
        };
        assert!(namespace_in_scope(&scope, "shop"));
        assert!(!namespace_in_scope(&scope, "kube-system"));
        assert!(resource_in_scope(&scope, "pods", ""));
        assert!(!resource_in_scope(&scope, "secrets", ""));
        assert!(!resource_in_scope(&scope, "replicasets", "apps"));
        assert!(resource_in_scope(&scope, "deployments", "apps"));
        let all = ResourceScope {
            included_namespaces: vec!["*".into()],
            excluded_namespaces: vec!["kube-system".into()],
            ..Default::default()
        };
        assert!(namespace_in_scope(&all, "anything"));
        assert!(!namespace_in_scope(&all, "kube-system"));
        let only = ResourceScope {
            included_resources: vec!["deployments.apps".into()],
            ..Default::default()
        };
        assert!(resource_in_scope(&only, "deployments", "apps"));
        assert!(!resource_in_scope(&only, "pods", ""));
    }
}
