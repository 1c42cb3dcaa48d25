//! `arca cluster location …`: a storage location's recovery key, for safekeeping, and the
//! recovery password of one of its repositories, for opening it with `arca` or restic alone
//! once the cluster is gone.

use anyhow::{anyhow, bail, Context as _, Result};
use arca_api::common::secret_strings;
use arca_api::BackupStorageLocation;
use arca_engine::recovery::{repository_path, RecoveryKey};
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum LocationCommand {
    /// Print a location's recovery key. Keep it outside the cluster: with it and the bucket,
    /// every repository of the location opens after the cluster is lost
    ExportRecoveryKey { name: String },
    /// Print the restic password of one repository of a location, from the location's
    /// recovery key (no cluster needed)
    RecoveryPassword(RecoveryPasswordArgs),
}

#[derive(Args)]
pub struct RecoveryPasswordArgs {
    /// A file holding the recovery key, as export-recovery-key printed it
    #[arg(long)]
    recovery_key_file: PathBuf,
    /// The location's prefix (its spec.prefix), when the repository is given by name
    #[arg(long)]
    prefix: Option<String>,
    /// The repository: its name (the volumes' namespace, or `resources.arca` for the
    /// manifests) or its s3:, azure: or gs: URL
    repository: String,
}

/// Print the recovery key of location `name` (the Secret its spec names, or the one the
/// operator generated).
pub async fn export_recovery_key(
    client: kube::Client,
    ns: &str,
    name: &str,
    out: &mut dyn Write,
) -> Result<i32> {
    let bsl = Api::<BackupStorageLocation>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .with_context(|| format!("reading BackupStorageLocation {name}"))?
        .ok_or_else(|| anyhow!("BackupStorageLocation {name} not found in namespace {ns}"))?;
    let key_ref = bsl.spec.recovery_key_ref(name);
    let secret = Api::<Secret>::namespaced(client, ns)
        .get_opt(&key_ref.name)
        .await
        .with_context(|| format!("reading Secret {}", key_ref.name))?
        .ok_or_else(|| {
            anyhow!(
                "recovery key Secret {} not found (the operator creates it when it first checks \
                 the location)",
                key_ref.name
            )
        })?;
    let text = secret_strings(&secret)
        .remove(&key_ref.key)
        .ok_or_else(|| anyhow!("Secret {} has no key {}", key_ref.name, key_ref.key))?;
    let key = RecoveryKey::parse(&text).map_err(|e| anyhow!("Secret {}: {e}", key_ref.name))?;
    writeln!(out, "{}", key.expose())?;
    Ok(0)
}

/// Print a repository's recovery password.
pub fn recovery_password(a: &RecoveryPasswordArgs, out: &mut dyn Write) -> Result<i32> {
    let text = std::fs::read_to_string(&a.recovery_key_file)
        .with_context(|| format!("reading {}", a.recovery_key_file.display()))?;
    let key =
        RecoveryKey::parse(&text).map_err(|e| anyhow!("{}: {e}", a.recovery_key_file.display()))?;
    let path = path_of(&a.repository, a.prefix.as_deref())?;
    writeln!(out, "{}", key.repository_password(&path))?;
    Ok(0)
}

/// The repository's path under its location: from a bucket URL, the path inside the bucket;
/// from a name, the prefix and the name.
fn path_of(repository: &str, prefix: Option<&str>) -> Result<String> {
    if !repository.contains(':') && !repository.starts_with('/') {
        return Ok(repository_path(prefix, repository));
    }
    if prefix.is_some() {
        bail!("--prefix goes with a repository name, not a URL (the URL has the prefix in it)");
    }
    use arca_storage::Location;
    match Location::parse(repository).map_err(|e| anyhow!("{e}"))? {
        Location::S3 { prefix, .. }
        | Location::Azure { prefix, .. }
        | Location::Gcs { prefix, .. } => Ok(repository_path(None, &prefix)),
        Location::Local(_)
        | Location::Rest { .. }
        | Location::Sftp { .. }
        | Location::Rclone { .. } => bail!(
            "a local, rest:, sftp: or rclone: repository does not say where the location starts: give the \
             repository's name and the location's --prefix"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_names_and_urls() {
        assert_eq!(
            path_of("shop", Some("/cluster-a/")).unwrap(),
            "cluster-a/shop"
        );
        assert_eq!(path_of("shop", None).unwrap(), "shop");
        assert_eq!(
            path_of("s3:http://127.0.0.1:9000/backups/cluster-a/shop", None).unwrap(),
            "cluster-a/shop"
        );
        assert_eq!(path_of("gs:b:/p/ns", None).unwrap(), "p/ns");
        assert!(path_of("rest:http://h:8000/ns", None).is_err());
        assert!(path_of("s3:h/b/ns", Some("p")).is_err());
    }

    #[test]
    fn the_password_is_the_operators() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        let key = RecoveryKey::generate();
        std::fs::write(&file, format!("{}\n", key.expose())).unwrap();
        let args = RecoveryPasswordArgs {
            recovery_key_file: file,
            prefix: Some("p".into()),
            repository: "shop".into(),
        };
        let mut out = Vec::new();
        recovery_password(&args, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}\n", key.repository_password("p/shop"))
        );
    }
}
