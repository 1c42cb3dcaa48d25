//! The operator: keeps storage locations checked and repositories ready (one per volume
//! namespace and location, each with its own random key), and runs Backups, Restores and
//! Schedules, and brings into the cluster the Backups its locations' buckets hold (backup
//! sync). It never touches volume data: the node agents do, through PodVolumeBackups and
//! PodVolumeRestores.

pub mod backup;
pub mod backup_command;
pub mod claim_helper;
pub mod context;
pub mod controller;
pub mod error;
pub mod gc;
pub mod hooks;
pub mod location;
pub mod maintenance;
pub mod metrics;
pub mod naming;
pub mod operation;
pub mod pod_exec;
pub mod pods;
pub mod repository;
pub mod resources;
pub mod restore;
pub mod restore_hooks;
pub mod restore_plan;
pub mod schedule;
pub mod selection;
pub mod store;
pub mod sync;

pub use error::{Error, Result};
