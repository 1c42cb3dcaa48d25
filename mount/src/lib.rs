//! `arca mount`: a repository's snapshots as a read-only filesystem, laid out as restic
//! mount lays them out (by default `ids/`, `snapshots/`, `hosts/<host>/`, `tags/<tag>/`,
//! each folder named by time with a `latest` link; or by the user's templates), served
//! through FUSE by the kernel's `/dev/fuse` without libfuse.

mod blobs;
mod fs;
mod gotime_layout;
mod layout;
mod session;

pub use fs::{MountOptions, RepoFs};
pub use layout::{Templates, DEFAULT_TIME_TEMPLATE};
pub use session::{Mounted, UnmountOnDrop};
