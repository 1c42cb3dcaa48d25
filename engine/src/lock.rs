//! Repository locks with restic's rules: shared locks coexist, an exclusive lock
//! needs the repository to itself, stale locks are ignored, holders refresh.

use crate::error::{Error, Result};
use crate::repo::{save_unpacked, Repository};
use crate::sys;
use arca_format::gotime::GoTime;
use arca_format::lock::{Lock, REFRESH_EVERY_SECS, STALE_AFTER_SECS};
use arca_format::Id;
use arca_storage::{DynBackend, FileType};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How long a lock may go without a successful refresh before the work under it must stop:
/// restic's rule (0.16+), leaving a margin before other hosts may take the lock as stale.
pub const REFRESH_DEADLINE: Duration =
    Duration::from_secs(STALE_AFTER_SECS as u64 - REFRESH_EVERY_SECS * 3 / 2);

/// Every lock this process holds (its backend and current file), so that an interrupted
/// process can remove them on the way out, and the news that one of them could not be
/// refreshed in time.
struct Held {
    locks: Mutex<Vec<HeldLock>>,
    next: std::sync::atomic::AtomicU64,
    lost: tokio::sync::watch::Sender<Option<String>>,
}

/// A registration number, the lock's store, and its current file (the refresher replaces it).
type HeldLock = (u64, DynBackend, Arc<Mutex<Id>>);

fn held() -> &'static Held {
    static HELD: OnceLock<Held> = OnceLock::new();
    HELD.get_or_init(|| Held {
        locks: Mutex::new(Vec::new()),
        next: std::sync::atomic::AtomicU64::new(0),
        lost: tokio::sync::watch::channel(None).0,
    })
}

/// Resolves when a lock of this process could not be refreshed for [`REFRESH_DEADLINE`]:
/// another host may soon take it as stale (and prune), so the work under it must stop.
pub async fn lost() -> String {
    let mut rx = held().lost.subscribe();
    let why = match rx.wait_for(|v| v.is_some()).await {
        Ok(v) => v.clone().unwrap_or_default(),
        // The sender lives in a static: never dropped.
        Err(_) => std::future::pending().await,
    };
    why
}

/// Remove every lock file this process holds (on SIGINT/SIGTERM, before exiting), each
/// attempt bounded by `patience`. Returns how many were removed.
pub async fn remove_held(patience: Duration) -> usize {
    let locks: Vec<(DynBackend, Id)> = held()
        .locks
        .lock()
        .expect("held locks mutex")
        .iter()
        .map(|(_, b, id)| (b.clone(), *id.lock().expect("lock id mutex")))
        .collect();
    let mut removed = 0;
    for (backend, id) in locks {
        let name = id.to_hex();
        let attempt = backend.remove(FileType::Lock, &name);
        match tokio::time::timeout(patience, attempt).await {
            Ok(Ok(())) => removed += 1,
            // Not there yet: the interrupted write may still land. Look once more.
            Ok(Err(e)) if e.is_not_found() => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let again = backend.remove(FileType::Lock, &name);
                if matches!(tokio::time::timeout(patience, again).await, Ok(Ok(()))) {
                    removed += 1;
                }
            }
            _ => {}
        }
    }
    removed
}

fn register(backend: DynBackend, current: Arc<Mutex<Id>>) -> u64 {
    let h = held();
    let n = h.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    h.locks
        .lock()
        .expect("held locks mutex")
        .push((n, backend, current));
    n
}

fn unregister(n: u64) {
    held()
        .locks
        .lock()
        .expect("held locks mutex")
        .retain(|(m, _, _)| *m != n);
}

/// A held lock. Refreshes itself in the background until released.
pub struct LockGuard {
    backend: DynBackend,
    current: Arc<Mutex<Id>>,
    refresher: tokio::task::JoinHandle<()>,
    registration: u64,
    /// Set by [`LockGuard::release`]; a guard dropped without it (an error on the way)
    /// removes its lock in the background instead of refreshing it for ever.
    released: bool,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.refresher.abort();
        // Still registered until it is gone: a process interrupted meanwhile (its work
        // future dropped first, then `remove_held` run) must still find it to remove.
        let (backend, name, registration) =
            (self.backend.clone(), self.id().to_hex(), self.registration);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let _ = backend.remove(FileType::Lock, &name).await;
                    unregister(registration);
                });
            }
            Err(_) => unregister(registration),
        }
    }
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
                let _ = guard.release().await;
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
        // Registered before it is written: a signal that comes while the write is under
        // way still finds it to remove (the write itself may land just after; see
        // `remove_held`).
        let sealed = repo.key().seal(&arca_format::compression::encode_unpacked(
            &new_lock(exclusive).to_json(),
            repo.version(),
        ));
        let id = Id::hash(&sealed);
        let current = Arc::new(Mutex::new(id));
        let registration = register(repo.backend().clone(), current.clone());
        let written = repo
            .backend()
            .write(FileType::Lock, &id.to_hex(), sealed.into(), false)
            .await;
        if let Err(e) = written {
            unregister(registration);
            return Err(e.into());
        }
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
        let refresher = spawn_refresher(repo, exclusive, current.clone());
        Ok((
            LockGuard {
                backend: repo.backend().clone(),
                current,
                refresher,
                registration,
                released: false,
            },
            LockCheck(rx),
        ))
    }

    pub fn id(&self) -> Id {
        *self.current.lock().expect("lock id mutex")
    }

    /// Stop refreshing and remove the lock file.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        self.refresher.abort();
        unregister(self.registration);
        let id = self.id();
        self.backend.remove(FileType::Lock, &id.to_hex()).await?;
        Ok(())
    }
}

/// Every five minutes write a fresh lock and remove the old one, as restic does. A failed
/// refresh is tried again every minute; after [`REFRESH_DEADLINE`] without one, [`lost`]
/// tells the work under the lock to stop.
fn spawn_refresher(
    repo: &Repository,
    exclusive: bool,
    current: Arc<Mutex<Id>>,
) -> tokio::task::JoinHandle<()> {
    let backend = repo.backend().clone();
    let key = repo.key().clone();
    let version = repo.version();
    tokio::spawn(async move {
        let mut refreshed = tokio::time::Instant::now();
        let mut wait = Duration::from_secs(REFRESH_EVERY_SECS);
        loop {
            tokio::time::sleep(wait).await;
            let json = new_lock(exclusive).to_json();
            match save_unpacked(&backend, &key, version, FileType::Lock, &json).await {
                Ok(id) => {
                    refreshed = tokio::time::Instant::now();
                    wait = Duration::from_secs(REFRESH_EVERY_SECS);
                    let old = std::mem::replace(&mut *current.lock().expect("lock id mutex"), id);
                    let _ = backend.remove(FileType::Lock, &old.to_hex()).await;
                }
                Err(e) => {
                    if refreshed.elapsed() >= REFRESH_DEADLINE {
                        held().lost.send_replace(Some(format!(
                            "the repository lock could not be refreshed for {} minutes \
                             (last error: {e}); stopping before another host takes it as stale",
                            REFRESH_DEADLINE.as_secs() / 60
                        )));
                        return;
                    }
                    wait = Duration::from_secs(60);
                }
            }
        }
    })
}

/// How long to keep trying for a lock another process holds, as restic's `--retry-lock`:
/// tries spaced [`RetryLock::FIRST_PAUSE`] apart at first, the pause doubling up to
/// [`RetryLock::MAX_PAUSE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryLock {
    /// Give up once this long has passed since the first try.
    pub up_to: Duration,
    /// The first pause (restic's 5 s; shorter in tests).
    pub first_pause: Duration,
}

impl RetryLock {
    pub const FIRST_PAUSE: Duration = Duration::from_secs(5);
    pub const MAX_PAUSE: Duration = Duration::from_secs(60);

    /// Keep trying for `up_to`, with restic's pauses.
    pub fn up_to(up_to: Duration) -> Self {
        RetryLock {
            up_to,
            first_pause: Self::FIRST_PAUSE,
        }
    }
}

/// Run `attempt` (a lock acquisition) until it succeeds, fails with anything but
/// [`Error::Locked`], or `retry.up_to` has passed (then the last `Locked` is returned).
/// Before each pause `waiting` is told who holds the lock (restic's description of it) and
/// how long the wait has lasted, so a caller can say so. Returns the value and the time
/// spent waiting, tries included (zero when the first try succeeded).
pub async fn retrying<T, A, AF, W, WF>(
    retry: RetryLock,
    mut attempt: A,
    mut waiting: W,
) -> Result<(T, Duration)>
where
    A: FnMut() -> AF,
    AF: std::future::Future<Output = Result<T>>,
    W: FnMut(String, Duration) -> WF,
    WF: std::future::Future<Output = ()>,
{
    let start = tokio::time::Instant::now();
    let end = start + retry.up_to;
    let mut pause = retry.first_pause;
    let mut waited = false;
    loop {
        match attempt().await {
            Err(Error::Locked(holder)) if tokio::time::Instant::now() < end => {
                waited = true;
                waiting(holder, start.elapsed()).await;
                let left = end.saturating_duration_since(tokio::time::Instant::now());
                tokio::time::sleep(pause.min(left)).await;
                pause = (pause * 2).min(RetryLock::MAX_PAUSE);
            }
            Ok(value) if !waited => return Ok((value, Duration::ZERO)),
            Ok(value) => return Ok((value, start.elapsed())),
            Err(e) => return Err(e),
        }
    }
}

/// [`LockGuard::acquire`], [`retrying`] while another process holds a conflicting lock.
pub async fn acquire_retrying<W, WF>(
    repo: &Repository,
    exclusive: bool,
    retry: RetryLock,
    waiting: W,
) -> Result<(LockGuard, Duration)>
where
    W: FnMut(String, Duration) -> WF,
    WF: std::future::Future<Output = ()>,
{
    retrying(retry, || LockGuard::acquire(repo, exclusive), waiting).await
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
