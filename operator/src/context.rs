//! What the operator's reconcilers share.

use arca_format::keyfile::KdfParams;

pub struct Context {
    pub client: kube::Client,
    /// Where Arca's resources, repository keys and credentials live.
    pub namespace: String,
    /// Key derivation for new repository keys (restic's defaults; tests use cheaper ones).
    pub kdf: KdfParams,
    /// The image of the restore-wait init container added to restored pods.
    pub agent_image: String,
}

impl Context {
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Context {
            client,
            namespace: namespace.to_string(),
            kdf: KdfParams::DEFAULT,
            agent_image: "ghcr.io/arca-backup/arca:latest".to_string(),
        }
    }
}

/// The one-line form of an error chain.
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = c.source();
    }
    s
}
