//! Volume work under the repository's shared lock: while maintenance (check, prune) holds it
//! exclusively, a volume backup or restore waits, saying so in its status, instead of failing
//! (restic's `--retry-lock`, which users of restic and Velero otherwise have to script).

use crate::access::{self, RepoAccess};
use crate::context::Context;
use crate::{Error, Result};
use arca_engine::lock::LockGuard;
use arca_engine::Repository;
use arca_reconcile::status::patch_status;
use arca_reconcile::Wrap as _;
use kube::Api;
use serde_json::json;
use std::time::Duration;

/// A repository opened for volume work: its index loaded after the lock was taken (so what a
/// prune just removed is not in it), the lock, and how long taking it took.
pub struct Locked {
    pub repo: Repository,
    pub lock: LockGuard,
    pub waited: Duration,
}

/// Open the repository of `access`, take a shared lock, waiting up to the context's
/// `lock_retry` while another process holds an exclusive one (each wait said in the status of
/// `name`, the object of `api`, as `message` and `lockWaitSeconds`), then load the index.
pub async fn open_locked<K>(
    access: &RepoAccess,
    ctx: &Context,
    api: &Api<K>,
    name: &str,
) -> Result<Locked>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut repo = access::open(access, ctx.cache_dir.as_deref()).await?;
    let (lock, waited) =
        arca_engine::lock::acquire_retrying(&repo, false, ctx.lock_retry, |holder, waited| {
            tracing::info!(object = %name, "waiting for the repository lock {holder}");
            async move {
                let waiting = json!({
                    "message": format!("waiting for the repository lock {holder}"),
                    "lockWaitSeconds": waited.as_secs(),
                });
                // Only a report: the wait goes on if the API server misses one.
                let _ = patch_status(api, name, &waiting).await;
            }
        })
        .await
        .map_err(Error::engine(format!("locking {}", access.url)))?;
    if let Err(e) = repo
        .load_index(&arca_engine::progress::NoProgress)
        .await
        .map_err(Error::engine(format!("{}: loading the index", access.url)))
    {
        let _ = lock.release().await;
        return Err(e);
    }
    Ok(Locked { repo, lock, waited })
}

/// The wait for the lock as the status shows it: whole seconds rounded up, none when the
/// lock was free.
pub fn wait_seconds(waited: Duration) -> Option<u64> {
    (!waited.is_zero()).then(|| waited.as_secs() + u64::from(waited.subsec_nanos() > 0))
}
