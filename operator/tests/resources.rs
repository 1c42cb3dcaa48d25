//! Collecting a Backup's manifests from an in-memory API server: scope, label selector and
//! cluster-scoped objects. The fake server has no discovery endpoint, so the kinds are
//! given (`resources::discover` is what the operator uses against a real one), and it cannot
//! serve `/api/v1/namespaces` (its path parser takes `namespaces` for the namespace segment),
//! so Namespace objects are left out here.

use arca_api::common::ResourceScope;
use arca_operator::resources::{collect, selector_string, Kind};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::api::ObjectMeta;

fn meta(ns: Option<&str>, name: &str, app: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: ns.map(String::from),
        labels: app.map(|a| [("app".to_string(), a.to_string())].into()),
        ..Default::default()
    }
}

async fn client() -> kube::Client {
    let mut b = kube_fake_client::ClientBuilder::new();
    for ns in ["shop", "blog", "kube-system"] {
        b = b
            .with_object(Pod {
                metadata: meta(Some(ns), "web-0", Some("web")),
                ..Default::default()
            })
            .with_object(Pod {
                metadata: meta(Some(ns), "job-0", Some("job")),
                ..Default::default()
            })
            .with_object(ConfigMap {
                metadata: meta(Some(ns), "settings", Some("web")),
                ..Default::default()
            });
    }
    b.with_object(ClusterRole {
        metadata: meta(None, "reader", Some("web")),
        ..Default::default()
    })
    .with_object(ClusterRole {
        metadata: meta(None, "admin", None),
        ..Default::default()
    })
    .build()
    .await
    .unwrap()
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind::of::<Pod>(true),
        Kind::of::<ConfigMap>(true),
        Kind::of::<ClusterRole>(false),
    ]
}

fn names(objs: &[serde_json::Value]) -> Vec<String> {
    let mut v: Vec<String> = objs
        .iter()
        .map(|o| {
            format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["namespace"].as_str().unwrap_or("-"),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn one_namespace_with_its_objects_and_no_cluster_objects() {
    let scope = ResourceScope {
        included_namespaces: vec!["shop".into()],
        ..Default::default()
    };
    let objs = collect(&client().await, &kinds(), &scope).await.unwrap();
    assert_eq!(
        names(&objs),
        [
            "ConfigMap/shop/settings",
            "Pod/shop/job-0",
            "Pod/shop/web-0"
        ]
    );
    // Stored manifests say what they are.
    assert!(objs
        .iter()
        .all(|o| o["apiVersion"].is_string() && o["kind"].is_string()));
}

#[tokio::test]
async fn whole_cluster_less_exclusions_with_a_label_selector() {
    let scope = ResourceScope {
        excluded_namespaces: vec!["kube-system".into()],
        excluded_resources: vec!["configmaps".into()],
        label_selector: Some(LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let objs = collect(&client().await, &kinds(), &scope).await.unwrap();
    assert_eq!(
        names(&objs),
        ["ClusterRole/-/reader", "Pod/blog/web-0", "Pod/shop/web-0"]
    );
}

#[test]
fn selectors_in_query_syntax() {
    let s = LabelSelector {
        match_labels: Some([("app".to_string(), "web".to_string())].into()),
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            },
            LabelSelectorRequirement {
                key: "legacy".into(),
                operator: "DoesNotExist".into(),
                values: None,
            },
        ]),
    };
    assert_eq!(selector_string(&s), "app=web,tier in (a,b),!legacy");
}
