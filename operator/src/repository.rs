//! BackupRepository: one restic-format repository per (volume namespace, storage location).
//! Each gets its own random password, kept in a Secret of the operator's namespace, so
//! access to one repository's key opens no other (Ark and Velero shared one static key), and
//! a second key derived from its location's recovery key (`arca_engine::recovery`), with
//! which a new cluster, or a person with restic, opens it once this cluster is gone.

use crate::context::Context;
use crate::location;
use crate::{Error, Result};
use arca_api::common::{secret_strings, SecretKeyRef};
use arca_api::location::AccessMode;
use arca_api::repository::{
    RepositoryPhase, ROTATE_KEY_ANNOTATION, STORAGE_LOCATION_LABEL, VOLUME_NAMESPACE_LABEL,
};
use arca_api::{BackupRepository, BackupRepositorySpec, BackupStorageLocation};
use arca_reconcile::one_line;
use arca_reconcile::status::patch_status;
use arca_reconcile::Wrap as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

/// The key, within a repository's Secret, that holds its password.
pub const PASSWORD_KEY: &str = "repository-password";

/// The name of the repository of `namespace` in `location` (one per pair, see
/// [`crate::naming::repository_name`]).
pub fn name_for(namespace: &str, location: &str) -> String {
    crate::naming::repository_name(namespace, location)
}

/// A new random repository password: 32 random bytes, hex-encoded.
fn random_password() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The BackupRepository for `namespace` in `bsl`, created (New) if there is none yet.
pub async fn ensure(
    ctx: &Context,
    namespace: &str,
    bsl: &BackupStorageLocation,
) -> Result<BackupRepository> {
    let api: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let location = bsl.name_any();
    let name = name_for(namespace, &location);
    if let Some(r) = api
        .get_opt(&name)
        .await
        .map_err(Error::api(format!("reading BackupRepository {name}")))?
    {
        check_owner(&r, namespace, &location)?;
        return follow_location(&api, r, &bsl.spec.repository_url(namespace)).await;
    }
    let repo = BackupRepository {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(
                [
                    (VOLUME_NAMESPACE_LABEL.to_string(), namespace.to_string()),
                    (STORAGE_LOCATION_LABEL.to_string(), location.clone()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        spec: BackupRepositorySpec {
            volume_namespace: namespace.to_string(),
            backup_storage_location: location,
            repository_url: bsl.spec.repository_url(namespace),
            key_secret: None,
            maintenance_frequency: None,
        },
        status: None,
    };
    match api.create(&PostParams::default(), &repo).await {
        Ok(r) => Ok(r),
        // Created meanwhile by another reconcile: use that one.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let r = api
                .get(&name)
                .await
                .map_err(Error::api(format!("reading BackupRepository {name}")))?;
            check_owner(&r, namespace, &repo.spec.backup_storage_location)?;
            Ok(r)
        }
        Err(e) => Err(Error::api(format!("creating BackupRepository {name}"))(e)),
    }
}

/// The name is unique per pair, but the object is checked all the same: a repository (and
/// its key) is only ever handed out for the namespace and location it is for.
fn check_owner(r: &BackupRepository, namespace: &str, location: &str) -> Result<()> {
    if r.spec.volume_namespace == namespace && r.spec.backup_storage_location == location {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "BackupRepository {} is for namespace {:?} in location {:?}, not for namespace \
         {namespace:?} in location {location:?}; not using it",
        r.name_any(),
        r.spec.volume_namespace,
        r.spec.backup_storage_location
    )))
}

/// A repository whose location now points elsewhere (another bucket, prefix or endpoint)
/// moves with it: its URL is updated and it is made ready again there.
async fn follow_location(
    api: &Api<BackupRepository>,
    repo: BackupRepository,
    url: &str,
) -> Result<BackupRepository> {
    if repo.spec.repository_url == url {
        return Ok(repo);
    }
    let name = repo.name_any();
    tracing::info!(repository = %name, from = %repo.spec.repository_url, to = %url, "location moved");
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"repositoryUrl": url}})),
    )
    .await
    .map_err(Error::api(format!("updating BackupRepository {name}")))?;
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "phase": RepositoryPhase::New,
            "message": format!("its location moved to {url}"),
            "recoveryKeyFingerprint": null,
        }})),
    )
    .await
    .map_err(Error::api(format!("updating BackupRepository {name}")))
}

/// The repository's password, generating it (and its Secret) on first use: `fixed` if given,
/// else a random one.
async fn password(
    ctx: &Context,
    repo: &BackupRepository,
    fixed: Option<&str>,
) -> Result<(SecretKeyRef, String)> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let key = repo
        .spec
        .key_secret
        .clone()
        .unwrap_or_else(|| SecretKeyRef {
            name: format!("{}-key", repo.name_any()),
            key: PASSWORD_KEY.to_string(),
        });
    let existing = secrets
        .get_opt(&key.name)
        .await
        .map_err(Error::api(format!("reading Secret {}", key.name)))?;
    if let Some(s) = existing {
        return secret_strings(&s)
            .remove(&key.key)
            .map(|p| (key.clone(), p))
            .ok_or_else(|| Error::Refused(format!("Secret {} has no key {}", key.name, key.key)));
    }
    if repo.spec.key_secret.is_some() {
        return Err(Error::Refused(format!("key Secret {} not found", key.name)));
    }
    let pw = fixed.map(str::to_owned).unwrap_or_else(random_password);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(key.name.clone()),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(
                [(
                    VOLUME_NAMESPACE_LABEL.to_string(),
                    repo.spec.volume_namespace.clone(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        data: Some([(key.key.clone(), ByteString(pw.clone().into_bytes()))].into()),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .map_err(Error::api(format!("creating Secret {}", key.name)))?;
    Ok((key, pw))
}

/// The storage location a repository lives in.
async fn location_of(ctx: &Context, repo: &BackupRepository) -> Result<BackupStorageLocation> {
    let locations: Api<BackupStorageLocation> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let name = &repo.spec.backup_storage_location;
    locations
        .get_opt(name)
        .await
        .map_err(Error::api(format!("reading BackupStorageLocation {name}")))?
        .ok_or_else(|| Error::Refused(format!("BackupStorageLocation {name} not found")))
}

/// The storage backend of `repo`: its URL with its location's options and credentials.
async fn backend_of(ctx: &Context, repo: &BackupRepository) -> Result<arca_storage::DynBackend> {
    let bsl = location_of(ctx, repo).await?;
    let options = location::storage_options(ctx, &bsl).await?;
    let url = &repo.spec.repository_url;
    arca_storage::open_with(url, &options).map_err(Error::storage(url))
}

/// Open `backend` (the store of `repo`) with password `pw`.
async fn open_backend(
    backend: &arca_storage::DynBackend,
    repo: &BackupRepository,
    pw: &str,
) -> Result<arca_engine::Repository> {
    arca_engine::Repository::open(backend.clone(), pw)
        .await
        .map_err(Error::engine(&repo.spec.repository_url))
}

/// Open a Ready repository with its key and location credentials, index not loaded (enough
/// for snapshots and keys).
pub async fn open_unindexed(
    ctx: &Context,
    repo: &BackupRepository,
) -> Result<arca_engine::Repository> {
    let (_, pw) = password(ctx, repo, None).await?;
    open_backend(&backend_of(ctx, repo).await?, repo, &pw).await
}

/// Open a Ready repository with its key and location credentials, index loaded.
pub async fn open(ctx: &Context, repo: &BackupRepository) -> Result<arca_engine::Repository> {
    let mut r = open_unindexed(ctx, repo).await?;
    // The cache for the indexed work (manifests, sync), never for maintenance: a check
    // must read the store itself.
    if let Some(dir) = &ctx.cache_dir {
        r.use_cache(&arca_storage::cache::CacheDir::new(dir))
            .map_err(Error::engine(format!(
                "{}: the local cache",
                repo.spec.repository_url
            )))?;
    }
    r.load_index(&arca_engine::progress::NoProgress)
        .await
        .map_err(Error::engine(format!(
            "{}: loading the index",
            repo.spec.repository_url
        )))?;
    Ok(r)
}

/// Where a rotation keeps the new password until the Secret's main key holds it.
const PENDING_KEY: &str = "pending-repository-password";

/// Give `repo` a new random password: stored in its Secret first (under a pending key), then
/// added to the repository as a key, then the old key removed, then made the Secret's
/// password. Each step can be interrupted: the next call finishes the job, and no moment
/// leaves the repository without a key whose password the Secret holds.
pub async fn rotate_key(repo: &BackupRepository, ctx: &Context) -> Result<()> {
    let key = repo.spec.key_secret.clone().ok_or_else(|| {
        Error::Refused(format!(
            "BackupRepository {} has no key Secret yet",
            repo.name_any()
        ))
    })?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let stored = secret_strings(
        &secrets
            .get(&key.name)
            .await
            .map_err(Error::api(format!("reading Secret {}", key.name)))?,
    );
    let current = stored
        .get(&key.key)
        .cloned()
        .ok_or_else(|| Error::Refused(format!("Secret {} has no key {}", key.name, key.key)))?;
    let backend = backend_of(ctx, repo).await?;
    let set = |pairs: Vec<(&str, Option<String>)>| {
        let data: serde_json::Map<String, serde_json::Value> = pairs
            .into_iter()
            .map(|(k, v)| {
                let v = v
                    .map(|v| json!(base64_of(&v)))
                    .unwrap_or(serde_json::Value::Null);
                (k.to_string(), v)
            })
            .collect();
        let secrets = secrets.clone();
        let name = key.name.clone();
        async move {
            secrets
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "data": data })),
                )
                .await
                .map(drop)
                .map_err(Error::api(format!("updating Secret {name}")))
        }
    };
    let new = match stored.get(PENDING_KEY) {
        Some(p) => p.clone(),
        None => {
            let p = random_password();
            set(vec![(PENDING_KEY, Some(p.clone()))]).await?;
            p
        }
    };
    match open_backend(&backend, repo, &current).await {
        Ok(old) => {
            // The new key (unless an interrupted rotation added it already), then the old
            // one removed from a session opened with the new.
            let with_new = match open_backend(&backend, repo, &new).await {
                Ok(r) => r,
                Err(_) => {
                    arca_engine::keys::add_key(&old, &new, ctx.kdf)
                        .await
                        .map_err(Error::engine("adding the new key"))?;
                    open_backend(&backend, repo, &new).await?
                }
            };
            if with_new.key_id() != old.key_id() {
                arca_engine::keys::remove_key(&with_new, &old.key_id())
                    .await
                    .map_err(Error::engine("removing the old key"))?;
            }
        }
        // Interrupted after the old key went: the pending password must open it.
        Err(e) => {
            open_backend(&backend, repo, &new).await.map_err(|_| {
                Error::Refused(format!(
                    "neither the current nor the pending password opens it: {e}"
                ))
            })?;
        }
    }
    set(vec![(key.key.as_str(), Some(new)), (PENDING_KEY, None)]).await?;
    let repos: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    repos
        .patch(
            &repo.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {ROTATE_KEY_ANNOTATION: null}}})),
        )
        .await
        .map_err(Error::api("clearing the rotation request"))?;
    Ok(())
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Make the repository Ready: its key exists, and the repository opens with it (created if
/// the store has none yet). Returns the phase recorded: New when the store failed for a while
/// (try again soon).
pub async fn reconcile(repo: &BackupRepository, ctx: &Context) -> Result<RepositoryPhase> {
    Ok(match make_ready_and_record(repo, ctx).await? {
        Ok(()) => RepositoryPhase::Ready,
        Err(e) if e.transient => RepositoryPhase::New,
        Err(_) => RepositoryPhase::NotReady,
    })
}

/// Where a repository stands, for those that use it (only its own controller makes it
/// Ready, so that two initialisations never race).
#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Its controller has not looked at it yet: wait (the repository watch brings the
    /// change).
    Pending,
    /// Its controller could not make it ready, for this reason.
    NotReady(String),
}

/// What a repository that is not Ready says about it.
pub fn unready_reason(repo: &BackupRepository) -> String {
    repo.status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_else(|| "its controller has not made it ready yet".to_string())
}

pub fn readiness(repo: &BackupRepository) -> Readiness {
    let status = repo.status.clone().unwrap_or_default();
    match status.phase {
        Some(RepositoryPhase::Ready) => Readiness::Ready,
        Some(RepositoryPhase::NotReady) => Readiness::NotReady(
            status
                .message
                .unwrap_or_else(|| "no reason recorded".to_string()),
        ),
        Some(RepositoryPhase::New) | None => Readiness::Pending,
    }
}

/// What making a repository ready found.
struct Made {
    /// Worth saying in the status (initialised, opened with the recovery key, ...).
    message: Option<String>,
    /// The fingerprint of the recovery key the repository now holds.
    recovery_fingerprint: String,
}

async fn make_ready_and_record(
    repo: &BackupRepository,
    ctx: &Context,
) -> Result<Result<(), Unready>> {
    let name = repo.name_any();
    let api: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let result = make_ready(repo, ctx, &api).await;
    // A store that failed for a while leaves the repository pending (those who need it wait,
    // and its controller tries again soon); any other reason makes it NotReady, with the reason.
    let status = match &result {
        Ok(made) => json!({
            "phase": RepositoryPhase::Ready,
            "message": made.message,
            "recoveryKeyFingerprint": made.recovery_fingerprint,
        }),
        Err(e) if e.transient => json!({
            "phase": RepositoryPhase::New,
            "message": format!("will try again: {}", e.message),
        }),
        Err(e) => json!({"phase": RepositoryPhase::NotReady, "message": e.message}),
    };
    patch_status(&api, &name, &status).await?;
    if let Err(e) = &result {
        tracing::warn!(repository = %name, transient = e.transient, "not ready: {}", e.message);
    }
    Ok(result.map(drop))
}

/// Why a repository is not ready, and whether trying again soon may help (the store failed
/// for a while: a 5xx, a dropped connection) or not (no key opens it, no credentials, ...).
#[derive(Debug)]
pub struct Unready {
    pub message: String,
    pub transient: bool,
}

impl From<Error> for Unready {
    fn from(e: Error) -> Unready {
        Unready {
            transient: e.is_transient(),
            message: e.to_string(),
        }
    }
}

/// An engine error as [`Unready`], transient when the store's failure was: `what` says what
/// was being done.
fn unready(e: &arca_engine::Error, what: String) -> Unready {
    Unready {
        message: format!("{what}: {}", one_line(e)),
        transient: matches!(e, arca_engine::Error::Storage(s) if s.is_transient()),
    }
}

/// Whether a Ready repository must be opened again to give it its location's current
/// recovery key (a key replaced, or a repository from before recovery keys). Never for a
/// ReadOnly location, which is not written.
pub async fn recovery_key_outdated(ctx: &Context, repo: &BackupRepository) -> bool {
    let Ok(bsl) = location_of(ctx, repo).await else {
        return false;
    };
    let wanted = bsl
        .status
        .as_ref()
        .and_then(|s| s.recovery_key_fingerprint.clone());
    let held = repo
        .status
        .as_ref()
        .and_then(|s| s.recovery_key_fingerprint.clone());
    bsl.spec.access_mode == AccessMode::ReadWrite && wanted.is_some() && wanted != held
}

/// Open the repository (creating it only where none exists), give it this cluster's working
/// key and the location's recovery key. A repository that exists and that no key of this
/// cluster opens is never initialised again: the error says what to do.
async fn make_ready(
    repo: &BackupRepository,
    ctx: &Context,
    api: &Api<BackupRepository>,
) -> Result<Made, Unready> {
    let bsl = location_of(ctx, repo).await?;
    let read_only = bsl.spec.access_mode == AccessMode::ReadOnly;
    let options = location::storage_options(ctx, &bsl).await?;
    let url = &repo.spec.repository_url;
    let backend = arca_storage::open_with(url, &options).map_err(Error::storage(url))?;
    let (recovery, _) = location::recovery_key(ctx, &bsl).await?;
    let path = recovery_path(&bsl, repo);
    let recovery_pw = recovery.repository_password(&path);
    // A ReadOnly location adds no key: its repositories are used with the recovery password.
    let (key, pw) = password(ctx, repo, read_only.then_some(recovery_pw.as_str())).await?;
    if repo.spec.key_secret.as_ref() != Some(&key) {
        api.patch(
            &repo.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"keySecret": key}})),
        )
        .await
        .map_err(Error::api("recording the key Secret"))?;
    }
    let made = |message: Option<String>| Made {
        message,
        recovery_fingerprint: recovery.fingerprint(),
    };
    let give_recovery_key = |opened: arca_engine::Repository| {
        let (recovery, path) = (recovery.clone(), path.clone());
        async move {
            let change =
                arca_engine::recovery::ensure_recovery_key(&opened, &recovery, &path, ctx.kdf)
                    .await
                    .map_err(|e| unready(&e, format!("{url}: adding the recovery key")))?;
            if change.added.is_some() || !change.removed.is_empty() {
                tracing::info!(
                    repository = %url,
                    added = change.added.is_some(),
                    removed = change.removed.len(),
                    "recovery key updated"
                );
            }
            Ok::<_, Unready>(())
        }
    };
    match arca_engine::Repository::open(backend.clone(), &pw).await {
        Ok(opened) => {
            if !read_only {
                give_recovery_key(opened).await?;
            }
            Ok(made(None))
        }
        Err(arca_engine::Error::WrongPassword) => {
            // Made by another cluster (or before this one lost its Secrets): the recovery key
            // opens it, and this cluster adds its own working key.
            match arca_engine::Repository::open(backend.clone(), &recovery_pw).await {
                Ok(_) if read_only => {
                    set_password(ctx, &key, &recovery_pw).await?;
                    Ok(made(Some(format!(
                        "{url} opened with the location's recovery key (read-only: no key added)"
                    ))))
                }
                Ok(opened) => {
                    arca_engine::keys::add_key(&opened, &pw, ctx.kdf)
                        .await
                        .map_err(|e| unready(&e, format!("{url}: adding this cluster's key")))?;
                    give_recovery_key(opened).await?;
                    Ok(made(Some(format!(
                        "{url} opened with the location's recovery key; this cluster's key added"
                    ))))
                }
                Err(arca_engine::Error::WrongPassword) => Err(Error::Refused(format!(
                    "repository {url} exists in the bucket and this cluster has no key that \
                     opens it: give the location the recovery key it was created with"
                ))
                .into()),
                Err(e) => Err(unready(&e, url.to_string())),
            }
        }
        Err(arca_engine::Error::NoKeys(_))
        | Err(arca_engine::Error::Storage(arca_storage::StorageError::NoRepository(_)))
            if read_only =>
        {
            Err(Error::Refused(format!(
                "no repository at {url}, and a ReadOnly location is never initialised"
            ))
            .into())
        }
        Err(arca_engine::Error::NoKeys(_))
        | Err(arca_engine::Error::Storage(arca_storage::StorageError::NoRepository(_))) => {
            match arca_engine::Repository::init(backend.clone(), &pw, 2, None, ctx.kdf).await {
                Ok(created) => {
                    give_recovery_key(created).await?;
                    Ok(made(Some(format!("initialised {url}"))))
                }
                // Initialised meanwhile by someone else with this Secret's password (an
                // operator replica that just lost its lease): it must open now.
                Err(arca_engine::Error::Storage(arca_storage::StorageError::RepositoryExists(
                    _,
                ))) => match arca_engine::Repository::open(backend, &pw).await {
                    Ok(opened) => {
                        give_recovery_key(opened).await?;
                        Ok(made(None))
                    }
                    Err(e) => Err(unready(
                        &e,
                        format!("{url} was initialised by someone else"),
                    )),
                },
                Err(e) => Err(unready(&e, format!("initialising {url}"))),
            }
        }
        Err(e) => Err(unready(&e, url.to_string())),
    }
}

/// The repository's path under its location, from which its recovery password is derived.
pub fn recovery_path(bsl: &BackupStorageLocation, repo: &BackupRepository) -> String {
    arca_engine::recovery::repository_path(bsl.spec.prefix.as_deref(), &repo.spec.volume_namespace)
}

/// Replace the password a repository's Secret holds.
async fn set_password(ctx: &Context, key: &SecretKeyRef, pw: &str) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    secrets
        .patch(
            &key.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {key.key.as_str(): base64_of(pw)}})),
        )
        .await
        .map(drop)
        .map_err(Error::api(format!("updating Secret {}", key.name)))
}
