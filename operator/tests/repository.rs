//! Repositories are created per namespace with their own random keys, and a location or key
//! that is missing gives a status with the reason. Against an in-memory API server
//! (kube-fake-client) and real repositories on disk.

use arca_api::common::SecretRef;
use arca_api::location::{LocationPhase, Provider};
use arca_api::repository::RepositoryPhase;
use arca_api::*;
use arca_operator::context::Context;
use arca_operator::{location, repository};
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::{Api, ResourceExt};

const NS: &str = "arca-system";

fn bsl(name: &str, bucket: &str, credential: Option<&str>) -> BackupStorageLocation {
    BackupStorageLocation {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        spec: BackupStorageLocationSpec {
            provider: Provider::Local,
            bucket: bucket.into(),
            credential: credential.map(|c| SecretRef { name: c.into() }),
            ..Default::default()
        },
        status: None,
    }
}

async fn client(objects: Vec<BackupStorageLocation>) -> kube::Client {
    let mut b = kube_fake_client::ClientBuilder::new()
        .with_resource::<BackupStorageLocation>()
        .with_status_subresource::<BackupStorageLocation>()
        .with_resource::<BackupRepository>()
        .with_status_subresource::<BackupRepository>();
    for o in objects {
        b = b.with_object(o);
    }
    b.build().await.unwrap()
}

fn context(client: kube::Client) -> Context {
    let mut c = Context::new(client, NS);
    c.kdf = arca_format::keyfile::KdfParams { n: 16, r: 1, p: 1 };
    c
}

async fn password_of(ctx: &Context, repo: &str) -> String {
    let s = Api::<Secret>::namespaced(ctx.client.clone(), NS)
        .get(&format!("{repo}-key"))
        .await
        .unwrap();
    arca_api::common::secret_strings(&s)
        .remove(repository::PASSWORD_KEY)
        .unwrap()
}

#[tokio::test]
async fn each_namespace_gets_a_repository_with_its_own_random_key() {
    let store = tempfile::tempdir().unwrap();
    let loc = bsl("default", &store.path().display().to_string(), None);
    let ctx = context(client(vec![loc.clone()]).await);
    let repos: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), NS);

    for ns in ["shop", "blog"] {
        let r = repository::ensure(&ctx, ns, &loc).await.unwrap();
        assert_eq!(
            r.spec.repository_url,
            format!("{}/{ns}", store.path().display())
        );
        assert_eq!(
            repository::reconcile(&r, &ctx).await.unwrap(),
            RepositoryPhase::Ready
        );
        // ensure is idempotent.
        assert_eq!(
            repository::ensure(&ctx, ns, &loc)
                .await
                .unwrap()
                .spec
                .repository_url,
            r.spec.repository_url
        );
    }
    let (shop_pw, blog_pw) = (
        password_of(&ctx, "shop-default").await,
        password_of(&ctx, "blog-default").await,
    );
    assert_ne!(shop_pw, blog_pw);
    assert_eq!(shop_pw.len(), 64);

    let open = |ns: &str, pw: String| {
        let url = format!("{}/{ns}", store.path().display());
        async move { arca_engine::Repository::open(arca_storage::open(&url).unwrap(), &pw).await }
    };
    assert!(open("shop", shop_pw.clone()).await.is_ok());
    assert!(open("blog", blog_pw.clone()).await.is_ok());
    // Each Secret opens its own repository and not the other's.
    assert!(matches!(
        open("shop", blog_pw.clone()).await,
        Err(arca_engine::Error::WrongPassword)
    ));
    assert!(matches!(
        open("blog", shop_pw.clone()).await,
        Err(arca_engine::Error::WrongPassword)
    ));

    // Reconciling again keeps the key (a new one would lock the data out).
    let shop = repos.get("shop-default").await.unwrap();
    assert_eq!(
        shop.spec.key_secret.as_ref().unwrap().name,
        "shop-default-key"
    );
    assert_eq!(
        repository::reconcile(&shop, &ctx).await.unwrap(),
        RepositoryPhase::Ready
    );
    assert_eq!(password_of(&ctx, "shop-default").await, shop_pw);
}

#[tokio::test]
async fn a_key_that_does_not_open_the_repository_is_reported_not_replaced() {
    let store = tempfile::tempdir().unwrap();
    let loc = bsl("default", &store.path().display().to_string(), None);
    let ctx = context(client(vec![loc.clone()]).await);
    let r = repository::ensure(&ctx, "shop", &loc).await.unwrap();
    repository::reconcile(&r, &ctx).await.unwrap();
    // Someone overwrites the key Secret.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), NS);
    let mut s = secrets.get("shop-default-key").await.unwrap();
    s.data = Some(
        [(
            repository::PASSWORD_KEY.to_string(),
            k8s_openapi::ByteString(b"wrong".to_vec()),
        )]
        .into(),
    );
    secrets
        .replace("shop-default-key", &Default::default(), &s)
        .await
        .unwrap();
    let r = Api::<BackupRepository>::namespaced(ctx.client.clone(), NS)
        .get("shop-default")
        .await
        .unwrap();
    assert_eq!(
        repository::reconcile(&r, &ctx).await.unwrap(),
        RepositoryPhase::NotReady
    );
    let st = Api::<BackupRepository>::namespaced(ctx.client.clone(), NS)
        .get("shop-default")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        st.message.unwrap(),
        format!(
            "the key in Secret shop-default-key does not open the repository at {}/shop",
            store.path().display()
        )
    );
}

#[tokio::test]
async fn missing_locations_and_credentials_give_a_reason() {
    let store = tempfile::tempdir().unwrap();
    let good = bsl("default", &store.path().display().to_string(), None);
    let no_cred = bsl(
        "remote",
        &store.path().display().to_string(),
        Some("remote-credentials"),
    );
    let ctx = context(client(vec![good.clone(), no_cred.clone()]).await);
    let locations: Api<BackupStorageLocation> = Api::namespaced(ctx.client.clone(), NS);

    location::reconcile(&good, &ctx).await.unwrap();
    let st = locations.get("default").await.unwrap().status.unwrap();
    assert_eq!(st.phase, Some(LocationPhase::Available));
    assert!(st.last_validation_time.is_some());

    let checked = location::reconcile(&no_cred, &ctx).await.unwrap();
    assert_eq!(checked.again, location::DEFAULT_VALIDATION);
    let st = locations.get("remote").await.unwrap().status.unwrap();
    assert_eq!(st.phase, Some(LocationPhase::Unavailable));
    assert_eq!(
        st.message.as_deref(),
        Some("credential Secret remote-credentials not found")
    );

    // A repository in a location that does not exist.
    let mut gone = good.clone();
    gone.metadata.name = Some("gone".into());
    let r = repository::ensure(&ctx, "shop", &gone).await.unwrap();
    assert_eq!(
        repository::reconcile(&r, &ctx).await.unwrap(),
        RepositoryPhase::NotReady
    );
    let st = Api::<BackupRepository>::namespaced(ctx.client.clone(), NS)
        .get("shop-gone")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        st.message.as_deref(),
        Some("BackupStorageLocation gone not found")
    );
}

#[tokio::test]
async fn a_key_rotation_replaces_the_password_and_survives_an_interruption() {
    use arca_api::repository::ROTATE_KEY_ANNOTATION;
    use kube::api::{Patch, PatchParams};
    let store = tempfile::tempdir().unwrap();
    let loc = bsl("default", &store.path().display().to_string(), None);
    let ctx = context(client(vec![loc.clone()]).await);
    let repos: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), NS);
    let r = repository::ensure(&ctx, "shop", &loc).await.unwrap();
    repository::reconcile(&r, &ctx).await.unwrap();
    let url = format!("{}/shop", store.path().display());
    let open = |pw: String| {
        let url = url.clone();
        async move { arca_engine::Repository::open(arca_storage::open(&url).unwrap(), &pw).await }
    };
    let keys = || async {
        arca_engine::keys::list_keys(&open(password_of(&ctx, "shop-default").await).await.unwrap())
            .await
            .unwrap()
            .len()
    };
    let annotate = || async {
        repos
            .patch("shop-default", &PatchParams::default(), &Patch::Merge(serde_json::json!({"metadata": {"annotations": {ROTATE_KEY_ANNOTATION: "now"}}})))
            .await
            .unwrap()
    };

    let first = password_of(&ctx, "shop-default").await;
    let r = annotate().await;
    repository::rotate_key(&r, &ctx).await.unwrap();
    let second = password_of(&ctx, "shop-default").await;
    assert_ne!(first, second);
    assert_eq!(second.len(), 64);
    assert!(open(second.clone()).await.is_ok());
    assert!(matches!(
        open(first.clone()).await,
        Err(arca_engine::Error::WrongPassword)
    ));
    assert_eq!(keys().await, 1, "the old key is gone");
    let r = repos.get("shop-default").await.unwrap();
    assert!(
        !r.annotations().contains_key(ROTATE_KEY_ANNOTATION),
        "the request is cleared"
    );
    let s = Api::<Secret>::namespaced(ctx.client.clone(), NS)
        .get("shop-default-key")
        .await
        .unwrap();
    assert_eq!(
        arca_api::common::secret_strings(&s).len(),
        1,
        "no pending password left"
    );

    // Interrupted after the old key was removed but before the Secret was switched: the
    // Secret's password no longer opens, the pending one does; the next call finishes.
    let r = annotate().await;
    let with_second = open(second.clone()).await.unwrap();
    let third = "a-pending-password-from-an-interrupted-rotation".to_string();
    let third_id = arca_engine::keys::add_key(
        &with_second,
        &third,
        arca_format::keyfile::KdfParams { n: 16, r: 1, p: 1 },
    )
    .await
    .unwrap();
    let with_third = open(third.clone()).await.unwrap();
    assert_eq!(with_third.key_id(), third_id);
    arca_engine::keys::remove_key(&with_third, &with_second.key_id())
        .await
        .unwrap();
    Api::<Secret>::namespaced(ctx.client.clone(), NS)
        .patch(
            "shop-default-key",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"data": {"pending-repository-password": base64_of(&third)}}),
            ),
        )
        .await
        .unwrap();
    repository::rotate_key(&r, &ctx).await.unwrap();
    assert_eq!(password_of(&ctx, "shop-default").await, third);
    assert_eq!(keys().await, 1);
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
