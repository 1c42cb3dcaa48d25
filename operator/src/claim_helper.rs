//! Claims that no running pod mounts (a scaled-down workload's, a CronJob's between runs, one
//! waiting for a migration): which they are, where they can be mounted, and the short-lived
//! pods that mount them so that the node agent can back them up or restore them as any pod
//! volume. A helper runs `arca-agent hold` (it only sleeps) with no privileges and no token,
//! and is removed once its Backup or Restore no longer needs it, however that ends.

use crate::{Error, Result};
use arca_api::backup::{BACKUP_NAME_LABEL, BACKUP_UID_LABEL, CLAIM_ANNOTATION, CLAIM_HELPER_LABEL};
use arca_api::restore::RESTORE_UID_LABEL;
use arca_format::id::Id;
use arca_reconcile::Wrap as _;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams};
use kube::ResourceExt;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// The helper pod's volume: the claim, mounted at `/claim`.
pub const VOLUME: &str = "claim";
/// The annotation the scheduler leaves on a claim bound on first use: the node it chose.
const SELECTED_NODE_ANNOTATION: &str = "volume.kubernetes.io/selected-node";

/// A claim to back up through a helper, and the node to mount it on (none: the scheduler's
/// choice).
#[derive(Debug, Clone, PartialEq)]
pub struct Unmounted {
    pub claim: PersistentVolumeClaim,
    pub node: Option<String>,
}

/// Whether `pod` is one of the helpers (never a claim's user, never backed up itself).
pub fn is_helper(pod: &Pod) -> bool {
    pod.labels().contains_key(CLAIM_HELPER_LABEL)
}

/// The claims a pod's volumes name.
fn claims_of(pod: &Pod) -> impl Iterator<Item = &str> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.as_str())
}

fn has_ended(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The bound claims of `claims` that no pod of `pods` mounts (pods that have ended and
/// helpers do not count), each with the node of its last user: the newest ended pod that
/// mounted it, else the node the scheduler chose for it. A claim not yet bound has nothing to
/// back up and is left out.
pub fn unmounted(pods: &[Pod], claims: &[PersistentVolumeClaim]) -> Vec<Unmounted> {
    let key = |ns: &str, name: &str| format!("{ns}/{name}");
    let in_use: BTreeSet<String> = pods
        .iter()
        .filter(|p| !has_ended(p) && !is_helper(p))
        .flat_map(|p| {
            let ns = p.namespace().unwrap_or_default();
            claims_of(p).map(move |c| key(&ns, c)).collect::<Vec<_>>()
        })
        .collect();
    claims
        .iter()
        .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
        .filter(|c| !in_use.contains(&key(&c.namespace().unwrap_or_default(), &c.name_any())))
        .map(|c| {
            let ns = c.namespace().unwrap_or_default();
            let last_user = pods
                .iter()
                .filter(|p| has_ended(p) && !is_helper(p))
                .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
                .filter(|p| claims_of(p).any(|n| n == c.name_any()))
                .filter_map(|p| {
                    let node = p.spec.as_ref()?.node_name.clone()?;
                    Some((p.creation_timestamp().map(|t| t.0), node))
                })
                .max()
                .map(|(_, node)| node);
            let node = last_user.or_else(|| c.annotations().get(SELECTED_NODE_ANNOTATION).cloned());
            Unmounted {
                claim: c.clone(),
                node,
            }
        })
        .collect()
}

/// A helper's name: readable where it fits, unique per operation and claim.
fn helper_name(kind: &str, operation_uid: &str, namespace: &str, claim: &str) -> String {
    let digest = Id::hash(format!("{operation_uid}/{namespace}/{claim}").as_bytes()).to_hex();
    format!("arca-{kind}-{}", &digest[..16])
}

/// The container that keeps the claim mounted: the agent's image, doing nothing, as an
/// unprivileged user on a read-only root.
fn hold_container(image: &str, read_only: bool) -> Value {
    json!({
        "name": "hold",
        "image": image,
        "command": ["/usr/local/bin/arca-agent"],
        "args": ["hold"],
        "volumeMounts": [{"name": VOLUME, "mountPath": "/claim", "readOnly": read_only}],
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 65534,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}, "limits": {"memory": "32Mi"}},
    })
}

/// The pod that mounts `u`'s claim read-only for Backup `backup_name` (UID `backup_uid`).
/// It ends by itself a while after `lifetime` (the Backup's volume timeout), should the
/// operator not be there to remove it.
pub fn backup_helper(
    u: &Unmounted,
    image: &str,
    backup_name: &str,
    backup_uid: &str,
    lifetime: Duration,
) -> Pod {
    let ns = u.claim.namespace().unwrap_or_default();
    let claim = u.claim.name_any();
    let mut spec = json!({
        "activeDeadlineSeconds": lifetime.as_secs() + 600,
        "restartPolicy": "Never",
        "automountServiceAccountToken": false,
        "terminationGracePeriodSeconds": 1,
        "containers": [hold_container(image, true)],
        "volumes": [{"name": VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": true}}],
    });
    if let Some(node) = &u.node {
        spec["nodeName"] = json!(node);
    }
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": helper_name("backup", backup_uid, &ns, &claim),
            "namespace": ns,
            "labels": {
                CLAIM_HELPER_LABEL: "backup",
                BACKUP_NAME_LABEL: backup_name,
                BACKUP_UID_LABEL: backup_uid,
            },
            "annotations": {CLAIM_ANNOTATION: claim},
        },
        "spec": spec,
    }))
    .expect("a pod")
}

/// The pod that mounts restored claim `namespace/claim` for Restore `restore_uid`, its
/// restore-wait container added by the caller; the scheduler places it.
pub fn restore_helper(namespace: &str, claim: &str, image: &str, restore_uid: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": helper_name("restore", restore_uid, namespace, claim),
            "namespace": namespace,
            "labels": {CLAIM_HELPER_LABEL: "restore", RESTORE_UID_LABEL: restore_uid},
            "annotations": {CLAIM_ANNOTATION: claim},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            "containers": [hold_container(image, false)],
            "volumes": [{"name": VOLUME, "persistentVolumeClaim": {"claimName": claim}}],
        },
    })
}

/// Delete every helper of the operation whose UID label is `uid_label=uid`. Deleting what
/// is already gone is not an error.
pub async fn remove(client: &kube::Client, uid_label: &str, uid: &str) -> Result<usize> {
    let pods: Api<Pod> = Api::all(client.clone());
    let selector = format!("{CLAIM_HELPER_LABEL},{uid_label}={uid}");
    let helpers = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::api("listing claim helper pods"))?
        .items;
    let mut removed = 0;
    for h in helpers
        .iter()
        .filter(|h| h.metadata.deletion_timestamp.is_none())
    {
        let ns = h.namespace().unwrap_or_default();
        match Api::<Pod>::namespaced(client.clone(), &ns)
            .delete(&h.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => removed += 1,
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                return Err(Error::api(format!(
                    "deleting claim helper pod {ns}/{}",
                    h.name_any()
                ))(e))
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, claim: &str, phase: &str, node: &str, created: &str, helper: bool) -> Pod {
        let labels = if helper {
            json!({CLAIM_HELPER_LABEL: "backup"})
        } else {
            json!({})
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop", "labels": labels, "creationTimestamp": created},
            "spec": {"nodeName": node, "containers": [],
                     "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    fn claim(name: &str, phase: &str, selected: Option<&str>) -> PersistentVolumeClaim {
        let annotations = match selected {
            Some(n) => json!({SELECTED_NODE_ANNOTATION: n}),
            None => json!({}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn claims_of_running_pods_and_unbound_ones_are_not_unmounted() {
        let pods = [
            pod(
                "web-0",
                "live",
                "Running",
                "n1",
                "2026-01-01T00:00:00Z",
                false,
            ),
            pod(
                "job-1",
                "reports",
                "Succeeded",
                "n1",
                "2026-01-01T00:00:00Z",
                false,
            ),
            pod(
                "job-2",
                "reports",
                "Failed",
                "n2",
                "2026-01-02T00:00:00Z",
                false,
            ),
            // Another Backup's helper does not make its claim mounted.
            pod(
                "arca-backup-x",
                "cold",
                "Running",
                "n3",
                "2026-01-03T00:00:00Z",
                true,
            ),
        ];
        let claims = [
            claim("live", "Bound", None),
            claim("reports", "Bound", Some("n9")),
            claim("cold", "Bound", Some("n4")),
            claim("idle", "Bound", None),
            claim("new", "Pending", Some("n5")),
        ];
        let found: Vec<(String, Option<String>)> = unmounted(&pods, &claims)
            .into_iter()
            .map(|u| (u.claim.name_any(), u.node))
            .collect();
        assert_eq!(
            found,
            [
                // The newest ended user's node wins over the scheduler's old choice.
                ("reports".to_string(), Some("n2".to_string())),
                ("cold".to_string(), Some("n4".to_string())),
                ("idle".to_string(), None),
            ]
        );
    }

    #[test]
    fn a_backup_helper_mounts_the_claim_read_only_without_privileges_or_token() {
        let u = Unmounted {
            claim: claim("reports", "Bound", None),
            node: Some("n2".into()),
        };
        let p = backup_helper(&u, "arca:1", "b1", "uid-1", Duration::from_secs(3600));
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["spec"]["nodeName"], "n2");
        assert_eq!(v["spec"]["activeDeadlineSeconds"], 4200);
        assert_eq!(v["spec"]["automountServiceAccountToken"], false);
        assert_eq!(
            v["spec"]["volumes"][0]["persistentVolumeClaim"],
            json!({"claimName": "reports", "readOnly": true})
        );
        let c = &v["spec"]["containers"][0];
        assert_eq!(c["volumeMounts"][0]["readOnly"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["args"], json!(["hold"]));
        assert!(is_helper(&p));
        assert_eq!(p.annotations()[CLAIM_ANNOTATION], "reports");
        // One name per Backup and claim, a valid pod name.
        let again = backup_helper(&u, "arca:1", "b1", "uid-1", Duration::from_secs(3600));
        assert_eq!(p.name_any(), again.name_any());
        assert_ne!(
            p.name_any(),
            backup_helper(&u, "arca:1", "b2", "uid-2", Duration::from_secs(3600)).name_any()
        );
        assert!(p.name_any().len() <= 63);
        let r = restore_helper("shop", "reports", "arca:1", "r-uid");
        assert_eq!(r["metadata"]["labels"][RESTORE_UID_LABEL], "r-uid");
        assert_eq!(
            r["spec"]["volumes"][0]["persistentVolumeClaim"],
            json!({"claimName": "reports"})
        );
    }
}
