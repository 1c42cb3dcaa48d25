//! Repository locks with restic's rules: shared locks coexist, an exclusive lock
//! needs the repository to itself, stale locks are ignored, holders refresh.

use crate::error::{Error, Result};
use crate::repo::{save_unpacked, Repository};
use crate::sys;
use arca_format::gotime::GoTime;
use arca_format::lock::{Lock, REFRESH_EVERY_SECS};
use arca_format::Id;
use arca_storage::{DynBackend, FileType};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A held lock. Refreshes itself in the background until released.
pub struct LockGuard {
    backend: DynBackend,
    current: Arc<Mutex<Id>>,
    refresher: tokio::task::JoinHandle<()>,
}

fn new_lock(exclusive: bool) -> Lock {
    Lock {
        time: GoTime::now(),
        exclusive,
        hostname: sys::hostname(),
        username: sys::username(),
        pid: sys::pid(),
        uid: sys::uid(),
        gid: sys::gid(),
    }
}

/// A lock that conflicts with ours, if any (ours excluded by ID).
async fn find_conflict(
    repo: &Repository,
    exclusive: bool,
    ours: Option<Id>,
) -> Result<Option<(Id, Lock)>> {
    let now = GoTime::now().unix_secs();
    let host = sys::hostname();
    for (id, size) in repo.list_ids(FileType::Lock).await? {
        if Some(id) == ours || size == 0 {
            continue;
        }
        let lock = match repo.load_unpacked(FileType::Lock, &id).await {
            Ok(json) => match Lock::parse(&json) {
                Ok(l) => l,
                Err(_) => continue,
            },
            // Removed meanwhile, or unreadable: restic ignores such locks too.
            Err(_) => continue,
        };
        if lock.is_stale(now, &host, sys::process_exists) {
            continue;
        }
        if exclusive || lock.exclusive {
            return Ok(Some((id, lock)));
        }
    }
    Ok(None)
}

fn describe(id: &Id, l: &Lock) -> String {
    format!(
        "(lock {} by PID {} on {} by {}, created at {}{})",
        id.short(),
        l.pid,
        l.hostname,
        l.username,
        l.time,
        if l.exclusive { ", exclusive" } else { "" }
    )
}

/// The outcome of a lock's second conflict check, 200 ms after it was written.
/// Cloneable, so the repository can make its snapshot and index writes wait for it.
#[derive(Clone)]
pub struct LockCheck(tokio::sync::watch::Receiver<Option<std::result::Result<(), String>>>);

impl LockCheck {
    /// Wait for the check; an error if another process holds a conflicting lock.
    pub async fn wait(&self) -> Result<()> {
        let mut rx = self.0.clone();
        let outcome = rx
            .wait_for(|v| v.is_some())
            .await
            .map(|v| v.clone())
            .unwrap_or_else(|_| Some(Err("the lock check was abandoned".to_string())));
        match outcome {
            Some(Err(msg)) => Err(Error::Locked(msg)),
            _ => Ok(()),
        }
    }
}

impl LockGuard {
    /// Take a lock: check for conflicts, write ours, wait 200 ms and check again.
    pub async fn acquire(repo: &Repository, exclusive: bool) -> Result<LockGuard> {
        let (guard, check) = Self::begin(repo, exclusive).await?;
        match check.wait().await {
            Ok(()) => Ok(guard),
            Err(e) => {
                guard.refresher.abort();
                let _ = guard
                    .backend
                    .remove(FileType::Lock, &guard.id().to_hex())
                    .await;
                Err(e)
            }
        }
    }

    /// Like [`acquire`](Self::acquire), but return as soon as our lock is written; the
    /// 200 ms wait and second check (restic's protection against two processes locking
    /// at once) run in the background. Read-only work may go ahead meanwhile; anything
    /// that commits must first [`LockCheck::wait`]. On a conflict the check removes our
    /// lock file itself.
    pub async fn begin(repo: &Repository, exclusive: bool) -> Result<(LockGuard, LockCheck)> {
        if let Some((id, l)) = find_conflict(repo, exclusive, None).await? {
            return Err(Error::Locked(describe(&id, &l)));
        }
        let id = repo
            .save_unpacked(FileType::Lock, &new_lock(exclusive).to_json())
            .await?;
        let (tx, rx) = tokio::sync::watch::channel(None);
        let detached = repo.detached();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let outcome = match find_conflict(&detached, exclusive, Some(id)).await {
                Ok(None) => Ok(()),
                Ok(Some((other, l))) => {
                    let _ = detached
                        .backend()
                        .remove(FileType::Lock, &id.to_hex())
                        .await;
                    Err(describe(&other, &l))
                }
                Err(e) => Err(format!("checking for other locks: {e}")),
            };
            let _ = tx.send(Some(outcome));
        });
        let current = Arc::new(Mutex::new(id));
        let refresher = spawn_refresher(repo, exclusive, current.clone());
        Ok((
            LockGuard {
                backend: repo.backend().clone(),
                current,
                refresher,
            },
            LockCheck(rx),
        ))
    }

    pub fn id(&self) -> Id {
        *self.current.lock().expect("lock id mutex")
    }

    /// Stop refreshing and remove the lock file.
    pub async fn release(self) -> Result<()> {
        self.refresher.abort();
        let id = self.id();
        self.backend.remove(FileType::Lock, &id.to_hex()).await?;
        Ok(())
    }
}

/// Every five minutes write a fresh lock and remove the old one, as restic does.
fn spawn_refresher(
    repo: &Repository,
    exclusive: bool,
    current: Arc<Mutex<Id>>,
) -> tokio::task::JoinHandle<()> {
    let backend = repo.backend().clone();
    let key = repo.key().clone();
    let version = repo.version();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(REFRESH_EVERY_SECS)).await;
            let json = new_lock(exclusive).to_json();
            let Ok(id) = save_unpacked(&backend, &key, version, FileType::Lock, &json).await else {
                continue;
            };
            let old = std::mem::replace(&mut *current.lock().expect("lock id mutex"), id);
            let _ = backend.remove(FileType::Lock, &old.to_hex()).await;
        }
    })
}

/// Remove stale locks (or all locks); returns how many were removed.
pub async fn unlock(repo: &Repository, remove_all: bool) -> Result<usize> {
    let now = GoTime::now().unix_secs();
    let host = sys::hostname();
    let mut removed = 0;
    for (id, _) in repo.list_ids(FileType::Lock).await? {
        let stale = if remove_all {
            true
        } else {
            match repo
                .load_unpacked(FileType::Lock, &id)
                .await
                .map(|j| Lock::parse(&j))
            {
                Ok(Ok(l)) => l.is_stale(now, &host, sys::process_exists),
                _ => false,
            }
        };
        if stale {
            repo.backend().remove(FileType::Lock, &id.to_hex()).await?;
            removed += 1;
        }
    }
    Ok(removed)
}
