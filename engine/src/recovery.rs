//! Recovery keys: one secret per storage location from which every repository in it gets a
//! restic key of its own, so that whoever holds the recovery key and the bucket can open any
//! of those repositories (with arca or restic) after the cluster that made them is gone.
//!
//! A repository's recovery password is HKDF-SHA256 of the recovery key with the repository's
//! path under the location (`prefix/name`) as info: one repository's password opens no other
//! and tells nothing of the recovery key. The path, not the URL, so that the endpoint a new
//! cluster reaches the bucket by (or the bucket's name, after a copy) does not matter.
//!
//! Recovery key files carry the username [`RECOVERY_USERNAME`] and, as hostname, the recovery
//! key's fingerprint: the files of a replaced recovery key are found, and removed, without its
//! password.

use crate::error::{Error, Result};
use crate::keys;
use crate::repo::Repository;
use arca_format::keyfile::KdfParams;
use arca_format::Id;
use hkdf::Hkdf;
use sha2::Sha256;

/// The username of every recovery key file.
pub const RECOVERY_USERNAME: &str = "arca-recovery";

/// The shortest recovery key accepted from a user (the generated ones are 64 hex digits).
pub const MIN_RECOVERY_KEY_LEN: usize = 32;

const PASSWORD_SALT: &[u8] = b"arca recovery password v1";
const FINGERPRINT_SALT: &[u8] = b"arca recovery key fingerprint v1";

/// Why a recovery key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecoveryKeyError {
    #[error("a recovery key must be at least {MIN_RECOVERY_KEY_LEN} characters long (the generated ones are 64 hex digits); this one has {0}")]
    TooShort(usize),
}

/// A location's recovery key. Its text never leaves through Debug or Display.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryKey(String);

impl std::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryKey({})", self.fingerprint())
    }
}

impl RecoveryKey {
    /// A new random key: 256 bits as 64 hex digits.
    pub fn generate() -> Self {
        RecoveryKey(hex::encode(rand::random::<[u8; 32]>()))
    }

    /// A key as the user stored it; surrounding whitespace (a trailing newline) is ignored.
    pub fn parse(text: &str) -> std::result::Result<Self, RecoveryKeyError> {
        let text = text.trim();
        let len = text.chars().count();
        if len < MIN_RECOVERY_KEY_LEN {
            return Err(RecoveryKeyError::TooShort(len));
        }
        Ok(RecoveryKey(text.to_owned()))
    }

    /// The key's text, for storing it (in a Secret, or a file kept outside the cluster).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// 16 hex digits that name this key (in key files and status) and reveal nothing of it.
    pub fn fingerprint(&self) -> String {
        let mut out = [0u8; 8];
        Hkdf::<Sha256>::new(Some(FINGERPRINT_SALT), self.0.as_bytes())
            .expand(b"fingerprint", &mut out)
            .expect("8 bytes is a valid HKDF-SHA256 length");
        hex::encode(out)
    }

    /// The restic password of the repository at `repository_path` (see [`repository_path`]).
    pub fn repository_password(&self, repository_path: &str) -> String {
        let mut out = [0u8; 32];
        Hkdf::<Sha256>::new(Some(PASSWORD_SALT), self.0.as_bytes())
            .expand(repository_path.as_bytes(), &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        hex::encode(out)
    }
}

/// A repository's path under its location: the prefix and the name, `/`-joined, without
/// empty parts or outer slashes (`/a//b/`, `ns` → `a/b/ns`).
pub fn repository_path(prefix: Option<&str>, name: &str) -> String {
    prefix
        .unwrap_or("")
        .split('/')
        .chain(name.split('/'))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// What [`ensure_recovery_key`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecoveryKeyChange {
    /// The key file added for the current recovery key.
    pub added: Option<Id>,
    /// Key files of earlier recovery keys, removed.
    pub removed: Vec<Id>,
}

/// Make `recovery`'s key the one recovery key of `repo` (opened with another key): add its
/// key file unless present, then remove the files of other recovery keys. Each step can be
/// interrupted: the repository always opens with the old or the new recovery key.
pub async fn ensure_recovery_key(
    repo: &Repository,
    recovery: &RecoveryKey,
    repository_path: &str,
    params: KdfParams,
) -> Result<RecoveryKeyChange> {
    let fingerprint = recovery.fingerprint();
    let files = keys::list_keys(repo).await?;
    let is_recovery = |kf: &arca_format::keyfile::KeyFile| kf.username == RECOVERY_USERNAME;
    let mut change = RecoveryKeyChange::default();
    let current = files
        .iter()
        .any(|(_, kf)| is_recovery(kf) && kf.hostname == fingerprint);
    if !current {
        let password = recovery.repository_password(repository_path);
        change.added = Some(
            keys::write_key_as(
                repo.backend(),
                repo.key(),
                &password,
                params,
                RECOVERY_USERNAME,
                &fingerprint,
            )
            .await?,
        );
    }
    for (id, kf) in &files {
        if is_recovery(kf) && kf.hostname != fingerprint {
            if *id == repo.key_id() {
                return Err(Error::RecoveryKeyInUse);
            }
            keys::remove_key(repo, id).await?;
            change.removed.push(*id);
        }
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> RecoveryKey {
        RecoveryKey::parse(s).unwrap()
    }

    #[test]
    fn passwords_differ_per_repository_and_key() {
        let a = key(&"a".repeat(64));
        let b = key(&"b".repeat(64));
        let p = a.repository_password("backups/shop");
        assert_eq!(p.len(), 64);
        assert_eq!(p, a.repository_password("backups/shop"), "deterministic");
        assert_ne!(p, a.repository_password("backups/shop2"));
        assert_ne!(p, b.repository_password("backups/shop"));
        assert!(!p.contains(a.expose()));
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
        assert_ne!(a.fingerprint(), &p[..16]);
    }

    /// A fixed vector (computed independently with Python's hmac), so that the derivation can
    /// never change under existing repositories.
    #[test]
    fn derivation_is_stable() {
        let k = key("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        assert_eq!(
            k.repository_password("cluster-a/shop"),
            "e5bf560e580a7799f0314e4ecbadf8b5c4cd2fc3d05a8b10b2e6ea908da0adec"
        );
        assert_eq!(k.fingerprint(), "91643ef505ca0287");
    }

    #[test]
    fn short_keys_are_refused_and_whitespace_ignored() {
        assert_eq!(
            RecoveryKey::parse("too short"),
            Err(RecoveryKeyError::TooShort(9))
        );
        let k = RecoveryKey::parse(&format!("  {}\n", "x".repeat(40))).unwrap();
        assert_eq!(k.expose(), "x".repeat(40));
        assert!(!format!("{k:?}").contains("xxxx"));
        assert_eq!(RecoveryKey::generate().expose().len(), 64);
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(repository_path(Some("/a//b/"), "ns"), "a/b/ns");
        assert_eq!(repository_path(None, "ns"), "ns");
        assert_eq!(repository_path(Some(""), "/ns/"), "ns");
    }
}
