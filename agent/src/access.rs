//! Opening a BackupRepository: its restic URL, its own password from its Secret, and the
//! storage location's credentials, passed to the backend per repository (never through the
//! process environment, which several repositories share).

use crate::context::Context;
use arca_api::repository::RepositoryPhase;
use arca_api::{BackupRepository, BackupStorageLocation};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

/// Everything needed to open one repository.
pub struct RepoAccess {
    pub url: String,
    pub options: arca_storage::options::Options,
    pub password: String,
}

async fn get<K>(api: &Api<K>, what: &str, name: &str) -> Result<K, String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await {
        Ok(Some(o)) => Ok(o),
        Ok(None) => Err(format!("{what} {name} not found")),
        Err(e) => Err(format!("cannot read {what} {name}: {e}")),
    }
}

/// Why a repository cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// It exists but is not Ready: worth waiting for (the operator retries it).
    #[error("{0}")]
    NotReady(String),
    /// Missing objects or bad settings, in one line.
    #[error("{0}")]
    Other(String),
}

impl From<String> for AccessError {
    fn from(s: String) -> Self {
        AccessError::Other(s)
    }
}

/// How to open repository `name` (a BackupRepository in the context's namespace). Fails
/// with one line when it is not Ready or a Secret or location is missing.
pub async fn repository(ctx: &Context, name: &str) -> Result<RepoAccess, AccessError> {
    let repos: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let repo = get(&repos, "BackupRepository", name).await?;
    let status = repo.status.clone().unwrap_or_default();
    if status.phase != Some(RepositoryPhase::Ready) {
        return Err(AccessError::NotReady(format!(
            "BackupRepository {name} is not ready{}",
            status.message.map(|m| format!(": {m}")).unwrap_or_default()
        )));
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let key = repo
        .spec
        .key_secret
        .as_ref()
        .ok_or_else(|| format!("BackupRepository {name} has no key Secret"))?;
    let password = arca_api::common::secret_strings(&get(&secrets, "Secret", &key.name).await?)
        .remove(&key.key)
        .ok_or_else(|| format!("Secret {} has no key {}", key.name, key.key))?;

    let locations: Api<BackupStorageLocation> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let bsl = get(
        &locations,
        "BackupStorageLocation",
        &repo.spec.backup_storage_location,
    )
    .await?;
    let mut options =
        arca_storage::options::Options::parse(bsl.spec.options().iter().map(String::as_str))
            .map_err(|e| {
                format!(
                    "BackupStorageLocation {}: {e}",
                    bsl.metadata.name.clone().unwrap_or_default()
                )
            })?;
    if let Some(cred) = &bsl.spec.credential {
        options.env = arca_api::common::secret_strings(&get(&secrets, "Secret", &cred.name).await?);
    }
    Ok(RepoAccess {
        url: repo.spec.repository_url.clone(),
        options,
        password,
    })
}

/// Open the repository with its index loaded.
pub async fn open(access: &RepoAccess) -> Result<arca_engine::Repository, String> {
    let backend = arca_storage::open_with(&access.url, &access.options)
        .map_err(|e| format!("{}: {e}", access.url))?;
    let mut repo = arca_engine::Repository::open(backend, &access.password)
        .await
        .map_err(|e| format!("{}: {e}", access.url))?;
    repo.load_index(&arca_engine::progress::NoProgress)
        .await
        .map_err(|e| format!("{}: loading the index: {e}", access.url))?;
    Ok(repo)
}
