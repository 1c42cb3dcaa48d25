//! Collecting the manifests a Backup stores: every kind the API server serves (found by
//! discovery), listed and filtered by the Backup's scope and label selector.

use crate::selection::{namespace_in_scope, resource_in_scope};
use crate::{Error, Result};
use arca_api::common::ResourceScope;
use arca_reconcile::Wrap as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::discovery::{verbs, Discovery, Scope};
use kube::{Api, ResourceExt};
use serde_json::Value;

/// One listable kind.
#[derive(Clone, Debug)]
pub struct Kind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

impl Kind {
    /// A kind known at compile time (tests, and fixed lists).
    pub fn of<K: kube::Resource<DynamicType = ()>>(namespaced: bool) -> Kind {
        Kind {
            resource: ApiResource::erase::<K>(&()),
            namespaced,
        }
    }
}

/// Kinds never stored: events and node objects describe the old cluster, and Arca's own
/// objects are recreated by Arca.
fn never_stored(r: &ApiResource) -> bool {
    matches!(r.plural.as_str(), "events" | "nodes" | "componentstatuses")
        || r.group == arca_api::common::GROUP
        || r.group == "events.k8s.io"
        || r.group == "metrics.k8s.io"
        || r.group == "coordination.k8s.io"
}

/// Every listable kind the API server serves, in its preferred version.
pub async fn discover(client: &kube::Client) -> Result<Vec<Kind>> {
    let d = Discovery::new(client.clone())
        .run()
        .await
        .map_err(Error::api("API discovery"))?;
    let mut out = Vec::new();
    for group in d.groups() {
        for (ar, caps) in group.recommended_resources() {
            if caps.supports_operation(verbs::LIST) {
                out.push(Kind {
                    resource: ar,
                    namespaced: caps.scope == Scope::Namespaced,
                });
            }
        }
    }
    Ok(out)
}

/// A label selector in the API's query syntax.
pub fn selector_string(s: &LabelSelector) -> String {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in s.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key), // DoesNotExist
        });
    }
    parts.join(",")
}

/// Whether the scope names every namespace (then cluster-scoped objects are stored too).
pub fn whole_cluster(scope: &ResourceScope) -> bool {
    scope.included_namespaces.is_empty() || scope.included_namespaces.iter().any(|n| n == "*")
}

/// The manifests of every object in scope. Namespaces in scope are always stored (the
/// label selector picks the objects inside them); other cluster-scoped objects only when
/// the backup covers the whole cluster.
pub async fn collect(
    client: &kube::Client,
    kinds: &[Kind],
    scope: &ResourceScope,
) -> Result<Vec<Value>> {
    let labels = scope
        .label_selector
        .as_ref()
        .map(selector_string)
        .unwrap_or_default();
    let mut out = Vec::new();
    for kind in kinds {
        let r = &kind.resource;
        let is_namespace = r.group.is_empty() && r.plural == "namespaces";
        if never_stored(r) || (!is_namespace && !resource_in_scope(scope, &r.plural, &r.group)) {
            continue;
        }
        if !kind.namespaced && !is_namespace && !whole_cluster(scope) {
            continue;
        }
        let api: Api<DynamicObject> = Api::all_with(client.clone(), r);
        let mut params = ListParams::default();
        if !labels.is_empty() && !is_namespace {
            params = params.labels(&labels);
        }
        let list = api
            .list(&params)
            .await
            .map_err(Error::api(format!("listing {}", r.plural)))?;
        for mut obj in list.items {
            let ns = if is_namespace {
                Some(obj.name_any())
            } else {
                obj.namespace()
            };
            if let Some(ns) = ns {
                if !namespace_in_scope(scope, &ns) {
                    continue;
                }
            }
            obj.types = Some(kube::api::TypeMeta {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
            });
            out.push(serde_json::to_value(&obj).map_err(Error::json(format!("a {}", r.kind)))?);
        }
    }
    Ok(out)
}
