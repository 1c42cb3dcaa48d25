//! `arca unlock`: removing locks.

use crate::global::GlobalOptions;
use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct UnlockArgs {
    /// remove all locks, even non-stale ones
    #[arg(long)]
    remove_all: bool,
}

pub(super) async fn run(a: UnlockArgs, g: &GlobalOptions) -> Result<i32> {
    let repo = g.open().await?;
    let n = arca_engine::lock::unlock(&repo, a.remove_all).await?;
    g.verbose(format!("successfully removed {n} locks"));
    Ok(0)
}
