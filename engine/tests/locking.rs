//! Lock conflicts, including the race restic's 200 ms second check exists for: a prune
//! that locks the repository just after a backup did must stop the backup from writing
//! a snapshot, even though the backup's lock check runs in the background.

use arca_engine::lock::LockGuard;
use arca_engine::Repository;
use arca_format::gotime::GoTime;
use arca_format::lock::Lock;
use arca_storage::FileType;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use support::HookedStore;
use support::TINY;

mod support;

const PW: &str = "pw";

async fn new_repo(dir: &std::path::Path) -> Repository {
    let backend: arca_storage::DynBackend =
        Arc::new(arca_storage::LocalBackend::new(dir.join("repo")));
    Repository::init(backend, PW, 2, None, TINY).await.unwrap()
}

/// A lock held by this (live) process on this host, as another arca or restic would write it.
fn live_lock(exclusive: bool) -> Vec<u8> {
    Lock {
        time: GoTime::now(),
        exclusive,
        hostname: arca_engine::sys::hostname(),
        username: "someone".into(),
        pid: std::process::id() as i64,
        uid: 0,
        gid: 0,
    }
    .to_json()
}

fn lock_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("repo/locks")).unwrap().count()
}

#[tokio::test]
async fn shared_lock_refused_while_an_exclusive_lock_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    repo.save_unpacked(FileType::Lock, &live_lock(true))
        .await
        .unwrap();
    let err = LockGuard::acquire(&repo, false)
        .await
        .err()
        .expect("must be refused");
    assert!(err.to_string().contains("exclusive"), "{err}");
    assert_eq!(
        lock_count(dir.path()),
        1,
        "our lock must not be left behind"
    );
    // And the background variant refuses just the same.
    assert!(LockGuard::begin(&repo, false).await.is_err());
}

#[tokio::test]
async fn exclusive_lock_refused_while_a_shared_lock_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    repo.save_unpacked(FileType::Lock, &live_lock(false))
        .await
        .unwrap();
    assert!(LockGuard::acquire(&repo, true).await.is_err());
    assert_eq!(lock_count(dir.path()), 1);
}

#[tokio::test]
async fn racing_exclusive_lock_blocks_the_snapshot_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = new_repo(dir.path()).await;
    let (guard, check) = LockGuard::begin(&repo, false).await.unwrap();
    repo.set_lock_check(check.clone());
    // A prune locks the repository before our second check runs.
    repo.save_unpacked(FileType::Lock, &live_lock(true))
        .await
        .unwrap();
    let err = repo
        .save_unpacked(FileType::Snapshot, b"{}")
        .await
        .expect_err("the snapshot write must wait for the check and fail");
    assert!(err.to_string().contains("exclusive"), "{err}");
    assert!(check.wait().await.is_err());
    let snapshots = std::fs::read_dir(dir.path().join("repo/snapshots"))
        .unwrap()
        .count();
    assert_eq!(snapshots, 0, "no snapshot may be written");
    // Our lock was withdrawn; only the prune's remains.
    assert_eq!(lock_count(dir.path()), 1);
    let _ = guard.release().await;
}

#[tokio::test]
async fn confirmed_shared_lock_lets_the_snapshot_through() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = new_repo(dir.path()).await;
    let (guard, check) = LockGuard::begin(&repo, false).await.unwrap();
    repo.set_lock_check(check.clone());
    // Another shared lock (a concurrent backup) is no conflict.
    repo.save_unpacked(FileType::Lock, &live_lock(false))
        .await
        .unwrap();
    repo.save_unpacked(FileType::Snapshot, b"{}").await.unwrap();
    check.wait().await.unwrap();
    guard.release().await.unwrap();
    assert_eq!(
        lock_count(dir.path()),
        1,
        "only the other process's lock remains"
    );
}

/// restic 0.16+: when the lock cannot be refreshed for long enough that others may take it
/// as stale, the work under it stops; until then, failed refreshes are only retried.
#[tokio::test(start_paused = true)]
async fn a_lock_that_cannot_be_refreshed_stops_the_work_under_it() {
    let dir = tempfile::tempdir().unwrap();
    // Lock writes fail once `failing` is set, as they would against a store that went away.
    let failing = Arc::new(AtomicBool::new(false));
    let mut store = HookedStore::new(arca_storage::LocalBackend::new(dir.path().join("repo")));
    store.before_write = {
        let failing = failing.clone();
        Box::new(move |ty| {
            (ty == FileType::Lock && failing.load(Ordering::SeqCst)).then(|| {
                arca_storage::StorageError::Unreachable {
                    location: "the test's store".into(),
                    detail: "connection refused".into(),
                }
            })
        })
    };
    let repo = Repository::init(Arc::new(store), PW, 2, None, TINY)
        .await
        .unwrap();
    let guard = LockGuard::acquire(&repo, false).await.unwrap();
    failing.store(true, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    // Bounded, so that a refresher that never gives up fails here instead of hanging.
    let why = tokio::time::timeout(
        std::time::Duration::from_secs(30 * 60),
        arca_engine::lock::lost(),
    )
    .await
    .expect("the work under a lock that cannot be refreshed is stopped");
    let after = started.elapsed();
    assert!(why.contains("could not be refreshed"), "{why}");
    assert!(!why.contains("pw"), "{why}");
    // Not before the deadline (failed refreshes are retried), and not after the lock went
    // stale for other hosts (30 minutes). Paused virtual time: no wall-clock dependence.
    assert!(
        after >= arca_engine::lock::REFRESH_DEADLINE,
        "gave up after {after:?}"
    );
    assert!(after < std::time::Duration::from_secs(30 * 60), "{after:?}");
    guard.release().await.unwrap();
}

/// Waiting for a lock: tried again while the holder has it, told who holds it before each
/// pause, taken once it is gone; and given up with the holder's description when the time
/// is up.
#[tokio::test]
async fn a_retried_lock_waits_for_the_holder_and_gives_up_in_time() {
    use arca_engine::lock::{acquire_retrying, RetryLock};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let held = repo
        .save_unpacked(FileType::Lock, &live_lock(true))
        .await
        .unwrap();
    let retry = RetryLock {
        up_to: Duration::from_secs(60),
        first_pause: Duration::from_millis(50),
    };
    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    let waiter = {
        let (repo, told) = (repo.detached(), told.clone());
        tokio::spawn(async move {
            acquire_retrying(&repo, false, retry, |holder, _| {
                told.lock().unwrap().push(holder);
                async {}
            })
            .await
        })
    };
    // The holder lets go only once the waiter has said it waits.
    while told.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!waiter.is_finished(), "must wait while the lock is held");
    repo.backend()
        .remove(FileType::Lock, &held.to_hex())
        .await
        .unwrap();
    let (guard, waited) = waiter.await.unwrap().expect("the lock once free");
    assert!(waited > Duration::ZERO);
    let holder = told.lock().unwrap()[0].clone();
    assert!(
        holder.contains("exclusive") && holder.contains(&held.short()),
        "{holder}"
    );
    guard.release().await.unwrap();

    // A holder that stays: the wait ends at `up_to` with the holder named.
    repo.save_unpacked(FileType::Lock, &live_lock(true))
        .await
        .unwrap();
    let short = RetryLock {
        up_to: Duration::from_millis(300),
        first_pause: Duration::from_millis(50),
    };
    let err = acquire_retrying(&repo, false, short, |_, _| async {})
        .await
        .err()
        .expect("must give up");
    assert!(
        matches!(&err, arca_engine::Error::Locked(h) if h.contains("exclusive")),
        "{err}"
    );
    assert_eq!(lock_count(dir.path()), 1, "only the holder's lock is left");
}
