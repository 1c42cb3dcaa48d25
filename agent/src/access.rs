//! Opening a BackupRepository: its restic URL, its own password from its Secret, and the
//! storage location's credentials, passed to the backend per repository (never through the
//! process environment, which several repositories share).

use crate::context::Context;
use crate::{Error, Result};
use arca_api::repository::RepositoryPhase;
use arca_api::{BackupRepository, BackupStorageLocation};
use arca_reconcile::Wrap as _;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

/// Everything needed to open one repository.
pub struct RepoAccess {
    pub url: String,
    pub options: arca_storage::options::Options,
    pub password: String,
}

async fn get<K>(api: &Api<K>, what: &str, name: &str) -> Result<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await {
        Ok(Some(o)) => Ok(o),
        Ok(None) => Err(Error::Refused(format!("{what} {name} not found"))),
        Err(e) => Err(Error::api(format!("cannot read {what} {name}"))(e)),
    }
}

/// How to open repository `name` (a BackupRepository in the context's namespace). Fails
/// with [`Error::RepositoryNotReady`] when it is not Ready yet, and with one line when a
/// Secret or location is missing.
pub async fn repository(ctx: &Context, name: &str) -> Result<RepoAccess> {
    let repos: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let repo = get(&repos, "BackupRepository", name).await?;
    let status = repo.status.clone().unwrap_or_default();
    if status.phase != Some(RepositoryPhase::Ready) {
        return Err(Error::RepositoryNotReady(format!(
            "BackupRepository {name} is not ready{}",
            status.message.map(|m| format!(": {m}")).unwrap_or_default()
        )));
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let key = repo
        .spec
        .key_secret
        .as_ref()
        .ok_or_else(|| Error::Refused(format!("BackupRepository {name} has no key Secret")))?;
    let password = arca_api::common::secret_strings(&get(&secrets, "Secret", &key.name).await?)
        .remove(&key.key)
        .ok_or_else(|| Error::Refused(format!("Secret {} has no key {}", key.name, key.key)))?;

    let locations: Api<BackupStorageLocation> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let bsl = get(
        &locations,
        "BackupStorageLocation",
        &repo.spec.backup_storage_location,
    )
    .await?;
    let mut options =
        arca_storage::options::Options::parse(bsl.spec.options().iter().map(String::as_str))
            .map_err(Error::storage(format!(
                "BackupStorageLocation {}",
                bsl.metadata.name.clone().unwrap_or_default()
            )))?;
    if let Some(cred) = &bsl.spec.credential {
        options.env = arca_api::common::secret_strings(&get(&secrets, "Secret", &cred.name).await?);
    }
    Ok(RepoAccess {
        url: repo.spec.repository_url.clone(),
        options,
        password,
    })
}

/// Open the repository, through the local cache in `cache` if given (index files and tree
/// packs are then read from the store once, not at every backup); its index is not loaded
/// yet: see [`crate::repo_lock::open_locked`], which loads it under the lock.
pub async fn open(
    access: &RepoAccess,
    cache: Option<&std::path::Path>,
) -> Result<arca_engine::Repository> {
    let backend = arca_storage::open_with(&access.url, &access.options)
        .map_err(Error::storage(&access.url))?;
    let mut repo = arca_engine::Repository::open(backend, &access.password)
        .await
        .map_err(Error::engine(&access.url))?;
    if let Some(dir) = cache {
        repo.use_cache(&arca_storage::cache::CacheDir::new(dir))
            .map_err(Error::engine(format!("{}: the local cache", access.url)))?;
    }
    Ok(repo)
}
