//! Repositories are created per namespace with their own random keys, and a location or key
//! that is missing gives a status with the reason. Against an in-memory API server
//! (kube-fake-client) and real repositories on disk.

mod common;
use arca_api::common::SecretRef;
use arca_api::location::{LocationPhase, Provider};
use arca_api::repository::RepositoryPhase;
use arca_api::*;
use arca_engine::recovery::RecoveryKey;
use arca_operator::context::Context;
use arca_operator::repository::name_for;
use arca_operator::{location, repository};
use common::listing;
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

/// The recovery key of `location`, as the operator keeps it.
async fn recovery_key_of(ctx: &Context, location: &str) -> RecoveryKey {
    let s = Api::<Secret>::namespaced(ctx.client.clone(), NS)
        .get(&format!("{location}-recovery-key"))
        .await
        .unwrap();
    RecoveryKey::parse(&arca_api::common::secret_strings(&s)["recovery-key"]).unwrap()
}

/// A Secret holding `key` under `recovery-key`.
fn recovery_secret(name: &str, key: &RecoveryKey) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        data: Some(
            [(
                "recovery-key".to_string(),
                k8s_openapi::ByteString(key.expose().as_bytes().to_vec()),
            )]
            .into(),
        ),
        ..Default::default()
    }
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
        password_of(&ctx, &name_for("shop", "default")).await,
        password_of(&ctx, &name_for("blog", "default")).await,
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
    let shop = repos.get(&name_for("shop", "default")).await.unwrap();
    assert_eq!(
        shop.spec.key_secret.as_ref().unwrap().name,
        format!("{}-key", name_for("shop", "default"))
    );
    assert_eq!(
        repository::reconcile(&shop, &ctx).await.unwrap(),
        RepositoryPhase::Ready
    );
    assert_eq!(
        password_of(&ctx, &name_for("shop", "default")).await,
        shop_pw
    );
}

#[tokio::test]
async fn a_key_that_does_not_open_the_repository_is_recovered_never_replaced() {
    let store = tempfile::tempdir().unwrap();
    let loc = bsl("default", &store.path().display().to_string(), None);
    let ctx = context(client(vec![loc.clone()]).await);
    let r = repository::ensure(&ctx, "shop", &loc).await.unwrap();
    repository::reconcile(&r, &ctx).await.unwrap();
    let before = listing(store.path());
    // Someone overwrites the key Secret.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), NS);
    let mut s = secrets
        .get(&format!("{}-key", name_for("shop", "default")))
        .await
        .unwrap();
    s.data = Some(
        [(
            repository::PASSWORD_KEY.to_string(),
            k8s_openapi::ByteString(b"wrong".to_vec()),
        )]
        .into(),
    );
    secrets
        .replace(
            &format!("{}-key", name_for("shop", "default")),
            &Default::default(),
            &s,
        )
        .await
        .unwrap();
    let r = Api::<BackupRepository>::namespaced(ctx.client.clone(), NS)
        .get(&name_for("shop", "default"))
        .await
        .unwrap();
    // The location's recovery key opens it, and the Secret's password becomes a key of it.
    assert_eq!(
        repository::reconcile(&r, &ctx).await.unwrap(),
        RepositoryPhase::Ready
    );
    let st = Api::<BackupRepository>::namespaced(ctx.client.clone(), NS)
        .get(&name_for("shop", "default"))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        st.message.unwrap(),
        format!(
            "{}/shop opened with the location's recovery key; this cluster's key added",
            store.path().display()
        )
    );
    let url = format!("{}/shop", store.path().display());
    arca_engine::Repository::open(arca_storage::open(&url).unwrap(), "wrong")
        .await
        .unwrap();
    // Nothing but one key file was added: the repository was not initialised again.
    let after = listing(store.path());
    let added: Vec<_> = after.difference(&before).collect();
    assert_eq!(added.len(), 1, "{added:?}");
    assert!(added[0].0.starts_with("shop/keys/"), "{added:?}");
    assert!(before.is_subset(&after));
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
        .get(&name_for("shop", "gone"))
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
        arca_engine::keys::list_keys(
            &open(password_of(&ctx, &name_for("shop", "default")).await)
                .await
                .unwrap(),
        )
        .await
        .unwrap()
        .len()
    };
    let annotate = || async {
        repos
            .patch(&name_for("shop", "default"), &PatchParams::default(), &Patch::Merge(serde_json::json!({"metadata": {"annotations": {ROTATE_KEY_ANNOTATION: "now"}}})))
            .await
            .unwrap()
    };

    let first = password_of(&ctx, &name_for("shop", "default")).await;
    let r = annotate().await;
    repository::rotate_key(&r, &ctx).await.unwrap();
    let second = password_of(&ctx, &name_for("shop", "default")).await;
    assert_ne!(first, second);
    assert_eq!(second.len(), 64);
    assert!(open(second.clone()).await.is_ok());
    assert!(matches!(
        open(first.clone()).await,
        Err(arca_engine::Error::WrongPassword)
    ));
    assert_eq!(
        keys().await,
        2,
        "the old key is gone, the recovery key stays"
    );
    let r = repos.get(&name_for("shop", "default")).await.unwrap();
    assert!(
        !r.annotations().contains_key(ROTATE_KEY_ANNOTATION),
        "the request is cleared"
    );
    let s = Api::<Secret>::namespaced(ctx.client.clone(), NS)
        .get(&format!("{}-key", name_for("shop", "default")))
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
            &format!("{}-key", name_for("shop", "default")),
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"data": {"pending-repository-password": base64_of(&third)}}),
            ),
        )
        .await
        .unwrap();
    repository::rotate_key(&r, &ctx).await.unwrap();
    assert_eq!(password_of(&ctx, &name_for("shop", "default")).await, third);
    assert_eq!(keys().await, 2);
    // The recovery key survived both rotations.
    let recovery = recovery_key_of(&ctx, "default").await;
    assert!(open(recovery.repository_password("shop")).await.is_ok());
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Open the repository at `url` with `pw`: Ok, or WrongPassword.
async fn opens(url: &str, pw: &str) -> bool {
    match arca_engine::Repository::open(arca_storage::open(url).unwrap(), pw).await {
        Ok(_) => true,
        Err(arca_engine::Error::WrongPassword) => false,
        Err(e) => panic!("{url}: {e}"),
    }
}

#[tokio::test]
async fn every_repository_gets_a_key_derived_from_the_locations_recovery_key() {
    let store = tempfile::tempdir().unwrap();
    let mut loc = bsl("default", &store.path().display().to_string(), None);
    loc.spec.prefix = Some("cluster-a".into());
    let ctx = context(client(vec![loc.clone()]).await);
    let locations: Api<BackupStorageLocation> = Api::namespaced(ctx.client.clone(), NS);
    let repos: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), NS);

    // The first check generates the key, says so in a condition, and records its fingerprint.
    let checked = location::reconcile(&loc, &ctx).await.unwrap();
    assert!(checked.generated_recovery_key);
    let key = recovery_key_of(&ctx, "default").await;
    assert_eq!(key.expose().len(), 64);
    let st = locations.get("default").await.unwrap().status.unwrap();
    assert_eq!(st.phase, Some(LocationPhase::Available));
    assert_eq!(st.recovery_key_fingerprint, Some(key.fingerprint()));
    let cond = st
        .conditions
        .iter()
        .find(|c| c.type_ == "RecoveryKeyGenerated")
        .expect("a condition says the key was generated");
    assert!(
        cond.message.contains("keep a copy outside the cluster")
            && cond
                .message
                .contains("arca cluster location export-recovery-key default"),
        "{}",
        cond.message
    );
    // A second check keeps the key.
    location::reconcile(&locations.get("default").await.unwrap(), &ctx)
        .await
        .unwrap();
    assert_eq!(recovery_key_of(&ctx, "default").await, key);

    for ns in ["shop", "blog"] {
        let r = repository::ensure(&ctx, ns, &loc).await.unwrap();
        assert_eq!(
            repository::reconcile(&r, &ctx).await.unwrap(),
            RepositoryPhase::Ready
        );
        let st = repos.get(&r.name_any()).await.unwrap().status.unwrap();
        assert_eq!(st.recovery_key_fingerprint, Some(key.fingerprint()));
    }
    let url = |ns: &str| format!("{}/cluster-a/{ns}", store.path().display());
    let shop_recovery = key.repository_password("cluster-a/shop");
    let blog_recovery = key.repository_password("cluster-a/blog");
    assert!(opens(&url("shop"), &shop_recovery).await);
    assert!(opens(&url("blog"), &blog_recovery).await);
    // Isolation: no repository's recovery password or working key opens another.
    assert!(!opens(&url("shop"), &blog_recovery).await);
    assert!(!opens(&url("blog"), &shop_recovery).await);
    assert!(
        !opens(
            &url("blog"),
            &password_of(&ctx, &name_for("shop", "default")).await
        )
        .await
    );
    assert!(
        !opens(
            &url("shop"),
            &password_of(&ctx, &name_for("blog", "default")).await
        )
        .await
    );
    assert!(!opens(&url("shop"), key.expose()).await);

    // The recovery key is in no status.
    for text in [
        serde_json::to_string(&locations.get("default").await.unwrap()).unwrap(),
        serde_json::to_string(&repos.list(&Default::default()).await.unwrap().items).unwrap(),
    ] {
        assert!(!text.contains(key.expose()));
        assert!(!text.contains(&shop_recovery));
    }
}

/// Cluster A makes a repository and is lost; cluster B, given only the location and its
/// recovery key, opens the repository with it and adds a working key of its own.
#[tokio::test]
async fn a_new_cluster_opens_the_repositories_with_the_recovery_key() {
    let store = tempfile::tempdir().unwrap();
    let key = RecoveryKey::generate();
    let mut loc = bsl("default", &store.path().display().to_string(), None);
    loc.spec.recovery_key = Some(arca_api::common::SecretKeyRef {
        name: "dr-key".into(),
        key: "recovery-key".into(),
    });
    let a = context(client(vec![loc.clone()]).await);
    Api::<Secret>::namespaced(a.client.clone(), NS)
        .create(&Default::default(), &recovery_secret("dr-key", &key))
        .await
        .unwrap();
    let r = repository::ensure(&a, "shop", &loc).await.unwrap();
    assert_eq!(
        repository::reconcile(&r, &a).await.unwrap(),
        RepositoryPhase::Ready
    );
    let a_pw = password_of(&a, &name_for("shop", "default")).await;

    let b = context(client(vec![loc.clone()]).await);
    Api::<Secret>::namespaced(b.client.clone(), NS)
        .create(&Default::default(), &recovery_secret("dr-key", &key))
        .await
        .unwrap();
    let checked = location::reconcile(&loc, &b).await.unwrap();
    assert!(!checked.generated_recovery_key, "the user gave the key");
    let r = repository::ensure(&b, "shop", &loc).await.unwrap();
    assert_eq!(
        repository::reconcile(&r, &b).await.unwrap(),
        RepositoryPhase::Ready
    );
    let b_pw = password_of(&b, &name_for("shop", "default")).await;
    assert_ne!(a_pw, b_pw, "cluster B has a working key of its own");
    let url = format!("{}/shop", store.path().display());
    assert!(opens(&url, &a_pw).await && opens(&url, &b_pw).await);
    assert!(opens(&url, &key.repository_password("shop")).await);
}

/// With no recovery key, or a wrong one, an existing repository is never initialised again:
/// the repository says why, and not one file of the store changes.
#[tokio::test]
async fn without_its_recovery_key_a_repository_is_never_overwritten() {
    let store = tempfile::tempdir().unwrap();
    let loc = bsl("default", &store.path().display().to_string(), None);
    let a = context(client(vec![loc.clone()]).await);
    let r = repository::ensure(&a, "shop", &loc).await.unwrap();
    repository::reconcile(&r, &a).await.unwrap();
    let before = listing(store.path());

    // Cluster B: the location without the key (the operator generates another one), then
    // with a wrong key given by the user.
    let b = context(client(vec![loc.clone()]).await);
    let r = repository::ensure(&b, "shop", &loc).await.unwrap();
    let repos: Api<BackupRepository> = Api::namespaced(b.client.clone(), NS);
    let want = format!(
        "repository {}/shop exists in the bucket and this cluster has no key that opens it: \
         give the location the recovery key it was created with",
        store.path().display()
    );
    assert_eq!(
        repository::reconcile(&r, &b).await.unwrap(),
        RepositoryPhase::NotReady
    );
    let st = repos
        .get(&name_for("shop", "default"))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(st.message.as_deref(), Some(want.as_str()));
    assert_eq!(listing(store.path()), before);

    let mut wrong = loc.clone();
    wrong.spec.recovery_key = Some(arca_api::common::SecretKeyRef {
        name: "typo-key".into(),
        key: "recovery-key".into(),
    });
    Api::<BackupStorageLocation>::namespaced(b.client.clone(), NS)
        .replace("default", &Default::default(), &wrong)
        .await
        .unwrap();
    // The named Secret is missing: the location says so.
    location::reconcile(&wrong, &b).await.unwrap();
    let st = Api::<BackupStorageLocation>::namespaced(b.client.clone(), NS)
        .get("default")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(st.phase, Some(LocationPhase::Unavailable));
    assert_eq!(
        st.message.as_deref(),
        Some("recovery key Secret typo-key not found")
    );
    Api::<Secret>::namespaced(b.client.clone(), NS)
        .create(
            &Default::default(),
            &recovery_secret("typo-key", &RecoveryKey::generate()),
        )
        .await
        .unwrap();
    assert_eq!(
        repository::reconcile(&r, &b).await.unwrap(),
        RepositoryPhase::NotReady
    );
    let st = repos
        .get(&name_for("shop", "default"))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(st.message.as_deref(), Some(want.as_str()));
    assert_eq!(listing(store.path()), before);
}

/// A ReadOnly location opens repositories with the recovery password and writes nothing: no
/// key, no lock, no repository where there is none.
#[tokio::test]
async fn a_read_only_location_opens_with_the_recovery_key_and_writes_nothing() {
    use arca_api::location::AccessMode;
    let store = tempfile::tempdir().unwrap();
    let key = RecoveryKey::generate();
    let mut loc = bsl("default", &store.path().display().to_string(), None);
    loc.spec.recovery_key = Some(arca_api::common::SecretKeyRef {
        name: "dr-key".into(),
        key: "recovery-key".into(),
    });
    let a = context(client(vec![loc.clone()]).await);
    Api::<Secret>::namespaced(a.client.clone(), NS)
        .create(&Default::default(), &recovery_secret("dr-key", &key))
        .await
        .unwrap();
    let r = repository::ensure(&a, "shop", &loc).await.unwrap();
    repository::reconcile(&r, &a).await.unwrap();
    let before = listing(store.path());

    let mut ro = loc.clone();
    ro.metadata.name = Some("old-cluster".into());
    ro.spec.access_mode = AccessMode::ReadOnly;
    let b = context(client(vec![ro.clone()]).await);
    Api::<Secret>::namespaced(b.client.clone(), NS)
        .create(&Default::default(), &recovery_secret("dr-key", &key))
        .await
        .unwrap();
    location::reconcile(&ro, &b).await.unwrap();
    let r = repository::ensure(&b, "shop", &ro).await.unwrap();
    assert_eq!(
        repository::reconcile(&r, &b).await.unwrap(),
        RepositoryPhase::Ready
    );
    assert_eq!(
        password_of(&b, &name_for("shop", "old-cluster")).await,
        key.repository_password("shop"),
        "the agents use the recovery password"
    );
    // A namespace with no repository in the bucket: never initialised.
    let r = repository::ensure(&b, "blog", &ro).await.unwrap();
    assert_eq!(
        repository::reconcile(&r, &b).await.unwrap(),
        RepositoryPhase::NotReady
    );
    let st = Api::<BackupRepository>::namespaced(b.client.clone(), NS)
        .get(&name_for("blog", "old-cluster"))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        st.message.unwrap(),
        format!(
            "no repository at {}/blog, and a ReadOnly location is never initialised",
            store.path().display()
        )
    );
    assert_eq!(listing(store.path()), before);
}

/// Replacing a location's recovery key adds the new key to each repository before removing
/// the old; interrupted in between, the repository opens with both.
#[tokio::test]
async fn a_replaced_recovery_key_is_added_before_the_old_one_goes() {
    let store = tempfile::tempdir().unwrap();
    let loc = bsl("default", &store.path().display().to_string(), None);
    let ctx = context(client(vec![loc.clone()]).await);
    location::reconcile(&loc, &ctx).await.unwrap();
    let old = recovery_key_of(&ctx, "default").await;
    let r = repository::ensure(&ctx, "shop", &loc).await.unwrap();
    repository::reconcile(&r, &ctx).await.unwrap();
    let url = format!("{}/shop", store.path().display());
    let repos: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), NS);
    let r = repos.get(&name_for("shop", "default")).await.unwrap();
    assert!(!repository::recovery_key_outdated(&ctx, &r).await);

    // The user puts a new key in the Secret.
    let new = RecoveryKey::generate();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), NS);
    let mut s = secrets.get("default-recovery-key").await.unwrap();
    s.data = recovery_secret("x", &new).data;
    secrets
        .replace("default-recovery-key", &Default::default(), &s)
        .await
        .unwrap();
    let loc = Api::<BackupStorageLocation>::namespaced(ctx.client.clone(), NS)
        .get("default")
        .await
        .unwrap();
    location::reconcile(&loc, &ctx).await.unwrap();
    assert!(repository::recovery_key_outdated(&ctx, &r).await);

    // Interrupted before anything was written: the old key opens, the new not yet.
    assert!(opens(&url, &old.repository_password("shop")).await);
    assert!(!opens(&url, &new.repository_password("shop")).await);

    // Interrupted after the new key file was written: both open.
    let opened = arca_engine::Repository::open(
        arca_storage::open(&url).unwrap(),
        &password_of(&ctx, &name_for("shop", "default")).await,
    )
    .await
    .unwrap();
    arca_engine::keys::write_key_as(
        opened.backend(),
        opened.key(),
        &new.repository_password("shop"),
        arca_format::keyfile::KdfParams { n: 16, r: 1, p: 1 },
        arca_engine::recovery::RECOVERY_USERNAME,
        &new.fingerprint(),
    )
    .await
    .unwrap();
    assert!(opens(&url, &old.repository_password("shop")).await);
    assert!(opens(&url, &new.repository_password("shop")).await);

    // The next reconcile finishes: the old key file goes, nothing else.
    assert_eq!(
        repository::reconcile(&r, &ctx).await.unwrap(),
        RepositoryPhase::Ready
    );
    assert!(!opens(&url, &old.repository_password("shop")).await);
    assert!(opens(&url, &new.repository_password("shop")).await);
    assert!(opens(&url, &password_of(&ctx, &name_for("shop", "default")).await).await);
    let r = repos.get(&name_for("shop", "default")).await.unwrap();
    assert_eq!(
        r.status.as_ref().unwrap().recovery_key_fingerprint,
        Some(new.fingerprint())
    );
    assert!(!repository::recovery_key_outdated(&ctx, &r).await);
}

/// A location that now points elsewhere takes its repositories along: they are made ready
/// again at the new place, and the old one is left alone.
#[tokio::test]
async fn repositories_follow_their_location_to_a_new_prefix() {
    let store = tempfile::tempdir().unwrap();
    let mut loc = bsl("default", &store.path().display().to_string(), None);
    loc.spec.prefix = Some("first".into());
    let ctx = context(client(vec![loc.clone()]).await);
    let r = repository::ensure(&ctx, "shop", &loc).await.unwrap();
    repository::reconcile(&r, &ctx).await.unwrap();
    let before = listing(store.path());

    loc.spec.prefix = Some("second".into());
    let r = repository::ensure(&ctx, "shop", &loc).await.unwrap();
    let url = format!("{}/second/shop", store.path().display());
    assert_eq!(r.spec.repository_url, url);
    assert_eq!(
        repository::readiness(&r),
        repository::Readiness::Pending,
        "made ready again"
    );
    assert_eq!(
        repository::reconcile(&r, &ctx).await.unwrap(),
        RepositoryPhase::Ready
    );
    assert!(opens(&url, &password_of(&ctx, &name_for("shop", "default")).await).await);
    let after = listing(store.path());
    assert!(before.is_subset(&after), "the old repository is untouched");
}

/// Namespace `team-a` in location `prod` and namespace `team` in location `a-prod` once
/// mapped to one repository name, and so to one repository and key. They get two; and a
/// repository object found under a name is only used for the pair it is for.
#[tokio::test]
async fn repository_names_never_join_two_namespaces() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let prod = bsl("prod", &one.path().display().to_string(), None);
    let a_prod = bsl("a-prod", &two.path().display().to_string(), None);
    let ctx = context(client(vec![prod.clone(), a_prod.clone()]).await);

    let first = repository::ensure(&ctx, "team-a", &prod).await.unwrap();
    let second = repository::ensure(&ctx, "team", &a_prod).await.unwrap();
    assert_ne!(first.name_any(), second.name_any());
    assert_eq!(
        (
            second.spec.volume_namespace.as_str(),
            second.spec.backup_storage_location.as_str()
        ),
        ("team", "a-prod")
    );

    // An object under the pair's name that is for another pair (made by hand, or left by an
    // older naming) is refused with the reason, not handed out.
    let repos: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), NS);
    let mut stranger = first.clone();
    stranger.metadata = ObjectMeta {
        name: Some(name_for("blog", "prod")),
        namespace: Some(NS.into()),
        ..Default::default()
    };
    repos
        .create(&kube::api::PostParams::default(), &stranger)
        .await
        .unwrap();
    let err = repository::ensure(&ctx, "blog", &prod).await.unwrap_err();
    assert!(matches!(err, arca_operator::Error::Refused(_)), "{err:?}");
    let err = err.to_string();
    assert!(
        err.contains("is for namespace \"team-a\"") && err.contains("not using it"),
        "{err}"
    );
}
