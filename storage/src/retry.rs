//! Retries with exponential backoff and jitter around any backend, for errors that may
//! pass (a dropped connection, a 5xx, throttling, a truncated read). Permanent errors
//! (not found, access denied, a missing bucket) are returned at once.

use crate::{Backend, DynBackend, FileInfo, FileType, Result, StorageError};
use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct RetryBackend {
    inner: DynBackend,
    policy: ExponentialBuilder,
}

impl StorageError {
    /// Whether trying the same request again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StorageError::Unreachable { .. }
                | StorageError::Remote { .. }
                | StorageError::ShortRead { .. }
        )
    }
}

impl RetryBackend {
    /// About 25 s of attempts in all (0.25 s doubling to 8 s, with jitter), on top of
    /// the HTTP client's own quick retries: enough for a restarting server or a burst of
    /// throttling, short enough that a store that is gone is reported promptly.
    pub fn new(inner: DynBackend) -> RetryBackend {
        RetryBackend::with_policy(
            inner,
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(250))
                .with_max_delay(Duration::from_secs(8))
                .with_max_times(6)
                .with_jitter(),
        )
    }

    pub fn with_policy(inner: DynBackend, policy: ExponentialBuilder) -> RetryBackend {
        RetryBackend { inner, policy }
    }
}

fn log_retry(op: &str, ty: FileType, name: &str, e: &StorageError, after: Duration) {
    tracing::warn!("{op} {ty} {name} failed, retrying in {after:?}: {e}");
}

#[async_trait]
impl Backend for RetryBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn connections(&self) -> usize {
        self.inner.connections()
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    async fn create(&self) -> Result<()> {
        (|| self.inner.create())
            .retry(self.policy)
            .when(StorageError::is_transient)
            .await
    }

    async fn list(&self, ty: FileType) -> Result<Vec<FileInfo>> {
        (|| self.inner.list(ty))
            .retry(self.policy)
            .when(StorageError::is_transient)
            .notify(|e, d| log_retry("list", ty, "", e, d))
            .await
    }

    async fn read(&self, ty: FileType, name: &str) -> Result<Bytes> {
        (|| self.inner.read(ty, name))
            .retry(self.policy)
            .when(StorageError::is_transient)
            .notify(|e, d| log_retry("read", ty, name, e, d))
            .await
    }

    async fn read_range(
        &self,
        ty: FileType,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes> {
        (|| self.inner.read_range(ty, name, offset, length))
            .retry(self.policy)
            .when(StorageError::is_transient)
            .notify(|e, d| log_retry("read", ty, name, e, d))
            .await
    }

    async fn write(&self, ty: FileType, name: &str, data: Bytes, exclusive: bool) -> Result<()> {
        // A failed attempt may still have stored the file (the answer was lost). For an
        // exclusive write the retry then meets "already exists": it is ours if the stored
        // content is exactly what we wrote.
        let failed_once = AtomicBool::new(false);
        let res = (|| self.inner.write(ty, name, data.clone(), exclusive))
            .retry(self.policy)
            .when(StorageError::is_transient)
            .notify(|e, d| {
                failed_once.store(true, Ordering::Relaxed);
                log_retry("write", ty, name, e, d)
            })
            .await;
        match res {
            Err(StorageError::AlreadyExists { .. }) if failed_once.load(Ordering::Relaxed) => {
                match self.read(ty, name).await {
                    Ok(stored) if stored == data => Ok(()),
                    _ => res,
                }
            }
            other => other,
        }
    }

    async fn remove(&self, ty: FileType, name: &str) -> Result<()> {
        let failed_once = AtomicBool::new(false);
        let res = (|| self.inner.remove(ty, name))
            .retry(self.policy)
            .when(StorageError::is_transient)
            .notify(|e, d| {
                failed_once.store(true, Ordering::Relaxed);
                log_retry("remove", ty, name, e, d)
            })
            .await;
        match res {
            // An earlier attempt removed it.
            Err(StorageError::NotFound { .. }) if failed_once.load(Ordering::Relaxed) => Ok(()),
            other => other,
        }
    }

    async fn stat(&self, ty: FileType, name: &str) -> Result<FileInfo> {
        (|| self.inner.stat(ty, name))
            .retry(self.policy)
            .when(StorageError::is_transient)
            .notify(|e, d| log_retry("stat", ty, name, e, d))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{FaultConfig, FaultyBackend};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_range_past_the_end_is_answered_at_once_and_a_dropped_request_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let local: DynBackend = Arc::new(crate::LocalBackend::new(dir.path()));
        let name = "ab".repeat(32);
        local
            .write(
                FileType::Pack,
                &name,
                Bytes::from_static(b"0123456789"),
                false,
            )
            .await
            .unwrap();
        let fail_first = FaultConfig {
            fail_nth: vec![1],
            ..FaultConfig::default()
        };
        let counted = Arc::new(FaultyBackend::new(local, fail_first));
        let quick = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(1))
            .with_max_times(5);
        let b = RetryBackend::with_policy(counted.clone(), quick);

        // Request 1 is dropped and retried; request 2 reads.
        let got = b.read_range(FileType::Pack, &name, 2, 3).await.unwrap();
        assert_eq!(&got[..], b"234");
        assert_eq!(counted.requests(), 2);

        // A bad index entry pointing past the end: one request, no retries.
        let err = b.read_range(FileType::Pack, &name, 8, 3).await.unwrap_err();
        assert!(matches!(err, StorageError::PastEnd { .. }), "{err}");
        assert_eq!(counted.requests(), 3, "not retried");
    }
}
