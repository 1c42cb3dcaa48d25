//! The node agent: finds pod volumes under the kubelet's pods directory and moves their data
//! with the in-process engine; and the restore-wait helper that restored pods run first.

pub mod access;
pub mod context;
pub mod controller;
pub mod error;
pub mod metrics;
pub mod pod_volume_backup;
pub mod pod_volume_restore;
pub mod repo_lock;
pub mod restore_wait;
pub mod volumes;

pub use error::{Error, Result};
