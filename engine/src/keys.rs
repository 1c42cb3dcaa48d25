//! Key management: several key files may wrap the same master key.

use crate::error::{Error, Result};
use crate::repo::{load_key_file, Repository};
use crate::sys;
use arca_format::crypto::Key;
use arca_format::gotime::GoTime;
use arca_format::keyfile::{KdfParams, KeyFile};
use arca_format::Id;
use arca_storage::{DynBackend, FileType};
use bytes::Bytes;

/// Wrap `master` under `password` and store the key file; returns its ID.
pub async fn write_key(
    backend: &DynBackend,
    master: &Key,
    password: &str,
    params: KdfParams,
) -> Result<Id> {
    write_key_as(
        backend,
        master,
        password,
        params,
        &sys::username(),
        &sys::hostname(),
    )
    .await
}

/// [`write_key`] with the username and hostname the key file records.
pub async fn write_key_as(
    backend: &DynBackend,
    master: &Key,
    password: &str,
    params: KdfParams,
    username: &str,
    hostname: &str,
) -> Result<Id> {
    let master = master.clone();
    let pw = password.as_bytes().to_vec();
    let (username, hostname) = (username.to_owned(), hostname.to_owned());
    let kf = tokio::task::spawn_blocking(move || {
        KeyFile::create(
            &master,
            &pw,
            params,
            &username,
            &hostname,
            Some(GoTime::now().format()),
        )
    })
    .await
    .expect("key derivation does not panic")
    .map_err(|source| Error::Key {
        id: "(new)".into(),
        source,
    })?;
    let json = kf.to_json();
    let id = Id::hash(&json);
    backend
        .write(FileType::Key, &id.to_hex(), Bytes::from(json), true)
        .await?;
    Ok(id)
}

/// Every key file, parsed (not opened).
pub async fn list_keys(repo: &Repository) -> Result<Vec<(Id, KeyFile)>> {
    let mut out = Vec::new();
    for (id, _) in repo.list_ids(FileType::Key).await? {
        out.push((id, load_key_file(repo.backend(), &id).await?));
    }
    Ok(out)
}

pub async fn add_key(repo: &Repository, password: &str, params: KdfParams) -> Result<Id> {
    write_key(repo.backend(), repo.key(), password, params).await
}

/// Who a new key says made it (restic's `key add --user --host`); empty fields mean this
/// user and host.
#[derive(Clone, Debug, Default)]
pub struct KeyOwner {
    pub username: String,
    pub hostname: String,
}

impl KeyOwner {
    fn resolved(&self) -> (String, String) {
        let or = |v: &str, default: fn() -> String| {
            if v.is_empty() {
                default()
            } else {
                v.to_string()
            }
        };
        (
            or(&self.username, sys::username),
            or(&self.hostname, sys::hostname),
        )
    }
}

/// [`add_key`] recording `owner` in the key file.
pub async fn add_key_as(
    repo: &Repository,
    password: &str,
    params: KdfParams,
    owner: &KeyOwner,
) -> Result<Id> {
    let (username, hostname) = owner.resolved();
    write_key_as(
        repo.backend(),
        repo.key(),
        password,
        params,
        &username,
        &hostname,
    )
    .await
}

/// Remove a key other than the one this session opened with.
pub async fn remove_key(repo: &Repository, id: &Id) -> Result<()> {
    if *id == repo.key_id() {
        return Err(Error::KeyInUse);
    }
    repo.backend().remove(FileType::Key, &id.to_hex()).await?;
    Ok(())
}

/// Replace the current key with one for a new password; returns the new key's ID.
pub async fn change_password(
    repo: &Repository,
    password: &str,
    params: KdfParams,
    owner: &KeyOwner,
) -> Result<Id> {
    let new = add_key_as(repo, password, params, owner).await?;
    repo.backend()
        .remove(FileType::Key, &repo.key_id().to_hex())
        .await?;
    Ok(new)
}
