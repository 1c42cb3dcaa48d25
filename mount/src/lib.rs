//! `arca mount`: a repository's snapshots as a read-only filesystem, laid out as restic
//! mount's default (`ids/`, `snapshots/`, `hosts/<host>/`, `tags/<tag>/`, each folder named
//! by time with a `latest` link), served through FUSE by the kernel's `/dev/fuse` without
//! libfuse.

mod blobs;
mod fs;
mod layout;
mod session;

pub use fs::{MountOptions, RepoFs};
pub use session::{Mounted, UnmountOnDrop};
