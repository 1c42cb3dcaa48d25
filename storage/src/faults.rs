//! A fault-injecting wrapper around any backend, for tests: requests fail at random or
//! by number, are delayed, reads come back truncated, writes are stored but reported as
//! failed, and the store can "go away" for good after N requests.
//!
//! The `arca` binary wraps its backend in one when `ARCA_FAULTS` is set, e.g.
//! `ARCA_FAULTS=fail=0.05,seed=7` (5% of requests fail) or `ARCA_FAULTS=die-after=200`.

use crate::{Backend, DynBackend, FileInfo, FileType, Result, StorageError};
use async_trait::async_trait;
use bytes::Bytes;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// Probability that a request fails before reaching the store.
    pub fail: f64,
    /// Request numbers (1-based) that fail.
    pub fail_nth: Vec<u64>,
    /// Probability that a read returns only part of the data.
    pub truncate: f64,
    /// Probability that a write is stored but reported as failed (the answer is lost).
    pub fail_after_write: f64,
    /// Delay before every request.
    pub delay: Duration,
    /// Every request after this many fails: the store went away.
    pub die_after: Option<u64>,
    pub seed: u64,
}

impl FaultConfig {
    /// `key=value` pairs separated by commas: fail, fail-nth (`3+7+9`), truncate,
    /// after-write, delay-ms, die-after, seed.
    pub fn parse(s: &str) -> std::result::Result<FaultConfig, String> {
        let mut c = FaultConfig::default();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("ARCA_FAULTS: {part:?} is not key=value"))?;
            let bad = |_| format!("ARCA_FAULTS: bad value for {k}: {v:?}");
            let prob = |v: &str| -> std::result::Result<f64, String> {
                let p: f64 = v
                    .parse()
                    .map_err(|_| format!("ARCA_FAULTS: bad value for {k}: {v:?}"))?;
                if (0.0..=1.0).contains(&p) {
                    Ok(p)
                } else {
                    Err(format!("ARCA_FAULTS: {k}={v} is not a probability"))
                }
            };
            match k.trim() {
                "fail" => c.fail = prob(v)?,
                "truncate" => c.truncate = prob(v)?,
                "after-write" => c.fail_after_write = prob(v)?,
                "fail-nth" => {
                    c.fail_nth = v
                        .split('+')
                        .map(|n| n.parse().map_err(bad))
                        .collect::<std::result::Result<_, _>>()?
                }
                "delay-ms" => c.delay = Duration::from_millis(v.parse().map_err(bad)?),
                "die-after" => c.die_after = Some(v.parse().map_err(bad)?),
                "seed" => c.seed = v.parse().map_err(bad)?,
                other => return Err(format!("ARCA_FAULTS: unknown key {other:?}")),
            }
        }
        Ok(c)
    }
}

pub struct FaultyBackend {
    inner: DynBackend,
    cfg: FaultConfig,
    requests: AtomicU64,
    rng: Mutex<rand::rngs::StdRng>,
}

impl FaultyBackend {
    pub fn new(inner: DynBackend, cfg: FaultConfig) -> FaultyBackend {
        let rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
        FaultyBackend {
            inner,
            cfg,
            requests: AtomicU64::new(0),
            rng: Mutex::new(rng),
        }
    }

    /// How many requests reached this wrapper.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn roll(&self, p: f64) -> bool {
        p > 0.0 && self.rng.lock().expect("rng mutex").gen_bool(p)
    }

    fn injected(&self, what: &str) -> StorageError {
        StorageError::Unreachable {
            location: self.inner.location(),
            detail: format!("injected fault: {what}"),
        }
    }

    /// Count the request, wait, and decide whether it fails outright.
    async fn before(&self) -> Result<()> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.cfg.delay.is_zero() {
            tokio::time::sleep(self.cfg.delay).await;
        }
        if self.cfg.die_after.is_some_and(|d| n > d) {
            return Err(StorageError::Unreachable {
                location: self.inner.location(),
                detail: "connection refused (injected: the store went away)".into(),
            });
        }
        if self.cfg.fail_nth.contains(&n) || self.roll(self.cfg.fail) {
            return Err(self.injected(&format!("request {n} dropped")));
        }
        Ok(())
    }

    fn maybe_truncate(&self, data: Bytes) -> Result<Bytes> {
        if !data.is_empty() && self.roll(self.cfg.truncate) {
            // Hand back a cut-off body, as a connection dropped mid-transfer would; the
            // caller must notice the length.
            return Ok(data.slice(..data.len() / 2));
        }
        Ok(data)
    }
}

#[async_trait]
impl Backend for FaultyBackend {
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
        self.before().await?;
        self.inner.create().await
    }

    async fn list(&self, ty: FileType) -> Result<Vec<FileInfo>> {
        self.before().await?;
        self.inner.list(ty).await
    }

    async fn read(&self, ty: FileType, name: &str) -> Result<Bytes> {
        self.before().await?;
        let data = self.inner.read(ty, name).await?;
        let got = self.maybe_truncate(data)?;
        // Whole-file reads know their size from the listing: a short body is an error.
        let size = self
            .inner
            .stat(ty, name)
            .await
            .map(|i| i.size)
            .unwrap_or(got.len() as u64);
        if got.len() as u64 != size {
            return Err(StorageError::ShortRead {
                ty,
                name: name.to_string(),
                offset: 0,
                length: size,
                size: got.len() as u64,
            });
        }
        Ok(got)
    }

    async fn read_range(
        &self,
        ty: FileType,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes> {
        self.before().await?;
        let data = self.inner.read_range(ty, name, offset, length).await?;
        let got = self.maybe_truncate(data)?;
        if got.len() as u64 != length {
            return Err(StorageError::ShortRead {
                ty,
                name: name.to_string(),
                offset,
                length,
                size: offset + got.len() as u64,
            });
        }
        Ok(got)
    }

    async fn write(&self, ty: FileType, name: &str, data: Bytes, exclusive: bool) -> Result<()> {
        self.before().await?;
        self.inner.write(ty, name, data, exclusive).await?;
        if self.roll(self.cfg.fail_after_write) {
            return Err(self.injected("answer to a completed write lost"));
        }
        Ok(())
    }

    async fn remove(&self, ty: FileType, name: &str) -> Result<()> {
        self.before().await?;
        self.inner.remove(ty, name).await
    }

    async fn stat(&self, ty: FileType, name: &str) -> Result<FileInfo> {
        self.before().await?;
        self.inner.stat(ty, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_fault_configs() {
        let c = FaultConfig::parse(
            "fail=0.05,seed=7,fail-nth=3+9,truncate=0.1,after-write=0.2,delay-ms=5,die-after=100",
        )
        .unwrap();
        assert_eq!(c.fail, 0.05);
        assert_eq!(c.seed, 7);
        assert_eq!(c.fail_nth, vec![3, 9]);
        assert_eq!(c.truncate, 0.1);
        assert_eq!(c.fail_after_write, 0.2);
        assert_eq!(c.delay, Duration::from_millis(5));
        assert_eq!(c.die_after, Some(100));
        assert!(FaultConfig::parse("fail=2").is_err());
        assert!(FaultConfig::parse("explode=1").is_err());
        assert!(FaultConfig::parse("fail").is_err());
    }
}
