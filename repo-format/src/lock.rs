//! Lock files and restic's staleness rule.

use crate::gotime::GoTime;
use serde::{Deserialize, Serialize};

/// A lock older than this is stale, wherever its holder runs.
pub const STALE_AFTER_SECS: i64 = 30 * 60;
/// Holders refresh their lock this often.
pub const REFRESH_EVERY_SECS: u64 = 5 * 60;

fn is_zero(v: &u32) -> bool {
    *v == 0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    pub time: GoTime,
    pub exclusive: bool,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub pid: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uid: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gid: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("lock is not valid JSON: {0}")]
pub struct LockError(pub String);

impl Lock {
    pub fn parse(json: &[u8]) -> Result<Lock, LockError> {
        serde_json::from_slice(json).map_err(|e| LockError(e.to_string()))
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain struct serialises")
    }

    /// restic's rule: stale if older than 30 minutes, or held on this host by a
    /// process that no longer exists.
    pub fn is_stale(
        &self,
        now_unix: i64,
        this_host: &str,
        process_exists: impl Fn(i64) -> bool,
    ) -> bool {
        if now_unix - self.time.unix_secs() > STALE_AFTER_SECS {
            return true;
        }
        if self.hostname != this_host {
            return false;
        }
        !process_exists(self.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness() {
        let j = br#"{"time":"2026-11-24T04:10:04.478388311Z","exclusive":false,"hostname":"vm","username":"root","pid":24854}"#;
        let l = Lock::parse(j).unwrap();
        assert_eq!(l.to_json(), j.to_vec());
        let t = l.time.unix_secs();
        assert!(!l.is_stale(t + 60, "vm", |_| true));
        assert!(l.is_stale(t + 60, "vm", |_| false));
        assert!(!l.is_stale(t + 60, "other", |_| false));
        assert!(l.is_stale(t + 31 * 60, "other", |_| true));
    }
}
