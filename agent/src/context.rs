//! What every reconciler of the agent needs: the API client, which node this is, where the
//! kubelet keeps pod directories, and the per-node limit on concurrent transfers.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// How long volume work waits for maintenance by default: a prune of a large repository
/// takes a while, and failing would only make the user run the backup again.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(4 * 3600);

pub struct Context {
    pub client: kube::Client,
    /// This agent's node: only PodVolumeBackups for it, and restores of pods on it.
    pub node: String,
    /// Where Arca's resources and Secrets live (the operator's namespace).
    pub namespace: String,
    /// The kubelet's pods directory as mounted into the agent.
    pub kubelet_pods: PathBuf,
    /// Transfers running at once on this node.
    pub transfers: tokio::sync::Semaphore,
    /// UIDs of the PodVolumeBackups and PodVolumeRestores this process is working on: one
    /// found InProgress but not here was cut off by a restart.
    pub in_flight: Mutex<HashSet<String>>,
    /// At most one status update per this interval while data moves.
    pub progress_interval: Duration,
    /// The local cache's base folder (restic's layout), if any.
    pub cache_dir: Option<PathBuf>,
    /// Failed reconciles by controller and kind, served on `/metrics`.
    pub failures: arca_reconcile::policy::Failures,
    /// How long a volume backup or restore waits for the repository lock (held exclusively
    /// by maintenance) before it fails.
    pub lock_retry: arca_engine::lock::RetryLock,
}

impl Context {
    pub fn new(client: kube::Client, node: &str, namespace: &str, kubelet_pods: PathBuf) -> Self {
        Context {
            client,
            node: node.to_string(),
            namespace: namespace.to_string(),
            kubelet_pods,
            transfers: tokio::sync::Semaphore::new(2),
            in_flight: Mutex::new(HashSet::new()),
            cache_dir: None,
            failures: Default::default(),
            progress_interval: Duration::from_secs(10),
            lock_retry: arca_engine::lock::RetryLock::up_to(DEFAULT_LOCK_WAIT),
        }
    }

    /// Mark `uid` as being worked on here until the returned guard is dropped; `None` if
    /// it already is.
    pub fn begin(&self, uid: &str) -> Option<InFlight<'_>> {
        let fresh = self
            .in_flight
            .lock()
            .expect("in-flight mutex")
            .insert(uid.to_string());
        fresh.then(|| InFlight {
            ctx: self,
            uid: uid.to_string(),
        })
    }
}

/// One object being worked on by this process; the mark goes when this is dropped, which
/// the reconcilers do only after the outcome is in the object's status.
pub struct InFlight<'a> {
    ctx: &'a Context,
    uid: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.ctx.in_flight.lock() {
            set.remove(&self.uid);
        }
    }
}
