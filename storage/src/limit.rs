//! restic's `--limit-upload` and `--limit-download`: the bytes a store's files carry, in
//! each direction, kept to a rate on average. A transfer runs at the link's speed and then
//! waits until the rate allows its bytes, so concurrent transfers share the rate and the
//! average never exceeds it; the granularity is one file (a pack at most), not a smoothed
//! stream. Reads served by the local cache in front of the store are not counted.

use crate::cache::RepoCache;
use crate::{Backend, DynBackend, FileInfo, FileType, PackKind, Result};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// One direction's rate: consecutive slots of `bytes / rate` seconds, one per transfer.
#[derive(Debug)]
struct Rate {
    bytes_per_second: u64,
    next_free: Mutex<Option<Instant>>,
}

impl Rate {
    fn new(bytes_per_second: u64) -> Rate {
        Rate {
            bytes_per_second: bytes_per_second.max(1),
            next_free: Mutex::new(None),
        }
    }

    /// When a transfer of `bytes` that began at `began` may return: the end of its slot,
    /// which starts when the slots taken before it end, or when it began if later.
    fn reserve(&self, bytes: u64, began: Instant) -> Instant {
        let length = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        let mut next = self.next_free.lock().unwrap_or_else(|e| e.into_inner());
        let start = next.map_or(began, |n| n.max(began));
        let end = start + length;
        *next = Some(end);
        end
    }

    async fn wait(&self, bytes: u64, began: Instant) {
        tokio::time::sleep_until(self.reserve(bytes, began)).await;
    }
}

/// A store whose transfers keep to the given rates.
pub struct LimitedBackend {
    inner: DynBackend,
    upload: Option<Rate>,
    download: Option<Rate>,
}

impl LimitedBackend {
    pub fn new(inner: DynBackend, upload: Option<u64>, download: Option<u64>) -> LimitedBackend {
        LimitedBackend {
            inner,
            upload: upload.map(Rate::new),
            download: download.map(Rate::new),
        }
    }

    async fn downloaded(&self, began: Instant, data: Result<Bytes>) -> Result<Bytes> {
        if let (Some(rate), Ok(d)) = (&self.download, &data) {
            rate.wait(d.len() as u64, began).await;
        }
        data
    }

    async fn uploaded(&self, began: Instant, bytes: u64) {
        if let Some(rate) = &self.upload {
            rate.wait(bytes, began).await;
        }
    }
}

#[async_trait]
impl Backend for LimitedBackend {
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
        self.inner.create().await
    }

    async fn list(&self, ty: FileType) -> Result<Vec<FileInfo>> {
        self.inner.list(ty).await
    }

    async fn read(&self, ty: FileType, name: &str) -> Result<Bytes> {
        let began = Instant::now();
        let data = self.inner.read(ty, name).await;
        self.downloaded(began, data).await
    }

    async fn read_range(
        &self,
        ty: FileType,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes> {
        let began = Instant::now();
        let data = self.inner.read_range(ty, name, offset, length).await;
        self.downloaded(began, data).await
    }

    async fn write(&self, ty: FileType, name: &str, data: Bytes, exclusive: bool) -> Result<()> {
        let (began, bytes) = (Instant::now(), data.len() as u64);
        self.inner.write(ty, name, data, exclusive).await?;
        self.uploaded(began, bytes).await;
        Ok(())
    }

    async fn remove(&self, ty: FileType, name: &str) -> Result<()> {
        self.inner.remove(ty, name).await
    }

    async fn stat(&self, ty: FileType, name: &str) -> Result<FileInfo> {
        self.inner.stat(ty, name).await
    }

    async fn read_pack_range(
        &self,
        name: &str,
        offset: u64,
        length: u64,
        kind: PackKind,
    ) -> Result<Bytes> {
        let began = Instant::now();
        let data = self.inner.read_pack_range(name, offset, length, kind).await;
        self.downloaded(began, data).await
    }

    async fn write_pack(&self, name: &str, data: Bytes, kind: PackKind) -> Result<()> {
        let (began, bytes) = (Instant::now(), data.len() as u64);
        self.inner.write_pack(name, data, kind).await?;
        self.uploaded(began, bytes).await;
        Ok(())
    }

    fn forget_cached(&self, ty: FileType, name: &str) {
        self.inner.forget_cached(ty, name)
    }

    fn repository_cache(&self) -> Option<&RepoCache> {
        self.inner.repository_cache()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_take_consecutive_slots_and_an_idle_rate_starts_afresh() {
        let rate = Rate::new(1000);
        let t0 = Instant::now();
        // Two transfers that began together: the second's slot follows the first's.
        assert_eq!(rate.reserve(500, t0), t0 + Duration::from_millis(500));
        assert_eq!(rate.reserve(2000, t0), t0 + Duration::from_millis(2500));
        // One that began after the slots ended is not held back by them.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(rate.reserve(1000, later), later + Duration::from_secs(1));
    }
}
