//! What the operator's reconcilers share.

use crate::{Error, Result};
use arca_format::keyfile::KdfParams;
use arca_reconcile::Wrap as _;

pub struct Context {
    pub client: kube::Client,
    /// Where Arca's resources, repository keys and credentials live.
    pub namespace: String,
    /// Key derivation for new repository keys (restic's defaults; tests use cheaper ones).
    pub kdf: KdfParams,
    /// The image of the restore-wait init container added to restored pods; `None`: the
    /// image of the agent DaemonSet, which every node runs already.
    pub agent_image: Option<String>,
    /// The local cache's base folder (restic's layout), if any: the resource repositories'
    /// index files and tree packs are then read once, not at every Backup and sync.
    pub cache_dir: Option<std::path::PathBuf>,
    /// How long maintenance, expiry and manifest backups wait for a repository lock others
    /// hold (volume backups, for maintenance) before they fail.
    pub lock_retry: arca_engine::lock::RetryLock,
}

/// The default of [`Context::lock_retry`]: as long as a large volume backup may run.
pub const DEFAULT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(4 * 3600);

impl Context {
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Context {
            client,
            namespace: namespace.to_string(),
            kdf: KdfParams::DEFAULT,
            agent_image: None,
            cache_dir: None,
            lock_retry: arca_engine::lock::RetryLock::up_to(DEFAULT_LOCK_WAIT),
        }
    }
}

/// The name of the agent DaemonSet in the operator's namespace (as `deploy/` installs it).
pub const AGENT_DAEMONSET: &str = "arca-agent";

impl Context {
    /// The restore-wait image: the one configured, else the agent DaemonSet's.
    pub async fn restore_wait_image(&self) -> Result<String> {
        if let Some(image) = &self.agent_image {
            return Ok(image.clone());
        }
        let daemonsets: kube::Api<k8s_openapi::api::apps::v1::DaemonSet> =
            kube::Api::namespaced(self.client.clone(), &self.namespace);
        let ds = daemonsets
            .get_opt(AGENT_DAEMONSET)
            .await
            .map_err(Error::api(format!("reading DaemonSet {AGENT_DAEMONSET}")))?
            .ok_or_else(|| {
                Error::Refused(format!(
                    "no DaemonSet {AGENT_DAEMONSET} in namespace {} to take the restore-wait \
                     image from (give the operator --agent-image)",
                    self.namespace
                ))
            })?;
        ds.spec
            .and_then(|s| s.template.spec)
            .and_then(|s| s.containers.into_iter().next())
            .and_then(|c| c.image)
            .ok_or_else(|| Error::Refused(format!("DaemonSet {AGENT_DAEMONSET} names no image")))
    }
}
