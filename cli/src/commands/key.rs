//! `arca key`: managing keys.

use crate::global::{new_password, GlobalOptions};
use crate::output::{JsonObject, Table};
use anyhow::Result;
use arca_engine::keys;
use arca_format::keyfile::KdfParams;
use arca_storage::FileType;
use clap::{Args, Subcommand};

use super::out;
use crate::output::local_time;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// List keys (passwords)
    List,
    /// Add a new key (password)
    Add(NewKeyArgs),
    /// Remove a key by ID
    Remove { id: String },
    /// Change the password of the key in use
    Passwd(NewKeyArgs),
}

#[derive(Args)]
pub struct NewKeyArgs {
    /// file from which to read the new password
    #[arg(long)]
    new_password_file: Option<String>,
    /// the hostname for new keys
    #[arg(long)]
    host: Option<String>,
    /// the username for new keys
    #[arg(long)]
    user: Option<String>,
}

impl NewKeyArgs {
    fn owner(&self) -> keys::KeyOwner {
        keys::KeyOwner {
            username: self.user.clone().unwrap_or_default(),
            hostname: self.host.clone().unwrap_or_default(),
        }
    }
}

pub(super) async fn run(k: KeyCommand, g: &GlobalOptions) -> Result<i32> {
    let repo = g.open().await?;
    match k {
        KeyCommand::List => {
            let list = keys::list_keys(&repo).await?;
            if g.json {
                let items: Vec<Vec<u8>> = list
                    .iter()
                    .map(|(id, kf)| {
                        JsonObject::new()
                            .raw(
                                "current",
                                if *id == repo.key_id() {
                                    b"true"
                                } else {
                                    b"false"
                                },
                            )
                            .str("id", id.short().as_bytes())
                            .str("userName", kf.username.as_bytes())
                            .str("hostName", kf.hostname.as_bytes())
                            .str("created", created(kf).as_bytes())
                            .finish()
                    })
                    .collect();
                out(&[b"[".to_vec(), items.join(&b","[..]), b"]\n".to_vec()].concat())?;
            } else {
                let mut t = Table::new(&[" ID", "User", "Host", "Created"]);
                for (id, kf) in &list {
                    let mark = if *id == repo.key_id() { "*" } else { " " };
                    t.row(vec![
                        format!("{mark}{}", id.short()),
                        kf.username.clone(),
                        kf.hostname.clone(),
                        created(kf),
                    ]);
                }
                print!("{}", t.render());
            }
        }
        KeyCommand::Add(a) => {
            let pw = new_password(a.new_password_file.as_deref(), false)?;
            let id = keys::add_key_as(&repo, &pw, KdfParams::DEFAULT, &a.owner()).await?;
            // As restic 0.17 on (0.14 printed the key as for passwd).
            g.verbose(format!("saved new key with ID {}", id.to_hex()));
        }
        KeyCommand::Remove { id } => {
            let id = repo.find_id(FileType::Key, &id).await?;
            keys::remove_key(&repo, &id).await?;
            g.verbose(format!("removed key {id}"));
        }
        KeyCommand::Passwd(a) => {
            let pw = new_password(a.new_password_file.as_deref(), false)?;
            let id = keys::change_password(&repo, &pw, KdfParams::DEFAULT, &a.owner()).await?;
            let list = keys::list_keys(&repo).await?;
            let Some((_, kf)) = list.into_iter().find(|(k, _)| *k == id) else {
                anyhow::bail!("the new key {} is not in the repository", id.short());
            };
            // restic prints the key as Go formats it: user@host and the creation time.
            let created = kf
                .created
                .as_deref()
                .and_then(|c| arca_format::gotime::GoTime::parse(c).ok())
                .map(|t| crate::output::go_time_string(&t))
                .unwrap_or_default();
            g.verbose(format!(
                "saved new key as <Key of {}@{}, created on {created}>",
                kf.username, kf.hostname
            ));
        }
    }
    Ok(0)
}

fn created(kf: &arca_format::keyfile::KeyFile) -> String {
    kf.created
        .as_deref()
        .and_then(|c| arca_format::gotime::GoTime::parse(c).ok())
        .map(|t| local_time(&t))
        .unwrap_or_default()
}
