//! The agent's start-up check of the kubelet pods directory, against the pods the API
//! server places on its node; and when the controllers look at an object again.

mod common;

use arca_agent::controller::{check_start_up, next_restore};
use arca_agent::pod_volume_restore::Outcome;
use common::*;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use kube::api::ObjectMeta;

fn pod(name: &str, uid: &str, node: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("shop".into()),
            uid: Some(uid.into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            ..Default::default()
        }),
        status: None,
    }
}

#[tokio::test]
async fn a_pods_directory_without_this_nodes_pods_is_refused() {
    // uid-1 has a directory (the common world makes it); uid-2 runs elsewhere.
    let w = world_with(true, vec![], |b| {
        b.with_object(pod("web-0", "uid-1", "node-a"))
            .with_object(pod("web-1", "uid-2", "node-b"))
    })
    .await;
    let ctx = context(&w);
    check_start_up(&ctx).await.unwrap();

    let mut wrong = context(&w);
    wrong.kubelet_pods = w.pods.join("uid-1"); // one level too deep
    let e = check_start_up(&wrong).await.unwrap_err();
    assert!(matches!(e, arca_agent::Error::Volume(_)), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("holds none of the 1 pods running on this node"),
        "{e}"
    );
}

#[test]
fn a_waiting_restore_has_a_safety_net_beyond_its_watches() {
    assert_eq!(
        next_restore(&Outcome::Waiting),
        kube::runtime::controller::Action::requeue(arca_agent::controller::WAITING_RECHECK)
    );
    assert_eq!(
        next_restore(&Outcome::Completed),
        kube::runtime::controller::Action::await_change()
    );
}
