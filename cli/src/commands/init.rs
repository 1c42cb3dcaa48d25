//! `arca init`: creating a repository.

use crate::global::{new_password, GlobalOptions};
use crate::output::JsonObject;
use anyhow::{bail, Context, Result};
use arca_engine::Repository;
use arca_format::keyfile::KdfParams;
use arca_storage::location::redacted;
use clap::Args;

use super::out;

#[derive(Args)]
pub struct InitArgs {
    /// repository format version to use, allowed values are a format version, 'latest' and 'stable'
    #[arg(long, default_value = "stable")]
    repository_version: String,
    /// file to read the password for the new repository from
    #[arg(long)]
    new_password_file: Option<String>,
    /// copy chunker parameters from the secondary repository (useful with the copy command)
    #[arg(long)]
    copy_chunker_params: bool,
    #[command(flatten)]
    from: crate::commands::copy::FromRepoArgs,
}

pub(super) async fn run(a: InitArgs, g: &GlobalOptions) -> Result<i32> {
    let version = match a.repository_version.as_str() {
        "stable" | "latest" | "2" => 2,
        "1" => 1,
        v => bail!("unsupported repository version {v:?}: use 1, 2, latest or stable"),
    };
    let loc = g.repo_location()?;
    let backend = g.backend(&loc)?;
    let pw = match (&a.new_password_file, &g.password_file) {
        (Some(f), _) => new_password(Some(f), false)?,
        (None, Some(f)) => new_password(Some(f), false)?,
        (None, None) if g.password_command.is_some() => g.password()?,
        (None, None) => new_password(None, true)?,
    };
    if pw.is_empty() {
        bail!("an empty password is not allowed");
    }
    let polynomial = if a.copy_chunker_params {
        if !a.from.given() {
            bail!("--copy-chunker-params needs the source repository (--from-repo)");
        }
        Some(a.from.open().await?.config().chunker_polynomial)
    } else {
        None
    };
    let repo = Repository::init(backend, &pw, version, polynomial, KdfParams::DEFAULT)
        .await
        .with_context(|| format!("create repository at {}", redacted(&loc)))?;
    if g.json {
        let j = JsonObject::new()
            .str("message_type", b"initialized")
            .str("id", repo.config().id.as_bytes())
            .str("repository", redacted(&loc).as_bytes())
            .finish();
        out(&[j, b"\n".to_vec()].concat())?;
    } else if !g.quiet {
        println!(
            "created restic repository {} at {}",
            &repo.config().id[..10.min(repo.config().id.len())],
            redacted(&loc)
        );
        println!();
        println!("Please note that knowledge of your password is required to access");
        println!("the repository. Losing your password means that your data is");
        println!("irrecoverably lost.");
    }
    Ok(0)
}
