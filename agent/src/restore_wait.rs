//! The restore-wait helper, run as the first init container of a restored pod. Each restored
//! volume is mounted under one directory (`/restores/<volume>`); the agent writes
//! `.arca/<restore-uid>` into a volume when its data is back, or `.arca/<restore-uid>.failed`
//! holding the reason when it is not. The helper exits 0 once every volume has its marker
//! (removing the `.arca` folders), and non-zero with the reason on a failure marker or when
//! the timeout passes, so a pod never waits forever.

use arca_api::restore::{FAILED_MARKER_SUFFIX, MARKER_DIR};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why the wait ends without every volume restored.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot remove: {source}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no volumes mounted under {}: nothing to wait for", .0.display())]
    NoVolumes(PathBuf),
    #[error("restore of volume {volume} failed: {reason}")]
    Failed { volume: String, reason: String },
    #[error(
        "timed out after {} waiting for volume(s) {} (is the arca agent running on this node?)",
        humantime::format_duration(*timeout),
        pending.join(", ")
    )]
    TimedOut {
        timeout: Duration,
        pending: Vec<String>,
    },
}

/// What one look at the volumes found.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    /// Every volume has its done marker.
    Done(Vec<PathBuf>),
    /// These volumes have no marker yet.
    Waiting(Vec<String>),
    /// A volume's restore failed: its name and the agent's reason.
    Failed(String, String),
}

/// Look once at the volumes under `restores` for restore `uid`.
pub fn look(restores: &Path, uid: &str) -> Result<State, WaitError> {
    let unreadable = |source| WaitError::Read {
        path: restores.to_path_buf(),
        source,
    };
    let entries = std::fs::read_dir(restores).map_err(unreadable)?;
    let mut volumes: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.map_err(unreadable)?.path();
        if path.is_dir() {
            volumes.push(path);
        }
    }
    if volumes.is_empty() {
        return Err(WaitError::NoVolumes(restores.to_path_buf()));
    }
    volumes.sort();
    let mut waiting = Vec::new();
    for v in &volumes {
        let name = v
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let markers = v.join(MARKER_DIR);
        let failed = markers.join(format!("{uid}{FAILED_MARKER_SUFFIX}"));
        if failed.exists() {
            let reason = std::fs::read_to_string(&failed)
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            let reason = if reason.is_empty() {
                "no reason given".to_string()
            } else {
                reason
            };
            return Ok(State::Failed(name, reason));
        }
        if !markers.join(uid).exists() {
            waiting.push(name);
        }
    }
    Ok(if waiting.is_empty() {
        State::Done(volumes)
    } else {
        State::Waiting(waiting)
    })
}

/// Wait for restore `uid`, looking every `interval`, for at most `timeout`. On success the
/// `.arca` folders are removed and the number of volumes is returned.
pub fn wait(
    restores: &Path,
    uid: &str,
    timeout: Duration,
    interval: Duration,
) -> Result<usize, WaitError> {
    let deadline = Instant::now() + timeout;
    loop {
        match look(restores, uid)? {
            State::Done(volumes) => {
                for v in &volumes {
                    let markers = v.join(MARKER_DIR);
                    std::fs::remove_dir_all(&markers).map_err(|source| WaitError::Remove {
                        path: markers.clone(),
                        source,
                    })?;
                }
                return Ok(volumes.len());
            }
            State::Failed(volume, reason) => {
                return Err(WaitError::Failed { volume, reason });
            }
            State::Waiting(pending) => {
                if Instant::now() >= deadline {
                    return Err(WaitError::TimedOut { timeout, pending });
                }
            }
        }
        std::thread::sleep(interval.min(deadline.saturating_duration_since(Instant::now())));
    }
}
