//! `migrate`: restic's repository migrations. There is one: `upgrade_repo_v2`, which raises
//! a version 1 repository to version 2 (compressed blobs, the newer index and pack formats):
//! only the config changes, everything written before stays readable as it is.

use crate::check::{check, ReadData};
use crate::error::{Error, Result};
use crate::progress::NoProgress;
use crate::repo::Repository;

pub const UPGRADE_REPO_V2: &str = "upgrade_repo_v2";

/// restic's migrations: name and description.
pub const ALL: &[(&str, &str)] = &[(UPGRADE_REPO_V2, "upgrade a repository to version 2")];

/// Why the migration `name` cannot be applied to `repo`; `None` when it can.
pub fn refusal(repo: &Repository, name: &str) -> Option<String> {
    match name {
        UPGRADE_REPO_V2 if repo.version() >= 2 => Some(format!(
            "repository is already upgraded to version {}",
            repo.version()
        )),
        _ => None,
    }
}

/// Raise the repository to version 2, as restic does: only after a check (without reading
/// data) finds no damage, so a broken repository is not upgraded into a broken one.
pub async fn upgrade_repo_v2(repo: &mut Repository) -> Result<()> {
    let report = check(repo, ReadData::None, &NoProgress).await?;
    if !report.ok() {
        return Err(Error::CheckFailedBeforeMigration(report.errors.len()));
    }
    let mut config = repo.config().clone();
    config.version = 2;
    repo.replace_config(config).await
}
